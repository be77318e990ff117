// Package bff is a Backend-for-Frontend for single-page applications: the
// browser never holds an OAuth token.
//
// A [BFF] is a confidential OpenID Connect client. It runs the login
// (authorization code flow with PKCE, state, nonce and the RFC 9207 iss
// check), keeps the access, refresh and ID tokens in a server-side session,
// and gives the browser only an opaque session cookie. It serves the
// management endpoints a SPA calls, with Duende.BFF's names and behaviour:
//
//	GET /bff/login?returnUrl=/path&prompt=...   start a login
//	GET /signin-oidc                            the OP's callback
//	GET /bff/user                               the user's claims (needs X-CSRF: 1)
//	GET /bff/logout?sid=...&returnUrl=/path     end the session, and the OP's
//	GET /signout-callback-oidc                  back from the OP's logout
//	GET /bff/silent-login                       prompt=none login in an iframe
//	POST /bff/backchannel                       OpenID Back-Channel Logout
//	GET /bff/sessions                           the user's sessions (X-CSRF: 1)
//	POST /bff/sessions/revoke                   end one of them, or all others
//
// Mount the BFF on a mux, and wrap the app's own API handlers with
// [BFF.ProtectAPI] to require the anti-forgery header and a session:
//
//	b, err := bff.New(cfg)
//	mux.Handle("/", b)
//	mux.Handle("/api/", b.ProtectAPI(api))
//
// The standalone server, `bff serve`, does the same from a YAML file; see
// package config and cmd/bff.
package bff

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/token"
)

// BFF serves the management endpoints and protects local APIs. Create one
// with [New]; it is safe for concurrent use.
type BFF struct {
	cfg       Config
	log       *slog.Logger
	publicURL string // without a trailing slash
	rp        *oidc.RelyingParty
	sessions  *session.Manager
	loginRing *session.KeyRing // seals login and logout transaction cookies
	mux       *http.ServeMux

	refresher    *token.Refresher
	clientTokens *token.ClientTokens
	apis         []*apiRoute // longest prefix first
	frontend     http.Handler

	// background counts work that outlives its request: refresh token
	// revocations that a user's redirect did not wait for.
	background sync.WaitGroup
	// revocations holds a slot per revocation in flight.
	revocations               chan struct{}
	revokeWait, revokeTimeout time.Duration
}

// New checks cfg and returns a BFF. It does not contact the OP: discovery
// happens on first use, or up front with [BFF.Discover].
func New(cfg Config) (*BFF, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &BFF{
		cfg:           cfg,
		log:           cfg.Logger,
		publicURL:     strings.TrimSuffix(cfg.PublicURL, "/"),
		revocations:   make(chan struct{}, maxRevocations),
		revokeWait:    revokeWait,
		revokeTimeout: revokeTimeout,
	}
	b.rp, err = oidc.New(oidc.Config{
		Issuer:           cfg.OIDC.Issuer,
		ClientID:         cfg.OIDC.ClientID,
		ClientSecret:     cfg.OIDC.ClientSecret,
		RedirectURL:      b.publicURL + cfg.OIDC.CallbackPath,
		Scopes:           cfg.OIDC.Scopes,
		TrustedAudiences: cfg.OIDC.TrustedAudiences,
		SkipUserInfo:     cfg.OIDC.SkipUserInfo,
		HTTPClient:       cfg.HTTPClient,
		Now:              cfg.Now,
	})
	if err != nil {
		return nil, &ConfigError{Field: "oidc", Err: err}
	}
	sessionRing, err := session.NewKeyRing("session", cfg.Keys...)
	if err != nil {
		return nil, &ConfigError{Field: "keys", Err: err}
	}
	b.loginRing, err = session.NewKeyRing("login", cfg.Keys...)
	if err != nil {
		return nil, &ConfigError{Field: "keys", Err: err}
	}
	b.sessions, err = session.NewManager(session.ManagerConfig{
		Store:       cfg.Session.Store,
		KeyRing:     sessionRing,
		CookieName:  cfg.Session.CookieName,
		Lifetime:    cfg.Session.Lifetime,
		IdleTimeout: cfg.Session.IdleTimeout,
		Now:         cfg.Now,
	})
	if err != nil {
		return nil, &ConfigError{Field: "session", Err: err}
	}
	b.refresher, err = token.NewRefresher(token.RefresherConfig{
		Sessions:      b.sessions,
		RelyingParty:  b.rp,
		RefreshBefore: cfg.OIDC.RefreshBefore,
		LockTTL:       cfg.OIDC.RefreshLockTTL,
		KeepExpired:   cfg.Session.OutliveTokens,
		RevokeOrphans: !cfg.OIDC.SkipRevocation,
		Logger:        b.log,
		Now:           cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	b.clientTokens = token.NewClientTokens(b.rp, cfg.OIDC.RefreshBefore, b.log, cfg.Now)
	if err := b.buildAPIs(); err != nil {
		return nil, err
	}
	b.frontend = cfg.Frontend
	b.routes()
	return b, nil
}

func (b *BFF) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bff/login", b.handleLogin)
	mux.HandleFunc("GET /bff/silent-login", b.handleSilentLogin)
	mux.HandleFunc("GET "+b.cfg.OIDC.CallbackPath, b.handleCallback)
	mux.HandleFunc("GET /bff/user", b.handleUser)
	mux.HandleFunc("GET /bff/logout", b.handleLogout)
	mux.HandleFunc("GET "+b.cfg.OIDC.SignoutCallbackPath, b.handleSignoutCallback)
	// Every method, so that a wrong one is a 400 as Back-Channel Logout
	// asks, not the mux's 405.
	mux.HandleFunc("/bff/backchannel", b.handleBackchannel)
	mux.HandleFunc("GET /bff/sessions", b.handleSessions)
	mux.HandleFunc("POST /bff/sessions/revoke", b.handleRevokeSessions)
	mux.HandleFunc("/bff/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such bff endpoint")
	})
	b.mux = mux
}

// ServeHTTP routes a request: API routes first (matched on the raw path,
// so that a path the proxy must refuse is refused, not cleaned into
// another), then the management endpoints and callbacks, then the
// frontend, else 404.
//
// Use the BFF as the server's handler, or mount it at "/" of a mux that
// routes the app's own paths first. Note that http.ServeMux redirects
// unclean paths (with "..") before any handler sees them.
func (b *BFF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(b.apis) > 0 {
		p := r.URL.EscapedPath()
		for _, api := range b.apis {
			if api.matches(p) {
				api.handler.ServeHTTP(w, r)
				return
			}
		}
	}
	p := r.URL.Path
	if b.frontend == nil || strings.HasPrefix(p, "/bff/") || p == "/bff" ||
		p == b.cfg.OIDC.CallbackPath || p == b.cfg.OIDC.SignoutCallbackPath {
		b.mux.ServeHTTP(w, r)
		return
	}
	b.frontend.ServeHTTP(w, r)
}

// Shutdown waits until work that outlived its request (refresh token
// revocations still in flight) has finished, or ctx ends. Call it after
// the HTTP server has shut down, before the process exits.
func (b *BFF) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { b.background.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bff: background work still running: %w", ctx.Err())
	}
}

// Discover contacts the OP and checks its metadata, so a server can fail at
// start-up rather than at the first login.
func (b *BFF) Discover(ctx context.Context) error {
	_, err := b.rp.Discover(ctx)
	return err
}

// Sessions returns the session manager.
func (b *BFF) Sessions() *session.Manager { return b.sessions }

// RelyingParty returns the OpenID Connect client.
func (b *BFF) RelyingParty() *oidc.RelyingParty { return b.rp }

// RedirectURL returns the redirect URI to register at the OP.
func (b *BFF) RedirectURL() string { return b.publicURL + b.cfg.OIDC.CallbackPath }

// BackchannelLogoutURL returns the back-channel logout URI to register at
// the OP.
func (b *BFF) BackchannelLogoutURL() string { return b.publicURL + "/bff/backchannel" }

// Ready reports whether the BFF can serve sessions now: whether its store
// answers. An OP that is down does not make bff unready, since sessions and
// their still valid tokens keep working without it.
func (b *BFF) Ready(ctx context.Context) error {
	if err := b.cfg.Session.Store.Ping(ctx); err != nil {
		return fmt.Errorf("bff: session store: %w", err)
	}
	return nil
}

// PostLogoutRedirectURL returns the post-logout redirect URI to register at
// the OP.
func (b *BFF) PostLogoutRedirectURL() string { return b.publicURL + b.cfg.OIDC.SignoutCallbackPath }

// RunMaintenance removes expired sessions, used login states and old
// logout-token ids from the store every interval (0: the configured
// Session.CleanupInterval, default 10 minutes) until ctx ends. Stores whose
// server expires entries itself (Redis) have little to do; bbolt needs it.
func (b *BFF) RunMaintenance(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = b.cfg.Session.CleanupInterval
	}
	if interval <= 0 {
		interval = DefaultCleanupInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := b.cfg.Session.Store.DeleteExpired(ctx)
			if err != nil {
				b.log.WarnContext(ctx, "removing expired sessions failed", "error", err)
				continue
			}
			if n > 0 {
				b.log.InfoContext(ctx, "removed expired sessions", "count", n)
			}
		}
	}
}

// redirect answers with a 302 to a local path or an OP URL.
func redirect(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// returnURLParam reads and checks the returnUrl parameter, def when absent.
func returnURLParam(q url.Values, def string) (string, error) {
	vals, ok := q["returnUrl"]
	if !ok {
		return def, nil
	}
	if len(vals) != 1 || !ValidReturnURL(vals[0]) {
		return "", fmt.Errorf("returnUrl must be a local path")
	}
	return vals[0], nil
}
