package devidp

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// logoutTokenLifetime is the validity of a logout token.
	logoutTokenLifetime = 2 * time.Minute
	// logoutTokenType is the JWT "typ" header of a logout token
	// (OpenID Connect Back-Channel Logout 1.0, section 2.4).
	logoutTokenType = "logout+jwt"
	// backChannelLogoutEvent is the event a logout token carries.
	backChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// maxDrainedBody bounds how much of a back-channel response is read.
	maxDrainedBody = 64 << 10
	// loggedOutReasonUnregistered marks a logout whose
	// post_logout_redirect_uri was not registered for the client.
	loggedOutReasonUnregistered = "unregistered_post_logout_redirect_uri"
)

// backChannel delivers logout tokens to the clients of ended OP sessions
// (OpenID Connect Back-Channel Logout 1.0).
type backChannel struct {
	issuer     string
	key        *signingKey
	clients    map[string]*opClient
	httpClient *http.Client
	log        *slog.Logger
	stats      *counters
}

// notify sends a logout token to every client with a back-channel logout
// URI that took part in one of the ended sessions. Delivery is synchronous,
// so a relying party has been told by the time the browser is redirected.
// It returns the delivery errors joined.
func (b *backChannel) notify(ctx context.Context, ended []endedSession) error {
	var errs []error
	for _, e := range ended {
		for _, clientID := range e.clientIDs {
			c, ok := b.clients[clientID]
			if !ok || c.BackChannelLogoutURI == "" {
				continue
			}
			if err := b.send(ctx, c, e); err != nil {
				b.stats.backChannelLogoutsFailed.Add(1)
				b.log.WarnContext(ctx, "back-channel logout failed", "client_id", c.ID, "sid", e.sid, "error", err)
				errs = append(errs, err)
				continue
			}
			b.stats.backChannelLogoutsSent.Add(1)
			b.log.InfoContext(ctx, "back-channel logout sent", "client_id", c.ID, "sid", e.sid)
		}
	}
	return errors.Join(errs...)
}

// logoutToken builds and signs the logout token for client c about the
// ended session e: iss, aud, iat, exp, jti, sub, sid and the back-channel
// logout event, and no nonce.
func (b *backChannel) logoutToken(c *opClient, e endedSession) (string, error) {
	now := time.Now()
	claims := &oidc.LogoutTokenClaims{
		Issuer:     b.issuer,
		Subject:    e.subject,
		Audience:   oidc.Audience{c.ID},
		IssuedAt:   oidc.FromTime(now),
		Expiration: oidc.FromTime(now.Add(logoutTokenLifetime)),
		JWTID:      newID(),
		Events:     map[string]any{backChannelLogoutEvent: struct{}{}},
		SessionID:  e.sid,
	}
	return b.key.signJWT(claims, logoutTokenType)
}

// send POSTs one logout token to the client's back-channel logout URI.
func (b *backChannel) send(ctx context.Context, c *opClient, e endedSession) error {
	token, err := b.logoutToken(c, e)
	if err != nil {
		return fmt.Errorf("logout token for %q: %w", c.ID, err)
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackChannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("back-channel logout request for %q: %w", c.ID, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("back-channel logout to %q: %w", c.ID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainedBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("back-channel logout to %q: status %s", c.ID, resp.Status)
	}
	return nil
}

// endSessionCallKey is the context key of an endSessionCall.
type endSessionCallKey struct{}

// endSessionCall carries what the end_session endpoint needs from the HTTP
// request into TerminateSessionFromRequest, which zitadel calls with a
// context only.
type endSessionCall struct {
	postLogoutRedirectURI string
	state                 string
	cookie                string // the browser's OP session cookie, if any
	clearCookie           func()
}

// serveEndSession runs zitadel's end_session endpoint with the browser's
// cookie in the context. zitadel answers an unregistered
// post_logout_redirect_uri with an error page and ends no session; RP-
// Initiated Logout only forbids redirecting there. So the parameter is taken
// out of zitadel's sight here, and TerminateSessionFromRequest ends the
// session and redirects to it only if it is registered for the client.
func (p *Provider) serveEndSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot parse form", http.StatusBadRequest)
		return
	}
	call := &endSessionCall{
		postLogoutRedirectURI: r.Form.Get("post_logout_redirect_uri"),
		state:                 r.Form.Get("state"),
		cookie:                p.sessionCookie(r),
		clearCookie:           func() { http.SetCookie(w, p.newSessionCookie("", -1)) },
	}
	r.Form.Del("post_logout_redirect_uri")
	r.PostForm.Del("post_logout_redirect_uri")
	ctx := context.WithValue(r.Context(), endSessionCallKey{}, call)
	p.opHandler.ServeHTTP(w, r.WithContext(ctx))
}

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest:
// it ends the browser's OP session (and the one named by the id_token_hint's
// sid), revokes their tokens, clears the cookie, sends back-channel logout
// tokens, and returns where to redirect the browser.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	call, _ := ctx.Value(endSessionCallKey{}).(*endSessionCall)
	if call == nil {
		call = new(endSessionCall)
	}
	var hintSID string
	if req.IDTokenHintClaims != nil {
		hintSID = req.IDTokenHintClaims.SessionID
	}
	ended := s.endSessions(func(sess *ssoSession) bool {
		if call.cookie != "" && sess.cookie == call.cookie {
			return true
		}
		return hintSID != "" && sess.id == hintSID && sess.subject == req.UserID
	})
	if call.cookie != "" && call.clearCookie != nil {
		call.clearCookie()
	}
	for _, e := range ended {
		s.log.InfoContext(ctx, "OP session ended", "sid", e.sid, "sub", e.subject, "client_id", req.ClientID)
	}
	// Failures are logged by notify and must not keep the user signed in.
	_ = s.backChannel.notify(context.WithoutCancel(ctx), ended)
	return s.postLogoutRedirect(ctx, req.ClientID, call), nil
}

// postLogoutRedirect returns the requested post_logout_redirect_uri with the
// state if it is registered for the client, and the provider's signed-out
// page otherwise.
func (s *storage) postLogoutRedirect(ctx context.Context, clientID string, call *endSessionCall) string {
	if call.postLogoutRedirectURI == "" {
		return s.loggedOutURL("")
	}
	c, ok := s.clients[clientID]
	if !ok || !slices.Contains(c.Client.PostLogoutRedirectURIs, call.postLogoutRedirectURI) {
		s.log.WarnContext(ctx, "post_logout_redirect_uri not registered for the client; not redirecting",
			"client_id", clientID, "post_logout_redirect_uri", call.postLogoutRedirectURI)
		return s.loggedOutURL(loggedOutReasonUnregistered)
	}
	u, err := url.Parse(call.postLogoutRedirectURI)
	if err != nil { // validated in New
		return s.loggedOutURL("")
	}
	if call.state != "" {
		q := u.Query()
		q.Set("state", call.state)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// loggedOutURL is the provider's signed-out page, with an optional reason.
func (s *storage) loggedOutURL(reason string) string {
	u := strings.TrimSuffix(s.issuer, "/") + loggedOutPath
	if reason != "" {
		u += "?" + url.Values{"reason": {reason}}.Encode()
	}
	return u
}

// TerminateSession implements op.AuthStorage. zitadel calls
// TerminateSessionFromRequest instead; this ends all of the user's OP
// sessions.
func (s *storage) TerminateSession(ctx context.Context, userID, _ string) error {
	ended := s.endSessions(func(sess *ssoSession) bool { return sess.subject == userID })
	return s.backChannel.notify(ctx, ended)
}

// loggedOutTemplate is the provider's signed-out page.
var loggedOutTemplate = template.Must(template.New("logged-out").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signed out · devidp</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>Signed out</h1>
<p>You have been signed out of the development identity provider.</p>
{{if .Unregistered}}<p class="error">The application asked to be returned to a post_logout_redirect_uri that is not registered for it, so you were not redirected.</p>{{end}}
</main>
</body>
</html>
`))

// serveLoggedOut renders the signed-out page.
func (p *Provider) serveLoggedOut(w http.ResponseWriter, r *http.Request) {
	data := struct{ Unregistered bool }{
		Unregistered: r.URL.Query().Get("reason") == loggedOutReasonUnregistered,
	}
	renderPage(w, http.StatusOK, loggedOutTemplate, data, p.log)
}

// EndSessions ends every OP session of the user sub, as an administrator
// would: their tokens are revoked, their session cookies stop working, and
// every client that took part in them and has a back-channel logout URI gets
// a logout token. It returns the back-channel delivery errors, joined; the
// sessions end regardless.
func (p *Provider) EndSessions(ctx context.Context, sub string) error {
	ended := p.store.endSessions(func(sess *ssoSession) bool { return sess.subject == sub })
	for _, e := range ended {
		p.log.InfoContext(ctx, "OP session ended by administrator", "sid", e.sid, "sub", e.subject)
	}
	if err := p.store.backChannel.notify(ctx, ended); err != nil {
		return fmt.Errorf("end sessions of %q: %w", sub, err)
	}
	return nil
}
