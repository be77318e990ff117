package bff

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/proxy"
	"github.com/gobff/bff/session"
)

// User is the logged-in user of a request, as [BFF.ProtectAPI] puts it in
// the request's context.
type User struct {
	Issuer  string
	Subject string
	SID     string // the OP's session id, may be empty

	bff *BFF

	mu      sync.Mutex // guards session, which AccessToken replaces
	session *session.Session
}

// AccessToken returns the user's access token, refreshed first when it is
// about to expire, for a local API handler that calls another API itself.
// An error wrapping token.ErrSessionEnded means the user must log in again
// (answer 401); token.ErrTokenExpired (only with Session.OutliveTokens)
// that the session goes on without a token (call anonymously, or answer
// 401); an *oidc.UnavailableError that the OP is down (answer 502).
func (u *User) AccessToken(ctx context.Context) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	tok, s, err := u.bff.refresher.UserToken(ctx, u.session)
	if err != nil {
		return "", err
	}
	u.session = s
	return tok, nil
}

// Claims returns the user's claims (ID token and userinfo), in order.
func (u *User) Claims() (oidc.Claims, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return oidc.ParseClaims(u.session.Claims)
}

type userKey struct{}

// UserFrom returns the user that ProtectAPI found for the request, if any.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok
}

// APIOption changes how ProtectAPI guards one handler.
type APIOption func(*apiOptions)

type apiOptions struct {
	skipAntiforgery bool
	allowAnonymous  bool
}

// SkipAntiforgery lets requests without the X-CSRF header through, for the
// rare endpoint a browser reaches without script (a plain link or form).
// Such an endpoint must not change state on GET, and must defend itself.
func SkipAntiforgery() APIOption { return func(o *apiOptions) { o.skipAntiforgery = true } }

// AllowAnonymous lets requests without a session through, without a user in
// the context.
func AllowAnonymous() APIOption { return func(o *apiOptions) { o.allowAnonymous = true } }

// ProtectAPI guards a local API handler: the request must carry the
// anti-forgery header (else 401) and a live session (else 401, never a
// redirect to a login page, which a SPA's fetch cannot follow); the user is
// then in the request context (see UserFrom). A WebSocket upgrade, which a
// browser cannot send with the header, must instead come with an Origin
// equal to public_url (else 403): cross-site WebSocket hijacking.
func (b *BFF) ProtectAPI(next http.Handler, opts ...APIOption) http.Handler {
	var o apiOptions
	for _, opt := range opts {
		opt(&o)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if proxy.IsWebSocketUpgrade(r) {
			if o := r.Header.Values("Origin"); len(o) != 1 || !strings.EqualFold(o[0], b.publicURL) {
				b.log.WarnContext(r.Context(), "request refused", "path", r.URL.Path, "rule", "websocket_origin")
				problem(w, http.StatusForbidden, "a WebSocket must come from the application's own origin")
				return
			}
		} else if !o.skipAntiforgery && !b.requireAntiforgery(w, r, r.URL.Path) {
			return
		}
		s, err := b.sessions.Load(r.Context(), r)
		if err != nil {
			if o.allowAnonymous && isNotFound(err) {
				next.ServeHTTP(w, r)
				return
			}
			b.noSession(w, r, err)
			return
		}
		if o.allowAnonymous && b.tokensDead(s) {
			if err := b.endDeadSession(r.Context(), w, s); err != nil {
				b.noSession(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if b.endIfTokensDead(w, r, s) {
			return
		}
		u := &User{Issuer: s.Issuer, Subject: s.Subject, SID: s.SID, session: s, bff: b}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

func isNotFound(err error) bool { return errors.Is(err, session.ErrNotFound) }
