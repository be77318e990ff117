// Package config reads bff's YAML configuration file and the BFF_*
// environment variables that override it, and turns them into a
// [bff.Config]. Unknown keys, missing required values and bad values are
// errors that name the key, so a typo stops start-up instead of being
// ignored.
//
// Every key has an environment variable: BFF_ followed by its path in upper
// case with "_" between the parts, e.g. BFF_OIDC_CLIENT_SECRET for
// oidc.client_secret. Lists take comma-separated values (BFF_KEYS,
// BFF_OIDC_SCOPES); a list of objects takes an index, e.g.
// BFF_APIS_0_UPSTREAM.
package config

import (
	"fmt"
	"time"
)

// File is the configuration file's structure. The yaml tags are the names
// users write; the same names appear in error messages.
type File struct {
	// Listen is the address bff serve listens on; default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// PublicURL is the origin the browser sees.
	PublicURL string  `yaml:"public_url"`
	OIDC      OIDC    `yaml:"oidc"`
	Session   Session `yaml:"session"`
	// Keys are base64 master keys, newest first (bff keygen prints one).
	Keys []string `yaml:"keys"`
	// APIs are the remote API routes.
	APIs     []API    `yaml:"apis"`
	Frontend Frontend `yaml:"frontend"`
	Log      Log      `yaml:"log"`
}

// API is one entry of the apis list.
type API struct {
	Path     string `yaml:"path"`
	Upstream string `yaml:"upstream"`
	// Token is user (default), client, user_or_client, user_or_none or none.
	Token         string   `yaml:"token"`
	Scopes        []string `yaml:"scopes"`
	Resource      string   `yaml:"resource"`
	Methods       []string `yaml:"methods"`
	PassSetCookie bool     `yaml:"pass_set_cookie"`
}

// Frontend is the frontend section: a directory of built files, or a dev
// server to proxy. At most one.
type Frontend struct {
	Dir      string `yaml:"dir"`
	Upstream string `yaml:"upstream"`
}

// OIDC is the oidc section.
type OIDC struct {
	Issuer                 string   `yaml:"issuer"`
	ClientID               string   `yaml:"client_id"`
	ClientSecret           string   `yaml:"client_secret"`
	Scopes                 []string `yaml:"scopes"`
	CallbackPath           string   `yaml:"callback_path"`
	SignoutCallbackPath    string   `yaml:"signout_callback_path"`
	PostLogoutRedirectPath string   `yaml:"post_logout_redirect_path"`
	TrustedAudiences       []string `yaml:"trusted_audiences"`
	SkipUserInfo           bool     `yaml:"skip_userinfo"`
	LoginTimeout           Duration `yaml:"login_timeout"`
	RefreshBefore          Duration `yaml:"refresh_before"`
	RefreshLockTTL         Duration `yaml:"refresh_lock_ttl"`
	SkipRevocation         bool     `yaml:"skip_revocation"`
	BackchannelStrictTyp   bool     `yaml:"backchannel_strict_typ"`
	BackchannelAllSessions bool     `yaml:"backchannel_all_sessions"`
}

// Session is the session section.
type Session struct {
	// Store is memory://, bolt://PATH; default bolt://./data/sessions.db.
	Store           string   `yaml:"store"`
	CookieName      string   `yaml:"cookie_name"`
	Lifetime        Duration `yaml:"lifetime"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	OutliveTokens   bool     `yaml:"outlive_tokens"`
	CleanupInterval Duration `yaml:"cleanup_interval"`
}

// Log is the log section.
type Log struct {
	// Level is debug, info, warn or error; default info.
	Level string `yaml:"level"`
	// Format is text or json; default text.
	Format string `yaml:"format"`
}

// Duration is a time.Duration written as Go writes one: "90s", "8h".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 90s or 8h", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(v), nil
}

// Defaults of the file.
const (
	DefaultListen = "127.0.0.1:8080"
	DefaultStore  = "bolt://./data/sessions.db"
)
