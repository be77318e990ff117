package bff

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gobff/bff/internal/cookie"
	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
)

// signoutCookie carries the returnUrl of a logout through the OP's
// end-session round trip.
const signoutCookie = "__Host-bff-signout"

// signoutTx is sealed into signoutCookie, bound to the logout's state.
type signoutTx struct {
	ReturnURL string `json:"r"`
}

// Bounds of refresh token revocation: a user's redirect waits at most
// revokeWait for it; a revocation still running then goes on in the
// background until revokeTimeout. At most maxRevocations run at once, so
// that ending many sessions at once does not flood the OP.
const (
	revokeWait     = 2 * time.Second
	revokeTimeout  = 10 * time.Second
	maxRevocations = 8
)

// handleLogout ends the session: GET /bff/logout?sid=...&returnUrl=/path.
//
// The sid parameter must be the session's logout id (from /bff/user's
// bff:logout_url), so that a link or image on another site cannot log the
// user out (Duende.BFF's RequireLogoutSessionId). bff deletes the session,
// revokes its refresh token (RFC 7009), and sends the browser to the OP's
// end_session_endpoint with id_token_hint, post_logout_redirect_uri and state
// (RP-Initiated Logout 1.0); or, when the OP has none, straight to returnUrl.
func (b *BFF) handleLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	returnURL, err := returnURLParam(q, b.cfg.OIDC.PostLogoutRedirectPath)
	if err != nil {
		b.log.WarnContext(ctx, "logout refused", "reason", "returnUrl is not a local path")
		fail(w, r, http.StatusBadRequest, err.Error())
		return
	}

	s, err := b.sessions.Peek(ctx, r)
	if err != nil {
		if !errors.Is(err, session.ErrNotFound) {
			b.log.ErrorContext(ctx, "logout cannot read the session", "error", err)
			fail(w, r, http.StatusServiceUnavailable, "the session store is unavailable")
			return
		}
		// Nothing to end here; there is no session a forged request could
		// end either.
		if b.sessions.HasCookie(r) {
			b.sessions.ClearCookie(w)
		}
		redirect(w, returnURL)
		return
	}
	sid := q.Get("sid")
	if sid == "" || subtle.ConstantTimeCompare([]byte(sid), []byte(s.LogoutID)) != 1 {
		b.log.WarnContext(ctx, "logout refused", "rule", "sid", "session", s.Key.String(), "sid_present", sid != "")
		fail(w, r, http.StatusBadRequest, "logout needs the session's sid parameter (see bff:logout_url in /bff/user)")
		return
	}

	if err := b.sessions.Delete(ctx, w, s.Key); err != nil {
		b.log.ErrorContext(ctx, "logout cannot delete the session", "session", s.Key.String(), "error", err)
		fail(w, r, http.StatusServiceUnavailable, "the session store is unavailable")
		return
	}
	b.log.InfoContext(ctx, "logout", "session", s.Key.String(), "sub", s.Subject)
	b.revokeRefreshTokens(ctx, s.Tokens.RefreshToken)

	state := rand.Text()
	endURL, err := b.rp.EndSessionURL(ctx, s.Tokens.IDToken, b.PostLogoutRedirectURL(), state)
	if err != nil {
		// The local session is gone, which is what matters; the OP's
		// session outlives it.
		b.log.WarnContext(ctx, "logout at the identity provider skipped", "error", err)
		redirect(w, returnURL)
		return
	}
	if endURL == "" {
		redirect(w, returnURL)
		return
	}
	plain, _ := json.Marshal(signoutTx{ReturnURL: returnURL})
	sealed := b.loginRing.Seal(plain, signoutAD(state))
	cookie.Set(w, signoutCookie, base64.RawURLEncoding.EncodeToString(sealed), b.cfg.OIDC.LoginTimeout, http.SameSiteLaxMode)
	redirect(w, endURL)
}

// revokeRefreshTokens revokes refresh tokens of ended sessions at the OP
// (RFC 7009), unless Config.OIDC.SkipRevocation, logging rather than
// failing: the sessions are already gone. It returns once every revocation
// has finished or after revokeWait (2s), whichever is first, so a slow OP does
// not hold up the user's redirect; the rest finish in the background.
func (b *BFF) revokeRefreshTokens(ctx context.Context, tokens ...string) {
	if b.cfg.OIDC.SkipRevocation {
		return
	}
	var wg sync.WaitGroup
	for _, t := range tokens {
		if t == "" {
			continue
		}
		b.background.Add(1)
		wg.Go(func() {
			defer b.background.Done()
			b.revocations <- struct{}{}
			defer func() { <-b.revocations }()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.revokeTimeout)
			defer cancel()
			err := b.rp.Revoke(rctx, t, "refresh_token")
			switch {
			case err == nil:
				b.log.DebugContext(rctx, "refresh token revoked")
			case errors.Is(err, oidc.ErrNoRevocationEndpoint):
			default:
				b.log.WarnContext(rctx, "refresh token revocation failed", "error", err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(b.revokeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		b.log.InfoContext(ctx, "refresh token revocation is slow; finishing it in the background")
	}
}

// handleSignoutCallback receives the browser back from the OP's logout and
// sends it to the logout's returnUrl, when the state matches the logout
// this browser started; otherwise to the post-logout path.
func (b *BFF) handleSignoutCallback(w http.ResponseWriter, r *http.Request) {
	target := b.cfg.OIDC.PostLogoutRedirectPath
	if value, ok := cookie.Get(r, signoutCookie); ok {
		cookie.Clear(w, signoutCookie, http.SameSiteLaxMode)
		state := r.URL.Query().Get("state")
		if sealed, err := base64.RawURLEncoding.DecodeString(value); err == nil && state != "" {
			if plain, err := b.loginRing.Open(sealed, signoutAD(state)); err == nil {
				var tx signoutTx
				if json.Unmarshal(plain, &tx) == nil && ValidReturnURL(tx.ReturnURL) {
					target = tx.ReturnURL
				}
			}
		}
	}
	redirect(w, target)
}

func signoutAD(state string) []byte {
	return append([]byte("signout\x00"), state...)
}
