package config_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/config"
	"github.com/gobff/bff/session/memstore"
)

const validYAML = `
listen: "127.0.0.1:9090"
public_url: "https://app.example.com"
oidc:
  issuer: "https://idp.example.com"
  client_id: "bff"
  client_secret: "s3cret"
  scopes: ["openid", "profile"]
session:
  store: "memory://"
  lifetime: "4h"
  idle_timeout: "30m"
keys:
  - "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadValidFile(t *testing.T) {
	f, err := config.Load(writeFile(t, validYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Listen != "127.0.0.1:9090" || f.OIDC.ClientSecret != "s3cret" || time.Duration(f.Session.Lifetime) != 4*time.Hour ||
		len(f.OIDC.Scopes) != 2 || time.Duration(f.Session.IdleTimeout) != 30*time.Minute {
		t.Fatalf("loaded %+v", f)
	}
	cfg, err := f.BFFConfig(memstore.New(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bff.New(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	env := []string{
		"BFF_OIDC_CLIENT_SECRET=from-env",
		"BFF_OIDC_SCOPES=openid, email ,offline_access",
		"BFF_SESSION_LIFETIME=2h",
		"BFF_OIDC_SKIP_USERINFO=true",
		"PATH=/usr/bin",
	}
	f, err := config.Load(writeFile(t, validYAML), env)
	if err != nil {
		t.Fatal(err)
	}
	if f.OIDC.ClientSecret != "from-env" || strings.Join(f.OIDC.Scopes, " ") != "openid email offline_access" ||
		time.Duration(f.Session.Lifetime) != 2*time.Hour || !f.OIDC.SkipUserInfo {
		t.Fatalf("env not applied: %+v", f)
	}
	// Environment alone, without a file.
	f, err = config.Load("", []string{"BFF_PUBLIC_URL=https://a.example", "BFF_KEYS=k1,k2"})
	if err != nil || f.PublicURL != "https://a.example" || len(f.Keys) != 2 {
		t.Fatalf("env only: %+v, %v", f, err)
	}
}

// TestErrorsNameTheKey checks that each kind of mistake stops loading with
// an error naming the key.
func TestAPIsAndFrontend(t *testing.T) {
	yaml := validYAML + `apis:
  - path: /api/orders
    upstream: https://orders.internal/v1
    token: client
    scopes: [orders]
    methods: [GET]
frontend:
  dir: ` + t.TempDir() + `
`
	f, err := config.Load(writeFile(t, yaml), []string{"BFF_APIS_1_PATH=/api/stock", "BFF_APIS_1_UPSTREAM=https://stock.internal", "BFF_APIS_0_TOKEN=user_or_client"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(f.APIs) != 2 || f.APIs[0].Token != "user_or_client" || f.APIs[0].Scopes[0] != "orders" || f.APIs[1].Upstream != "https://stock.internal" {
		t.Fatalf("apis: %+v", f.APIs)
	}
	cfg, err := f.BFFConfig(memstore.New(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bff.New(cfg); err != nil {
		t.Fatal(err)
	}
	// The frontend directory has no index.html: the error names the key.
	_, err = f.FrontendHandler(slog.Default())
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "frontend.dir" {
		t.Fatalf("want an error naming frontend.dir, got %v", err)
	}
}

func TestBadAPIsNameTheKey(t *testing.T) {
	cases := []struct{ name, api, key string }{
		{"bad token type", "{path: /api, upstream: https://u, token: admin}", "apis[0].token"},
		{"path under /bff", "{path: /bff/x, upstream: https://u}", "apis[0].path"},
		{"relative upstream", "{path: /api, upstream: u/v1}", "apis[0].upstream"},
		{"lower-case method", "{path: /api, upstream: https://u, methods: [get]}", "apis[0].methods[0]"},
		{"path traversal", "{path: /api/../x, upstream: https://u}", "apis[0].path"},
		{"prefix over the callback", "{path: /signin-oidc, upstream: https://u}", "apis[0].path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Load(writeFile(t, validYAML+"apis: ["+tc.api+"]\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantBFFError(t, f, tc.key)
		})
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        []string
		key        string
	}{
		{"unknown top-level key", validYAML + "listn: x\n", nil, "listn"},
		{"unknown nested key", strings.Replace(validYAML, "client_id:", "clientid:", 1), nil, "oidc.clientid"},
		{"bad duration", strings.Replace(validYAML, `"4h"`, `"four hours"`, 1), nil, "session.lifetime"},
		{"mapping for a string", strings.Replace(validYAML, `client_id: "bff"`, "client_id: {a: b}", 1), nil, "oidc.client_id"},
		{"string for a list", strings.Replace(validYAML, `["openid", "profile"]`, `openid`, 1), nil, "oidc.scopes"},
		{"duplicate key", validYAML + "listen: \"127.0.0.1:1\"\n", nil, "listen"},
		{"bad env value", validYAML, []string{"BFF_SESSION_IDLE_TIMEOUT=soon"}, "BFF_SESSION_IDLE_TIMEOUT"},
		{"unknown env variable", validYAML, []string{"BFF_OIDC_CLIENT_SECRT=x"}, "BFF_OIDC_CLIENT_SECRT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(writeFile(t, tc.yaml), tc.env)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("want an error naming %q, got %v", tc.key, err)
			}
		})
	}
}

func TestUnknownKeySuggestsTheKnownOne(t *testing.T) {
	_, err := config.Load(writeFile(t, "oidc:\n  isuer: https://idp.example\n"), nil)
	if err == nil || err.Error() != "config: oidc.isuer (line 2): unknown key (did you mean issuer?)" {
		t.Fatalf("got %v", err)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	cases := []struct{ name, from, to, key string }{
		{"bad key", `"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="`, `"c2hvcnQ="`, "keys[0]"},
		{"bad store", `"memory://"`, `"redis-ish://x"`, "session.store"},
		{"bad listen", `"127.0.0.1:9090"`, `"nope"`, "listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Load(writeFile(t, strings.Replace(validYAML, tc.from, tc.to, 1)), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = f.Validate()
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("want an error naming %q, got %v", tc.key, err)
			}
		})
	}
}

// TestBFFNewNamesTheKey checks the rules bff.New enforces on values that
// parse: required values, and http only on loopback.
func TestBFFNewNamesTheKey(t *testing.T) {
	cases := []struct{ name, from, to, key string }{
		{"http public_url on a public host", `"https://app.example.com"`, `"http://app.example.com"`, "public_url"},
		{"http issuer on a public host", `"https://idp.example.com"`, `"http://idp.example.com"`, "oidc.issuer"},
		{"public_url with a path", `"https://app.example.com"`, `"https://app.example.com/app"`, "public_url"},
		{"missing client_id", `client_id: "bff"`, `client_id: ""`, "oidc.client_id"},
		{"missing client_secret", `client_secret: "s3cret"`, `client_secret: ""`, "oidc.client_secret"},
		{"missing issuer", `issuer: "https://idp.example.com"`, `issuer: ""`, "oidc.issuer"},
		{"idle longer than lifetime", `idle_timeout: "30m"`, `idle_timeout: "5h"`, "session.idle_timeout"},
		{"callback not a path", "scopes:", "callback_path: \"signin\"\n  scopes:", "oidc.callback_path"},
		{"bad cookie name", "lifetime:", "cookie_name: \"a b\"\n  lifetime:", "session.cookie_name"},
		{"cookie name without __Host-", "lifetime:", "cookie_name: \"bff\"\n  lifetime:", "session.cookie_name"},
		{"callback path with a pattern", "scopes:", "callback_path: \"/cb/{x\"\n  scopes:", "oidc.callback_path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Load(writeFile(t, strings.Replace(validYAML, tc.from, tc.to, 1)), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantBFFError(t, f, tc.key)
		})
	}
}

// wantBFFError checks that bff.New refuses the configuration of f with an
// error naming key.
func wantBFFError(t *testing.T, f *config.File, key string) {
	t.Helper()
	cfg, err := f.BFFConfig(memstore.New(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	_, err = bff.New(cfg)
	var ce *bff.ConfigError
	if !errors.As(err, &ce) || ce.Field != key {
		t.Fatalf("want an error naming %q, got %v", key, err)
	}
}

func TestHTTPOnLoopbackIsAccepted(t *testing.T) {
	for _, u := range []string{"http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080"} {
		yaml := strings.Replace(strings.Replace(validYAML, `"https://app.example.com"`, `"`+u+`"`, 1), `"https://idp.example.com"`, `"`+u+`/idp"`, 1)
		f, err := config.Load(writeFile(t, yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := f.BFFConfig(memstore.New(), slog.Default())
		if _, err := bff.New(cfg); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestTokenAndLogoutSettings: the token lifecycle and logout keys reach
// bff.Config.
func TestTokenAndLogoutSettings(t *testing.T) {
	yaml := strings.Replace(validYAML, `  scopes: ["openid", "profile"]`, `  scopes: ["openid", "profile"]
  refresh_before: 2m
  refresh_lock_ttl: 20s
  skip_revocation: true
  backchannel_strict_typ: true
  backchannel_all_sessions: true`, 1) + `
`
	yaml = strings.Replace(yaml, `  idle_timeout: "30m"`, `  idle_timeout: "30m"
  outlive_tokens: true
  cleanup_interval: 1m`, 1)
	f, err := config.Load(writeFile(t, yaml), []string{"BFF_OIDC_REFRESH_LOCK_TTL=25s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.BFFConfig(memstore.New(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	o, s := cfg.OIDC, cfg.Session
	if o.RefreshBefore != 2*time.Minute || o.RefreshLockTTL != 25*time.Second || !o.SkipRevocation ||
		!o.BackchannelStrictTyp || !o.BackchannelAllSessions || !s.OutliveTokens || s.CleanupInterval != time.Minute {
		t.Fatalf("settings not carried over: %+v %+v", o, s)
	}
	if _, err := bff.New(cfg); err != nil {
		t.Fatal(err)
	}
	cfg.OIDC.RefreshLockTTL = 100 * time.Millisecond
	var ce *bff.ConfigError
	if _, err := bff.New(cfg); !errors.As(err, &ce) || ce.Field != "oidc.refresh_lock_ttl" {
		t.Fatalf("a 100ms lock ttl: %v", err)
	}
}
