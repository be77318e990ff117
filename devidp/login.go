package devidp

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// loginPath is the login form, relative to the issuer.
	loginPath = "/login"
	// loggedOutPath is the signed-out page, relative to the issuer.
	loggedOutPath = "/logged-out"
	// authRequestIDParam names the auth request id in the login URL and in
	// the login form's hidden field.
	authRequestIDParam = "authRequestID"
	// sessionCookieName is the OP session cookie.
	sessionCookieName = "devidp_session"
)

// loginURL is where zitadel sends the browser to sign in for an auth
// request.
func (p *Provider) loginURL(authRequestID string) string {
	return p.issuerBase + loginPath + "?" + url.Values{authRequestIDParam: {authRequestID}}.Encode()
}

// serveLogin handles the login form: GET shows it (or completes the auth
// request from the OP session), POST checks the credentials.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		p.startLogin(w, r)
	case http.MethodPost:
		p.submitLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	}
}

// startLogin decides what an auth request needs. A live OP session of the
// browser completes it without the form, unless prompt=login, max_age or an
// id_token_hint for another user rule the session out. prompt=none without
// a usable session answers login_required to the client's redirect_uri.
func (p *Provider) startLogin(w http.ResponseWriter, r *http.Request) {
	ar, err := p.store.pendingAuthRequest(r.URL.Query().Get(authRequestIDParam))
	if err != nil {
		p.renderLoginProblem(w)
		return
	}
	sess, ok := p.store.sessionByCookie(p.sessionCookie(r))
	usable := ok && !ar.hasPrompt(oidc.PromptLogin) && sessionSatisfies(sess, ar, time.Now())
	switch {
	case usable:
		p.finishLogin(w, r, ar, sess.id)
	case ar.hasPrompt(oidc.PromptNone):
		_ = p.store.DeleteAuthRequest(r.Context(), ar.id)
		op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired().WithDescription("The user is not signed in at the provider."), p.op)
	default:
		p.renderLoginForm(w, http.StatusOK, loginForm{AuthRequestID: ar.id, ClientID: ar.clientID, Username: ar.loginHint})
	}
}

// sessionSatisfies reports whether an OP session may authenticate the auth
// request: it is young enough for max_age and belongs to the id_token_hint's
// user, if any.
func sessionSatisfies(sess *ssoSession, ar *authRequest, now time.Time) bool {
	if ar.hintSubject != "" && ar.hintSubject != sess.subject {
		return false
	}
	if ar.maxAge != nil && now.Sub(sess.authTime) > time.Duration(*ar.maxAge)*time.Second {
		return false
	}
	return true
}

// submitLogin checks the posted credentials. On success it starts (or
// renews) the OP session, sets its cookie and completes the auth request;
// otherwise it shows the form again with 401.
func (p *Provider) submitLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot parse form", http.StatusBadRequest)
		return
	}
	ar, err := p.store.pendingAuthRequest(r.PostForm.Get(authRequestIDParam))
	if err != nil {
		p.renderLoginProblem(w)
		return
	}
	username := r.PostForm.Get("username")
	user, err := p.store.users.authenticate(username, r.PostForm.Get("password"))
	if err != nil {
		p.log.InfoContext(r.Context(), "login failed", "username", username, "client_id", ar.clientID)
		p.renderLoginForm(w, http.StatusUnauthorized, loginForm{
			AuthRequestID: ar.id,
			ClientID:      ar.clientID,
			Username:      username,
			Error:         "Invalid username or password.",
		})
		return
	}
	sess, replaced := p.store.signIn(user.Subject, p.sessionCookie(r))
	// A session of another user in this browser has ended; failures are logged.
	_ = p.store.backChannel.notify(r.Context(), replaced)
	p.store.stats.logins.Add(1)
	p.log.InfoContext(r.Context(), "login succeeded", "sub", user.Subject, "sid", sess.id, "client_id", ar.clientID)
	http.SetCookie(w, p.newSessionCookie(sess.cookie, int(p.store.sessionLifetime/time.Second)))
	p.finishLogin(w, r, ar, sess.id)
}

// finishLogin completes the auth request with the OP session sid and sends
// the browser to zitadel's authorize callback, which redirects to the client
// with the code.
func (p *Provider) finishLogin(w http.ResponseWriter, r *http.Request, ar *authRequest, sid string) {
	if err := p.store.completeAuthRequest(ar.id, sid); err != nil {
		p.renderLoginProblem(w)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(ctx, ar.id), http.StatusSeeOther)
}

// sessionCookie returns the browser's OP session cookie value, if any.
func (p *Provider) sessionCookie(r *http.Request) string {
	c, err := r.Cookie(sessionCookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// newSessionCookie returns the OP session cookie: HttpOnly, SameSite=Lax,
// scoped to the issuer's path, and Secure on an https issuer. maxAge < 0
// deletes it.
func (p *Provider) newSessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     sessionCookieName,
		Value:    value,
		Path:     p.cookiePath,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   p.cookieSecure,
		SameSite: http.SameSiteLaxMode,
	}
}

// loginForm is the data of the login page.
type loginForm struct {
	Action        string
	AuthRequestID string
	ClientID      string
	Username      string
	Error         string
	DefaultUsers  []string // shown as a hint when the default users are in use
}

// renderLoginForm renders the login page with status.
func (p *Provider) renderLoginForm(w http.ResponseWriter, status int, f loginForm) {
	f.Action = p.basePath + loginPath
	f.DefaultUsers = p.defaultUserHint
	renderPage(w, status, loginTemplate, f, p.log)
}

// renderLoginProblem answers a login for an unknown, expired or finished
// auth request.
func (p *Provider) renderLoginProblem(w http.ResponseWriter) {
	renderPage(w, http.StatusBadRequest, loginProblemTemplate, nil, p.log)
}

// pageStyle is the shared CSS of the provider's pages.
const pageStyle = `body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1f2328;margin:0}
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:1rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1.5rem;width:100%;padding:.6rem;font-size:1rem;background:#0969da;color:#fff;border:0;border-radius:6px;cursor:pointer}
.error{color:#cf222e}.hint{color:#59636e;font-size:.9rem}`

// loginTemplate is the login page. Its inputs are named username, password
// and authRequestID.
var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · devidp</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>Sign in</h1>
<p>to continue to <strong>{{.ClientID}}</strong></p>
{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<label for="username">Username</label>
<input id="username" name="username" value="{{.Username}}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{{with .DefaultUsers}}<p class="hint">Development accounts: {{range $i, $u := .}}{{if $i}}, {{end}}<code>{{$u}}</code>{{end}}; each password is the username.</p>{{end}}
</main>
</body>
</html>
`))

// loginProblemTemplate is shown for an unknown or expired login.
var loginProblemTemplate = template.Must(template.New("login-problem").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sign-in expired · devidp</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>Sign-in request not found</h1>
<p class="error">This sign-in request is unknown, has expired or is already finished. Go back to the application and sign in again.</p>
</main>
</body>
</html>
`))

// renderPage executes tmpl and writes it with status and headers that keep
// the page out of caches and frames.
func renderPage(w http.ResponseWriter, status int, tmpl *template.Template, data any, log *slog.Logger) {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		log.Error("render page", "template", tmpl.Name(), "error", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}
