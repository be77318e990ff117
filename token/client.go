package token

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gobff/bff/oidc"
)

// ClientTokens caches client-credentials tokens (RFC 6749, section 4.4),
// one per set of scopes and resource, until shortly before they expire, and
// fetches each with one request however many callers wait for it.
type ClientTokens struct {
	rp            *oidc.RelyingParty
	refreshBefore time.Duration
	log           *slog.Logger
	now           func() time.Time
	flight        singleflight.Group

	mu    sync.RWMutex
	cache map[string]clientToken
}

type clientToken struct {
	value    string
	expiry   time.Time // zero: the OP gave no lifetime
	obtained time.Time
}

// noExpiryLifetime is how long a client token without expires_in is kept.
const noExpiryLifetime = 5 * time.Minute

// NewClientTokens returns a cache of client-credentials tokens from rp.
func NewClientTokens(rp *oidc.RelyingParty, refreshBefore time.Duration, log *slog.Logger, now func() time.Time) *ClientTokens {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &ClientTokens{
		rp:            rp,
		refreshBefore: orDefault(refreshBefore, DefaultRefreshBefore),
		log:           log,
		now:           now,
		cache:         map[string]clientToken{},
	}
}

// Source is the client token of one set of scopes and resource, with its
// cache key computed once.
type Source struct {
	tokens   *ClientTokens
	key      string
	scopes   []string
	resource string
}

// Source returns the token source for scopes and resource.
func (c *ClientTokens) Source(scopes []string, resource string) *Source {
	return &Source{
		tokens:   c,
		key:      strings.Join(scopes, " ") + "\x00" + resource,
		scopes:   append([]string(nil), scopes...),
		resource: resource,
	}
}

// Token returns a client access token valid for at least the refresh
// margin, from the cache or freshly fetched.
func (s *Source) Token(ctx context.Context) (string, error) {
	c := s.tokens
	c.mu.RLock()
	t, ok := c.cache[s.key]
	c.mu.RUnlock()
	if ok && c.fresh(t) {
		return t.value, nil
	}
	ch := c.flight.DoChan(s.key, func() (any, error) {
		c.mu.RLock()
		t, ok := c.cache[s.key]
		c.mu.RUnlock()
		if ok && c.fresh(t) {
			return t.value, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		tok, err := c.rp.ClientCredentials(fctx, s.scopes, s.resource)
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		c.cache[s.key] = clientToken{value: tok.AccessToken, expiry: tok.Expiry, obtained: c.now()}
		c.mu.Unlock()
		c.log.DebugContext(ctx, "client token fetched", "scopes", strings.Join(s.scopes, " "), "resource", s.resource)
		return tok.AccessToken, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			// A still valid cached token is better than an error.
			if ok && (t.expiry.IsZero() || c.now().Before(t.expiry)) {
				var ue *oidc.UnavailableError
				var pe *oidc.ProtocolError
				if errors.As(res.Err, &ue) || errors.As(res.Err, &pe) {
					return t.value, nil
				}
			}
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Forget drops the cached token, after an upstream refused it.
func (s *Source) Forget() {
	s.tokens.mu.Lock()
	delete(s.tokens.cache, s.key)
	s.tokens.mu.Unlock()
}

// fresh reports whether a cached token is good for at least the refresh
// margin: RefreshBefore, or half the token's lifetime when that is shorter.
// A token without a lifetime is kept for noExpiryLifetime.
func (c *ClientTokens) fresh(t clientToken) bool {
	now := c.now()
	if t.expiry.IsZero() {
		return now.Before(t.obtained.Add(noExpiryLifetime))
	}
	margin := min(c.refreshBefore, t.expiry.Sub(t.obtained)/2)
	return now.Add(margin).Before(t.expiry)
}
