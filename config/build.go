package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/frontend"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/storeurl"
)

// Validate checks f beyond what bff.New checks and fills in its defaults:
// listen address, store URL, keys, log settings.
func (f *File) Validate() error {
	if f.Listen == "" {
		f.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(f.Listen); err != nil {
		return &Error{Key: "listen", Err: fmt.Errorf("%q is not host:port", f.Listen)}
	}
	if f.Session.Store == "" {
		f.Session.Store = DefaultStore
	}
	if err := storeurl.Check(f.Session.Store); err != nil {
		return &Error{Key: "session.store", Err: err}
	}
	if len(f.Keys) == 0 {
		return &Error{Key: "keys", Err: errors.New("at least one key is required; run `bff keygen` for one")}
	}
	for i, k := range f.Keys {
		if _, err := session.ParseKey(k); err != nil {
			return &Error{Key: fmt.Sprintf("keys[%d]", i), Err: err}
		}
	}
	if f.Frontend.Dir != "" && f.Frontend.Upstream != "" {
		return &Error{Key: "frontend", Err: errors.New("set dir or upstream, not both")}
	}
	for i, api := range f.APIs {
		if api.Path == "" {
			return &Error{Key: fmt.Sprintf("apis[%d].path", i), Err: errors.New("is required")}
		}
		if api.Upstream == "" {
			return &Error{Key: fmt.Sprintf("apis[%d].upstream", i), Err: errors.New("is required")}
		}
	}
	switch strings.ToLower(f.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		return &Error{Key: "log.level", Err: fmt.Errorf("%q is not debug, info, warn or error", f.Log.Level)}
	}
	switch f.Log.Format {
	case "", "text", "json":
	default:
		return &Error{Key: "log.format", Err: fmt.Errorf("%q is not text or json", f.Log.Format)}
	}
	return nil
}

// Logger returns the logger the log section describes, writing to w.
func (f *File) Logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(orDefault(f.Log.Level, "info"))))
	opts := &slog.HandlerOptions{Level: level}
	if f.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// BFFConfig returns the bff.Config of f, with store as the session store.
// bff.New checks the rest and names the key of anything wrong.
func (f *File) BFFConfig(store session.Store, logger *slog.Logger) (bff.Config, error) {
	keys := make([][]byte, len(f.Keys))
	for i, k := range f.Keys {
		key, err := session.ParseKey(k)
		if err != nil {
			return bff.Config{}, &Error{Key: fmt.Sprintf("keys[%d]", i), Err: err}
		}
		keys[i] = key
	}
	return bff.Config{
		PublicURL: f.PublicURL,
		OIDC: bff.OIDCConfig{
			Issuer:                 f.OIDC.Issuer,
			ClientID:               f.OIDC.ClientID,
			ClientSecret:           f.OIDC.ClientSecret,
			Scopes:                 f.OIDC.Scopes,
			CallbackPath:           f.OIDC.CallbackPath,
			SignoutCallbackPath:    f.OIDC.SignoutCallbackPath,
			PostLogoutRedirectPath: f.OIDC.PostLogoutRedirectPath,
			TrustedAudiences:       f.OIDC.TrustedAudiences,
			SkipUserInfo:           f.OIDC.SkipUserInfo,
			LoginTimeout:           time.Duration(f.OIDC.LoginTimeout),
			RefreshBefore:          time.Duration(f.OIDC.RefreshBefore),
			RefreshLockTTL:         time.Duration(f.OIDC.RefreshLockTTL),
			SkipRevocation:         f.OIDC.SkipRevocation,
			BackchannelStrictTyp:   f.OIDC.BackchannelStrictTyp,
			BackchannelAllSessions: f.OIDC.BackchannelAllSessions,
		},
		APIs: f.apis(),
		Session: bff.SessionConfig{
			Store:           store,
			CookieName:      f.Session.CookieName,
			Lifetime:        time.Duration(f.Session.Lifetime),
			IdleTimeout:     time.Duration(f.Session.IdleTimeout),
			OutliveTokens:   f.Session.OutliveTokens,
			CleanupInterval: time.Duration(f.Session.CleanupInterval),
		},
		Keys:   keys,
		Logger: logger,
	}, nil
}

func (f *File) apis() []bff.APIConfig {
	var out []bff.APIConfig
	for _, a := range f.APIs {
		out = append(out, bff.APIConfig{
			Path:          a.Path,
			Upstream:      a.Upstream,
			Token:         bff.TokenType(a.Token),
			Scopes:        a.Scopes,
			Resource:      a.Resource,
			Methods:       a.Methods,
			PassSetCookie: a.PassSetCookie,
		})
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// FrontendHandler returns the handler of the frontend section, or nil when
// the section is empty. bff's own paths and the API prefixes never fall back
// to index.html.
func (f *File) FrontendHandler(log *slog.Logger) (http.Handler, error) {
	if f.Frontend.Dir == "" && f.Frontend.Upstream == "" {
		return nil, nil
	}
	opts := frontend.Options{
		NoFallback: []string{"/bff", orDefault(f.OIDC.CallbackPath, bff.DefaultCallbackPath), orDefault(f.OIDC.SignoutCallbackPath, bff.DefaultSignoutCallbackPath)},
		Logger:     log,
	}
	for _, api := range f.APIs {
		opts.NoFallback = append(opts.NoFallback, api.Path)
	}
	if f.Frontend.Dir != "" {
		h, err := frontend.Dir(f.Frontend.Dir, opts)
		if err != nil {
			return nil, &Error{Key: "frontend.dir", Err: err}
		}
		return h, nil
	}
	h, err := frontend.Upstream(f.Frontend.Upstream, opts)
	if err != nil {
		return nil, &Error{Key: "frontend.upstream", Err: err}
	}
	return h, nil
}
