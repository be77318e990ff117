package devidp

import (
	"context"
	"crypto/subtle"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"time"
)

// adminPath is the administration page, relative to the issuer: the live OP
// sessions, with buttons that end them as an administrator would, so that
// back-channel logout can be watched in bff dev.
const adminPath = "/admin"

// SessionInfo describes a live OP session.
type SessionInfo struct {
	SID       string
	Subject   string
	Username  string
	AuthTime  time.Time
	ExpiresAt time.Time
	// Clients took part in the session: they get a logout token when it
	// ends.
	Clients []string
}

// Sessions returns the live OP sessions, oldest first.
func (p *Provider) Sessions() []SessionInfo {
	s := p.store
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SessionInfo
	for _, sess := range s.sessions {
		if now.After(sess.expiresAt) {
			continue
		}
		info := SessionInfo{
			SID:       sess.id,
			Subject:   sess.subject,
			AuthTime:  sess.authTime,
			ExpiresAt: sess.expiresAt,
			Clients:   slices.Sorted(maps.Keys(sess.clients)),
		}
		if u, ok := s.users.bySub(sess.subject); ok {
			info.Username = u.Username
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.AuthTime.Compare(b.AuthTime) })
	return out
}

// EndSession ends the OP session sid, as an administrator would: its tokens
// are revoked, its cookie stops working, and every client that took part in
// it gets a logout token naming the sid (and the user). It returns the
// back-channel delivery errors, joined; the session ends regardless.
func (p *Provider) EndSession(ctx context.Context, sid string) error {
	ended := p.store.endSessions(func(sess *ssoSession) bool { return sess.id == sid })
	if len(ended) == 0 {
		return fmt.Errorf("end session: no live OP session %q", sid)
	}
	p.log.InfoContext(ctx, "OP session ended by administrator", "sid", sid, "sub", ended[0].subject)
	if err := p.store.backChannel.notify(ctx, ended); err != nil {
		return fmt.Errorf("end session %q: %w", sid, err)
	}
	return nil
}

// LogoutUser ends every OP session of the user sub and tells each client
// that took part in any of them with one logout token that names only the
// user (no sid): "log this user out everywhere" (Back-Channel Logout 1.0,
// section 2.4). It returns the delivery errors, joined; the sessions end
// regardless.
func (p *Provider) LogoutUser(ctx context.Context, sub string) error {
	ended := p.store.endSessions(func(sess *ssoSession) bool { return sess.subject == sub })
	clients := map[string]struct{}{}
	for _, e := range ended {
		for _, c := range e.clientIDs {
			clients[c] = struct{}{}
		}
	}
	p.log.InfoContext(ctx, "user logged out everywhere by administrator", "sub", sub, "sessions", len(ended))
	userWide := []endedSession{{subject: sub, clientIDs: slices.Sorted(maps.Keys(clients))}}
	if err := p.store.backChannel.notify(ctx, userWide); err != nil {
		return fmt.Errorf("log out %q: %w", sub, err)
	}
	return nil
}

var adminTemplate = template.Must(template.New("admin").Funcs(template.FuncMap{
	"time": func(t time.Time) string { return t.Format("15:04:05") },
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sessions · devidp</title>
<style>` + pageStyle + `
main{max-width:44rem}table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #d0d7de}
td button{margin:0;width:auto;padding:.3rem .6rem;font-size:.9rem}form{display:inline}</style>
</head>
<body>
<main>
<h1>OP sessions</h1>
<p class="hint">Ending a session here sends a back-channel logout token to every client that took part in it, as a real identity provider's administrator console would.</p>
{{with .Message}}<p role="status">{{.}}</p>{{end}}
{{if .Sessions}}
<table>
<tr><th>User</th><th>Signed in</th><th>Clients</th><th></th></tr>
{{range .Sessions}}
<tr><td>{{.Username}}</td><td>{{time .AuthTime}}</td><td>{{range .Clients}}{{.}} {{end}}</td>
<td><form method="post" action="{{$.Action}}"><input type="hidden" name="token" value="{{$.Token}}"><input type="hidden" name="sid" value="{{.SID}}"><button name="do" value="end-session">End session</button></form>
<form method="post" action="{{$.Action}}"><input type="hidden" name="token" value="{{$.Token}}"><input type="hidden" name="sub" value="{{.Subject}}"><button name="do" value="logout-user">Log {{.Username}} out everywhere</button></form></td></tr>
{{end}}
</table>
{{else}}<p>No one is signed in.</p>{{end}}
</main>
</body>
</html>
`))

// serveAdmin shows the live OP sessions (GET) and ends them (POST, with the
// page's token, so that another site cannot submit the form).
func (p *Provider) serveAdmin(w http.ResponseWriter, r *http.Request) {
	var message string
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, "cannot parse form", http.StatusBadRequest)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(p.adminToken)) != 1 {
			http.Error(w, "the form is not from this page", http.StatusForbidden)
			return
		}
		var err error
		switch r.PostForm.Get("do") {
		case "end-session":
			err = p.EndSession(r.Context(), r.PostForm.Get("sid"))
			message = "Session ended; its clients were told over the back channel."
		case "logout-user":
			err = p.LogoutUser(r.Context(), r.PostForm.Get("sub"))
			message = "User logged out everywhere; the clients were told over the back channel."
		default:
			http.Error(w, "unknown action", http.StatusBadRequest)
			return
		}
		if err != nil {
			message = "Done, but: " + err.Error()
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	renderPage(w, http.StatusOK, adminTemplate, struct {
		Sessions []SessionInfo
		Action   string
		Token    string
		Message  string
	}{p.Sessions(), p.basePath + adminPath, p.adminToken, message}, p.log)
}
