package bff

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"

	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
)

// userErrors are authorization errors that mean "not logged in" rather than
// "something is wrong": the user declined, or prompt=none found no session
// at the OP. They send the browser back to returnUrl instead of an error
// page (OpenID Connect Core 3.1.2.6).
var userErrors = []string{"access_denied", "login_required", "interaction_required", "consent_required", "account_selection_required"}

// handleCallback completes a login: it matches the response to a login
// transaction of this browser by state, checks iss, exchanges the code with
// the PKCE verifier, validates the ID token and userinfo, and starts a
// session under a new id.
func (b *BFF) handleCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Referrer-Policy", "no-referrer")
	q := r.URL.Query()

	tx, err := b.takeLogin(w, r, q.Get("state"))
	if err != nil {
		if r.Header.Get("Sec-Fetch-Dest") == "iframe" {
			// Most likely a silent login whose state could not be read:
			// tell the SPA in its iframe rather than show a page that
			// frame-ancestors forbids it to see.
			b.log.WarnContext(ctx, "silent login rejected", "rule", oidc.RuleState, "error", err)
			b.silentResult(w, false)
			return
		}
		if errors.Is(err, errLoginState) {
			b.log.WarnContext(ctx, "login rejected", "rule", oidc.RuleState, "error", err)
			fail(w, r, http.StatusBadRequest, "login failed: "+err.Error())
			return
		}
		b.log.ErrorContext(ctx, "login state cannot be checked", "error", err)
		fail(w, r, http.StatusServiceUnavailable, "login failed: the session store is unavailable")
		return
	}

	code, err := b.rp.CheckAuthResponse(ctx, q)
	if err != nil {
		var pe *oidc.ProtocolError
		if errors.As(err, &pe) && slices.Contains(userErrors, pe.Code) {
			b.log.InfoContext(ctx, "login ended without a session", "error_code", pe.Code)
			b.finishLogin(w, r, tx, false)
			return
		}
		b.loginFailed(ctx, w, r, tx, err)
		return
	}
	res, err := b.rp.Exchange(ctx, code, oidc.AuthRequest{Nonce: tx.Nonce, CodeVerifier: tx.Verifier})
	if err != nil {
		b.loginFailed(ctx, w, r, tx, err)
		return
	}
	claims, err := json.Marshal(res.Claims)
	if err != nil {
		b.loginFailed(ctx, w, r, tx, err)
		return
	}

	// A login always starts a new session under a new id (no fixation);
	// the browser's previous session, if any, ends.
	b.endPrevious(ctx, r, tx)
	s := &session.Session{
		Issuer:  res.IDToken.Issuer,
		Subject: res.IDToken.Subject,
		SID:     res.IDToken.SID,
		Payload: &session.Payload{
			Claims: claims,
			Tokens: session.Tokens{
				AccessToken:  res.Tokens.AccessToken,
				TokenType:    res.Tokens.TokenType,
				Expiry:       res.Tokens.Expiry,
				Obtained:     b.cfg.Now(),
				RefreshToken: res.Tokens.RefreshToken,
				IDToken:      res.Tokens.IDToken,
				Scope:        res.Tokens.Scope,
			},
			UserAgent: summarizeUserAgent(r.UserAgent()),
		},
	}
	if err := b.sessions.Create(ctx, w, s); err != nil {
		b.log.ErrorContext(ctx, "session cannot be stored", "error", err)
		fail(w, r, http.StatusServiceUnavailable, "login failed: the session store is unavailable")
		return
	}
	b.log.InfoContext(ctx, "login succeeded", "session", s.Key.String(), "sub", s.Subject, "refresh_token", s.Tokens.RefreshToken != "")
	b.finishLogin(w, r, tx, true)
}

// endPrevious ends the session the browser had before this login: the one
// /bff/login saw, and the one whose cookie came with the callback, if the
// browser sent it. Its refresh token is revoked, so it cannot outlive it.
func (b *BFF) endPrevious(ctx context.Context, r *http.Request, tx *loginTx) {
	var keys []session.Key
	if len(tx.Previous) == len(session.Key{}) {
		keys = append(keys, session.Key(tx.Previous))
	}
	if cur, err := b.sessions.Peek(ctx, r); err == nil && (len(keys) == 0 || cur.Key != keys[0]) {
		keys = append(keys, cur.Key)
	}
	for _, key := range keys {
		old, err := b.sessions.Get(ctx, key)
		if err != nil {
			continue
		}
		if err := b.sessions.Delete(ctx, nil, key); err != nil {
			b.log.WarnContext(ctx, "previous session not removed", "session", key.String(), "error", err)
			continue
		}
		b.log.InfoContext(ctx, "previous session ended by a new login", "session", key.String(), "sub", old.Subject)
		b.revokeRefreshTokens(ctx, old.Tokens.RefreshToken)
	}
}

// loginFailed logs why a callback failed, naming the broken rule, and
// answers 400 for a bad response or token and 502 for an unreachable OP.
func (b *BFF) loginFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, tx *loginTx, err error) {
	status, detail := http.StatusBadRequest, "login failed: the identity provider's response is not valid"
	attrs := []any{"error", err}
	var ve *oidc.ValidationError
	var pe *oidc.ProtocolError
	var ue *oidc.UnavailableError
	switch {
	case errors.As(err, &ve):
		attrs = append(attrs, "rule", ve.Rule)
	case errors.As(err, &pe):
		attrs = append(attrs, "error_code", pe.Code)
		detail = "login failed: the identity provider answered " + pe.Code
	case errors.As(err, &ue):
		status, detail = http.StatusBadGateway, "login failed: the identity provider is unavailable"
	default:
		status, detail = http.StatusBadGateway, "login failed"
	}
	b.log.WarnContext(ctx, "login rejected", attrs...)
	if tx.Silent {
		b.silentResult(w, false)
		return
	}
	fail(w, r, status, detail)
}

// finishLogin sends the browser on: back to returnUrl, or for a silent
// login, a page that tells the SPA.
func (b *BFF) finishLogin(w http.ResponseWriter, r *http.Request, tx *loginTx, loggedIn bool) {
	if tx.Silent {
		b.silentResult(w, loggedIn)
		return
	}
	redirect(w, tx.ReturnURL)
}

var silentPage = template.Must(template.New("silent").Parse(`<!doctype html>
<html lang="en"><meta charset="utf-8"><title>bff silent login</title>
<script nonce="{{.Nonce}}">
window.parent.postMessage({source: "bff-silent-login", isLoggedIn: {{.LoggedIn}}}, {{.Origin}});
</script>
</html>
`))

// silentResult answers a silent login's callback in its iframe: a message to
// the parent window, which must be of the public URL's origin (the
// postMessage target and frame-ancestors both say so; the configured origin,
// not the page's, so that no Host header can redirect the message), under a
// CSP that runs only this script.
func (b *BFF) silentResult(w http.ResponseWriter, loggedIn bool) {
	nonce := rand.Text()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; frame-ancestors 'self'")
	w.WriteHeader(http.StatusOK)
	_ = silentPage.Execute(w, struct {
		Nonce    string
		LoggedIn bool
		Origin   string
	}{nonce, loggedIn, b.publicURL})
}
