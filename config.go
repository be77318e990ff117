package bff

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gobff/bff/session"
)

// Defaults of [Config].
const (
	DefaultCallbackPath           = "/signin-oidc"
	DefaultSignoutCallbackPath    = "/signout-callback-oidc"
	DefaultPostLogoutRedirectPath = "/"
	DefaultLoginTimeout           = 10 * time.Minute
	DefaultCleanupInterval        = 10 * time.Minute
)

// DefaultScopes are requested when Config.OIDC.Scopes is empty.
var DefaultScopes = []string{"openid", "profile", "email", "offline_access"}

// Config configures a [BFF]. The zero values of optional fields take the
// defaults documented on them; [New] rejects a Config it cannot run with and
// names the field.
type Config struct {
	// PublicURL is the origin the browser sees, such as
	// "https://app.example.com". The redirect URI registered at the OP is
	// PublicURL + OIDC.CallbackPath. http:// is accepted only for loopback
	// hosts.
	PublicURL string

	OIDC    OIDCConfig
	Session SessionConfig

	// APIs are the remote API routes bff proxies, attaching tokens.
	APIs []APIConfig
	// APITransport carries the requests to API upstreams; default
	// proxy.NewTransport().
	APITransport http.RoundTripper
	// Frontend serves every request that is not for bff's endpoints or an
	// API route: the SPA (see package frontend). Nil answers 404.
	Frontend http.Handler

	// Keys are the master keys that seal tokens at rest and the login
	// state, newest first; each [session.KeySize] bytes. Keep a retired key
	// in the list until the sessions sealed with it have expired.
	Keys [][]byte

	// Logger receives bff's structured logs; default slog.Default().
	Logger *slog.Logger
	// HTTPClient is used for every request to the OP; default a client
	// with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// OIDCConfig configures bff as a client of its OpenID Provider.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes default to DefaultScopes. Without offline_access most OPs
	// issue no refresh token, and the session ends with its access token.
	Scopes []string
	// CallbackPath receives the authorization response; default
	// "/signin-oidc".
	CallbackPath string
	// SignoutCallbackPath is where the OP sends the browser back after
	// logout (the post_logout_redirect_uri is PublicURL + this path); bff
	// then redirects to the logout's returnUrl. Default
	// "/signout-callback-oidc".
	SignoutCallbackPath string
	// PostLogoutRedirectPath is where the browser lands after logout when
	// the logout named no returnUrl; default "/".
	PostLogoutRedirectPath string
	// TrustedAudiences may appear in ID tokens besides the client id.
	TrustedAudiences []string
	// SkipUserInfo turns off the userinfo request after login.
	SkipUserInfo bool
	// LoginTimeout bounds the time between /bff/login and the callback;
	// default 10 minutes.
	LoginTimeout time.Duration
	// RefreshBefore is how long before its expiry an access token is
	// refreshed; default one minute (or half the token's lifetime, when
	// that is shorter).
	RefreshBefore time.Duration
	// RefreshLockTTL bounds how long one bff instance may hold a session's
	// refresh lock in the store; default 30s. An instance that dies while
	// refreshing holds up that session's refresh for this long, after which
	// another instance takes over. Keep it well above the OP's usual
	// response time: the token request gets three quarters of it.
	RefreshLockTTL time.Duration
	// SkipRevocation turns off the revocation (RFC 7009) of a session's
	// refresh token when the session ends by logout, back-channel logout or
	// a new login. By default bff revokes it when the OP has a
	// revocation_endpoint, as Duende.BFF's RevokeRefreshTokenOnLogout does.
	SkipRevocation bool
	// BackchannelStrictTyp requires logout tokens to carry the JWT header
	// "typ": "logout+jwt" (Back-Channel Logout 1.0, section 2.4). Off by
	// default, since many OPs do not send it yet.
	BackchannelStrictTyp bool
	// BackchannelAllSessions makes a back-channel logout that names a sid
	// end every session of that user at this OP, not only the sessions of
	// that OP session (Duende.BFF's BackchannelLogoutAllUserSessions).
	BackchannelAllSessions bool
}

// SessionConfig configures server-side sessions.
type SessionConfig struct {
	// Store keeps the sessions; required. See packages session/memstore
	// and session/boltstore.
	Store session.Store
	// CookieName defaults to "__Host-bff".
	CookieName string
	// Lifetime is the absolute session lifetime; default 8h.
	Lifetime time.Duration
	// IdleTimeout ends a session unused for that long; default 1h.
	IdleTimeout time.Duration
	// OutliveTokens keeps a session whose access token has expired and
	// which has no refresh token until the session's own end, instead of
	// ending it with the token: user_or_none routes then go upstream
	// without a token, user_or_client routes with the client token, and
	// user routes answer 401. By default the session ends with its last
	// usable token, so a SPA never sees a session that looks logged in but
	// cannot call its APIs. A refresh token the OP refuses (invalid_grant)
	// ends the session either way.
	OutliveTokens bool
	// CleanupInterval is how often RunMaintenance removes expired
	// sessions, used login states and old logout-token ids from stores that
	// do not expire them themselves; default 10 minutes.
	CleanupInterval time.Duration
}

// ConfigError names the configuration field that is wrong.
type ConfigError struct {
	Field string // as in the YAML file, e.g. "oidc.issuer"
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("config: %s: %v", e.Field, e.Err) }

func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// withDefaults returns cfg with its defaults filled in, or the first error.
func (cfg Config) withDefaults() (Config, error) {
	if _, err := ParseOrigin("public_url", cfg.PublicURL, false); err != nil {
		return cfg, err
	}
	if _, err := ParseOrigin("oidc.issuer", cfg.OIDC.Issuer, true); err != nil {
		return cfg, err
	}
	if cfg.OIDC.ClientID == "" {
		return cfg, configErr("oidc.client_id", "is required")
	}
	if cfg.OIDC.ClientSecret == "" {
		return cfg, configErr("oidc.client_secret", "is required: bff is a confidential client")
	}
	if len(cfg.OIDC.Scopes) == 0 {
		cfg.OIDC.Scopes = DefaultScopes
	}
	for _, p := range []struct {
		field string
		value *string
		def   string
	}{
		{"oidc.callback_path", &cfg.OIDC.CallbackPath, DefaultCallbackPath},
		{"oidc.signout_callback_path", &cfg.OIDC.SignoutCallbackPath, DefaultSignoutCallbackPath},
		{"oidc.post_logout_redirect_path", &cfg.OIDC.PostLogoutRedirectPath, DefaultPostLogoutRedirectPath},
	} {
		if *p.value == "" {
			*p.value = p.def
		}
		if !ValidReturnURL(*p.value) {
			return cfg, configErr(p.field, "%q must be a local path starting with /", *p.value)
		}
	}
	if cfg.OIDC.CallbackPath == cfg.OIDC.SignoutCallbackPath {
		return cfg, configErr("oidc.signout_callback_path", "must differ from oidc.callback_path")
	}
	for _, p := range []struct{ field, path string }{
		{"oidc.callback_path", cfg.OIDC.CallbackPath},
		{"oidc.signout_callback_path", cfg.OIDC.SignoutCallbackPath},
	} {
		if strings.ContainsAny(p.path, "?#{}% ") || p.path == "/" || p.path == "/bff" || strings.HasPrefix(p.path, "/bff/") {
			return cfg, configErr(p.field, "%q must be a plain path of its own, not / and not under /bff/", p.path)
		}
	}
	if cfg.OIDC.LoginTimeout <= 0 {
		cfg.OIDC.LoginTimeout = DefaultLoginTimeout
	}
	if cfg.Session.Store == nil {
		return cfg, configErr("session.store", "is required")
	}
	if cfg.Session.Lifetime < 0 {
		return cfg, configErr("session.lifetime", "must be positive")
	}
	if cfg.Session.IdleTimeout < 0 {
		return cfg, configErr("session.idle_timeout", "must be positive")
	}
	lifetime, idle := cfg.Session.Lifetime, cfg.Session.IdleTimeout
	if lifetime == 0 {
		lifetime = session.DefaultLifetime
	}
	if idle > lifetime {
		return cfg, configErr("session.idle_timeout", "%v is longer than session.lifetime %v", idle, lifetime)
	}
	if name := cfg.Session.CookieName; name != "" && (!validCookieName(name) || !strings.HasPrefix(name, "__Host-")) {
		// Without the prefix, a sibling subdomain could set or shadow the
		// session cookie (RFC 6265bis, section 4.1.3.2).
		return cfg, configErr("session.cookie_name", "%q must be a valid cookie name starting with __Host-", name)
	}
	if len(cfg.Keys) == 0 {
		return cfg, configErr("keys", "at least one key is required (bff keygen prints one)")
	}
	for i, k := range cfg.Keys {
		if len(k) != session.KeySize {
			return cfg, configErr(fmt.Sprintf("keys[%d]", i), "is %d bytes, want %d", len(k), session.KeySize)
		}
	}
	if cfg.OIDC.RefreshBefore < 0 {
		return cfg, configErr("oidc.refresh_before", "must be positive")
	}
	if cfg.OIDC.RefreshLockTTL < 0 {
		return cfg, configErr("oidc.refresh_lock_ttl", "must be positive")
	}
	if cfg.OIDC.RefreshLockTTL > 0 && cfg.OIDC.RefreshLockTTL < time.Second {
		return cfg, configErr("oidc.refresh_lock_ttl", "%v is too short for a request to the OP; use at least 1s", cfg.OIDC.RefreshLockTTL)
	}
	if cfg.Session.CleanupInterval < 0 {
		return cfg, configErr("session.cleanup_interval", "must be positive")
	}
	if err := cfg.validateAPIs(); err != nil {
		return cfg, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// ParseOrigin parses the URL in field (a public URL or an issuer): absolute,
// https, or http for a loopback host only (localhost, 127.0.0.0/8, ::1),
// with no user info, query or fragment, and a path only when allowPath (an
// issuer may have one; a public URL is an origin).
func ParseOrigin(field, raw string, allowPath bool) (*url.URL, error) {
	if raw == "" {
		return nil, configErr(field, "is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, configErr(field, "%q is not a URL: %v", raw, err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, configErr(field, "%q must be an absolute URL with a host and no user info, query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, configErr(field, "%q: http is allowed only for loopback hosts; use https", raw)
		}
	default:
		return nil, configErr(field, "%q must use https (or http on a loopback host)", raw)
	}
	if !allowPath && u.Path != "" && u.Path != "/" {
		return nil, configErr(field, "%q must be an origin without a path", raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}
