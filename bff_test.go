package bff_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/bfftest"
	"github.com/gobff/bff/session"
)

func newTestOPApp(t *testing.T, edit ...func(*bff.Config)) (*bfftest.OP, *app) {
	t.Helper()
	op := bfftest.NewOP(t)
	return op, newApp(t, op.Issuer, op.ClientID, op.ClientSecret, edit...)
}

// userClaims decodes a /bff/user response into type -> values.
func userClaims(t *testing.T, body string) map[string][]json.RawMessage {
	t.Helper()
	var list []bff.UserClaim
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("/bff/user body %q: %v", body, err)
	}
	out := map[string][]json.RawMessage{}
	for _, c := range list {
		out[c.Type] = append(out[c.Type], c.Value)
	}
	return out
}

func claimString(t *testing.T, claims map[string][]json.RawMessage, name string) string {
	t.Helper()
	v := claims[name]
	if len(v) != 1 {
		t.Fatalf("claim %s has %d values", name, len(v))
	}
	var s string
	if err := json.Unmarshal(v[0], &s); err != nil {
		t.Fatalf("claim %s is not a string: %s", name, v[0])
	}
	return s
}

func claimNumber(t *testing.T, claims map[string][]json.RawMessage, name string) int64 {
	t.Helper()
	v := claims[name]
	if len(v) != 1 {
		t.Fatalf("claim %s has %d values", name, len(v))
	}
	var n int64
	if err := json.Unmarshal(v[0], &n); err != nil {
		t.Fatalf("claim %s is not a number: %s", name, v[0])
	}
	return n
}

func (a *app) sessionOf(br *browser) *session.Session {
	a.t.Helper()
	s, err := a.bff.Sessions().Get(context.Background(), session.KeyOf(br.SessionCookie()))
	if err != nil {
		a.t.Fatalf("session of the browser: %v", err)
	}
	return s
}

func TestLoginUserLogout(t *testing.T) {
	op, a := newTestOPApp(t)
	br := newBrowser(t, a)

	resp := br.Login("/after-login?tab=2", "", "")
	if got := resp.Header.Get("Location"); got != "/after-login?tab=2" {
		t.Fatalf("callback redirected to %q", got)
	}
	if br.SessionCookie() == "" {
		t.Fatal("no session cookie after login")
	}
	tokens := a.sessionOf(br).Tokens

	resp, body := br.User()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user: %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("/bff/user Cache-Control %q", cc)
	}
	claims := userClaims(t, body)
	if claimString(t, claims, "sub") != "alice-sub" || claimString(t, claims, "name") != "Alice Smith" {
		t.Errorf("claims: %s", body)
	}
	for _, p := range []string{"iss", "aud", "exp", "iat", "nonce"} {
		if _, ok := claims[p]; ok {
			t.Errorf("/bff/user shows protocol claim %s", p)
		}
	}
	logoutURL := claimString(t, claims, "bff:logout_url")
	if !strings.HasPrefix(logoutURL, "/bff/logout?sid=") {
		t.Fatalf("bff:logout_url %q", logoutURL)
	}
	var expiresIn float64
	json.Unmarshal(claims["bff:session_expires_in"][0], &expiresIn)
	if expiresIn <= 0 || expiresIn > 3600 {
		t.Errorf("bff:session_expires_in %v, want (0, 3600]", expiresIn)
	}

	// Logout goes to the OP's end_session_endpoint with id_token_hint,
	// post_logout_redirect_uri and state.
	resp, _ = br.Get(a.url(logoutURL + "&returnUrl=" + url.QueryEscape("/bye")))
	end, _ := url.Parse(follow(t, resp))
	if end.Host != strings.TrimPrefix(op.Issuer, "http://") || end.Path != "/end_session" {
		t.Fatalf("logout redirected to %s", end.Redacted())
	}
	q := end.Query()
	if q.Get("id_token_hint") != tokens.IDToken || q.Get("post_logout_redirect_uri") != a.url("/signout-callback-oidc") || q.Get("state") == "" {
		t.Errorf("end session parameters: post_logout_redirect_uri=%q state=%q hint=%t", q.Get("post_logout_redirect_uri"), q.Get("state"), q.Get("id_token_hint") == tokens.IDToken)
	}
	if got := op.Revoked(); len(got) != 1 || got[0] != tokens.RefreshToken {
		t.Errorf("logout revoked %d tokens, want the refresh token", len(got))
	}
	// The OP sends the browser back; bff sends it on to returnUrl.
	resp, _ = br.Get(end.String())
	resp, _ = br.Get(follow(t, resp))
	if got := resp.Header.Get("Location"); got != "/bye" {
		t.Errorf("signout callback redirected to %q, want /bye", got)
	}

	resp, _ = br.User()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/user after logout: %d", resp.StatusCode)
	}
	br.AssertNoTokenLeak(a.logs.String(), op.Issuer+"/end_session", tokens.AccessToken, tokens.RefreshToken, tokens.IDToken)
}

func TestLoginStartsAFreshSession(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	br.Login("/", "", "")
	first := br.SessionCookie()
	firstKey := session.KeyOf(first)
	br.Login("/", "", "")
	second := br.SessionCookie()
	if first == second || second == "" {
		t.Fatal("a second login kept the session id")
	}
	if _, err := a.store.Get(context.Background(), firstKey); err == nil {
		t.Error("the session of the first login outlived the second login")
	}
	// A cookie value planted before login is never adopted.
	planted := newBrowser(t, a)
	fixed := strings.Repeat("A", 43)
	planted.SetCookie("__Host-bff", fixed)
	planted.Login("/", "", "")
	if planted.SessionCookie() == fixed {
		t.Fatal("session fixation: the planted id was kept")
	}
}

// TestNewLoginEndsThePreviousSession logs in twice with an OP on another
// site (localhost vs 127.0.0.1), where the browser does not send the
// SameSite=Strict session cookie with the OP's redirect to the callback:
// the first session must still end, and its refresh token be revoked.
func TestNewLoginEndsThePreviousSession(t *testing.T) {
	op := bfftest.NewOP(t)
	op.Issuer = strings.Replace(op.Issuer, "127.0.0.1", "localhost", 1)
	a := newApp(t, op.Issuer, op.ClientID, op.ClientSecret)
	br := newBrowser(t, a)
	br.Login("/", "", "")
	first := a.sessionOf(br)
	br.Login("/", "", "")
	if br.SessionCookie() == "" || a.sessionOf(br).Key == first.Key {
		t.Fatal("the second login did not start a new session")
	}
	if _, err := a.store.Get(context.Background(), first.Key); err == nil {
		t.Fatal("the first session outlived the second login")
	}
	if got := op.Revoked(); len(got) != 1 || got[0] != first.Tokens.RefreshToken {
		t.Fatalf("revoked %d tokens, want the first session's refresh token", len(got))
	}
}

func TestParallelLoginsInTwoTabs(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	// Tab 1 and tab 2 both start a login before either finishes.
	r1, _ := br.Get(a.url("/bff/login?returnUrl=/one"))
	r2, _ := br.Get(a.url("/bff/login?returnUrl=/two"))
	op1, _ := br.Get(follow(t, r1))
	op2, _ := br.Get(follow(t, r2))
	// They finish in the other order.
	cb2, _ := br.Get(follow(t, op2))
	cb1, _ := br.Get(follow(t, op1))
	if cb2.Header.Get("Location") != "/two" || cb1.Header.Get("Location") != "/one" {
		t.Fatalf("tabs landed at %q and %q", cb1.Header.Get("Location"), cb2.Header.Get("Location"))
	}
}

func TestCallbackStateRules(t *testing.T) {
	// start runs a login up to the OP's redirect back and returns the
	// callback URL, without requesting it.
	start := func(br *browser) string {
		resp, _ := br.Get(br.URL("/bff/login"))
		resp, _ = br.Get(follow(t, resp))
		return follow(t, resp)
	}
	expectRejected := func(t *testing.T, br *browser, callback string) {
		t.Helper()
		resp, _ := br.Get(callback)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("callback: %d, want 400", resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "__Host-bff" && c.MaxAge >= 0 {
				t.Fatal("a rejected callback set a session cookie")
			}
		}
		if !strings.Contains(br.app.logs.String(), `"rule":"state"`) {
			t.Error("no log line names the state rule")
		}
	}

	t.Run("missing state", func(t *testing.T) {
		_, a := newTestOPApp(t)
		br := newBrowser(t, a)
		cb, _ := url.Parse(start(br))
		q := cb.Query()
		q.Del("state")
		cb.RawQuery = q.Encode()
		expectRejected(t, br, cb.String())
	})
	t.Run("wrong state", func(t *testing.T) {
		_, a := newTestOPApp(t)
		br := newBrowser(t, a)
		cb, _ := url.Parse(start(br))
		q := cb.Query()
		q.Set("state", "not-the-state")
		cb.RawQuery = q.Encode()
		expectRejected(t, br, cb.String())
	})
	t.Run("state of another browser", func(t *testing.T) {
		_, a := newTestOPApp(t)
		victim, attacker := newBrowser(t, a), newBrowser(t, a)
		// The attacker starts a login and lures the victim to its
		// callback: the victim's browser has no login with that state.
		expectRejected(t, victim, start(attacker))
	})
	t.Run("reused state", func(t *testing.T) {
		_, a := newTestOPApp(t)
		br := newBrowser(t, a)
		cb := start(br)
		saved := map[string]string{}
		for k, v := range br.Cookies() {
			saved[k] = v
		}
		resp, _ := br.Get(cb)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		// Replay the callback with a copy of the login cookie.
		replay := newBrowser(t, a)
		for k, v := range saved {
			replay.SetCookie(k, v)
		}
		expectRejected(t, replay, cb)
	})
	t.Run("expired login", func(t *testing.T) {
		_, a := newTestOPApp(t)
		br := newBrowser(t, a)
		cb := start(br)
		a.clock.Advance(bff.DefaultLoginTimeout + time.Minute)
		expectRejected(t, br, cb)
	})
}

func TestCallbackRejectsWrongIssParameter(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	resp, _ := br.Get(a.url("/bff/login"))
	resp, _ = br.Get(follow(t, resp))
	cb, _ := url.Parse(follow(t, resp))
	q := cb.Query()
	q.Set("iss", "https://evil.example")
	cb.RawQuery = q.Encode()
	resp, _ = br.Get(cb.String())
	if resp.StatusCode != http.StatusBadRequest || br.SessionCookie() != "" {
		t.Fatalf("callback with a wrong iss: %d, session %t", resp.StatusCode, br.SessionCookie() != "")
	}
	if !strings.Contains(a.logs.String(), `"rule":"iss_param"`) {
		t.Error("no log line names the iss_param rule")
	}
}

// TestCallbackRejectsBadIDTokens drives each ID token rule through the
// whole login: the callback answers 400, sets no session, and logs the rule.
func TestCallbackRejectsBadIDTokens(t *testing.T) {
	cases := []struct {
		rule string
		edit func(op *bfftest.OP)
	}{
		{"nonce", func(op *bfftest.OP) { op.EditIDToken = func(h, c map[string]any) { c["nonce"] = "x" } }},
		{"signature", func(op *bfftest.OP) {
			other := bfftest.OtherKey()
			op.SignIDToken = func(h, c map[string]any) string { return bfftest.SignJWT(other, h, c) }
		}},
		{"alg", func(op *bfftest.OP) {
			op.SignIDToken = func(h, c map[string]any) string { return bfftest.UnsignedJWT(c) }
		}},
		{"aud", func(op *bfftest.OP) { op.EditIDToken = func(h, c map[string]any) { c["aud"] = "other" } }},
		{"aud", func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["aud"] = []string{op.ClientID, "other"}; c["azp"] = op.ClientID }
		}},
		{"exp", func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }
		}},
		{"iat", func(op *bfftest.OP) { op.EditIDToken = func(h, c map[string]any) { delete(c, "iat") } }},
		{"sub", func(op *bfftest.OP) { op.EditIDToken = func(h, c map[string]any) { delete(c, "sub") } }},
		{"iss", func(op *bfftest.OP) { op.EditIDToken = func(h, c map[string]any) { c["iss"] = "https://evil.example" } }},
		{"userinfo_sub", func(op *bfftest.OP) { op.EditUserinfo = func(c map[string]any) { c["sub"] = "mallory" } }},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			op, a := newTestOPApp(t)
			tc.edit(op)
			br := newBrowser(t, a)
			resp := br.Login("/", "", "")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("callback: %d, want 400", resp.StatusCode)
			}
			if br.SessionCookie() != "" {
				t.Fatal("a rejected login set a session cookie")
			}
			if !strings.Contains(a.logs.String(), `"rule":"`+tc.rule+`"`) {
				t.Errorf("no log line names rule %s: %s", tc.rule, a.logs.String())
			}
		})
	}
}

func TestCallbackWithUnreachableOPIs502(t *testing.T) {
	op, a := newTestOPApp(t)
	br := newBrowser(t, a)
	resp, _ := br.Get(a.url("/bff/login"))
	resp, _ = br.Get(follow(t, resp))
	cb := follow(t, resp)
	op.Server.Close()
	resp, _ = br.Get(cb)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("callback with the OP down: %d, want 502", resp.StatusCode)
	}
}

func TestAccessDeniedReturnsToTheApp(t *testing.T) {
	op, a := newTestOPApp(t)
	op.AuthError = "access_denied"
	br := newBrowser(t, a)
	resp := br.Login("/home", "", "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/home" || br.SessionCookie() != "" {
		t.Fatalf("access_denied: %d to %q, session %t", resp.StatusCode, resp.Header.Get("Location"), br.SessionCookie() != "")
	}
}

func TestOpenRedirectReturnURLsAreRejected(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	// Raw query values, as an attacker would write them in a link.
	for _, raw := range []string{
		"//evil.example",
		"/%5Cevil.example",
		"%2F%5Cevil.example",
		"https://evil.example",
		"https:%2F%2Fevil.example",
		"%2F%2Fevil.example",
		"%252F%252Fevil.example",
		"/%2F%2Fevil.example",
		"javascript:alert(1)",
		"/%09/evil.example",
		"/%0d%0aSet-Cookie:x=y",
		"evil.example",
		"",
	} {
		for _, endpoint := range []string{"/bff/login", "/bff/logout"} {
			resp, _ := br.Get(a.url(endpoint + "?returnUrl=" + raw))
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s?returnUrl=%s: %d (Location %q), want 400", endpoint, raw, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	// And the backslash itself, which Go's URL builder would escape.
	resp, _ := br.Get(a.url(`/bff/login?returnUrl=/\evil.example`))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf(`returnUrl=/\evil.example: %d`, resp.StatusCode)
	}
}

func TestValidReturnURL(t *testing.T) {
	for s, want := range map[string]bool{
		"/":                             true,
		"/a/b?c=d#e":                    true,
		"/search?q=https://":            true,
		"//evil":                        false,
		`/\evil`:                        false,
		"https://evil":                  false,
		"javascript:x":                  false,
		"/%2F%2Fevil":                   false,
		"/%5Cevil":                      false,
		"/\t/evil":                      false,
		"/a\nb":                         false,
		"/.//evil.example":              false,
		"/a/..//evil.example":           false,
		"/%2e//evil.example":            false,
		"/a//b":                         false,
		"/a/./b":                        false,
		"/a/../b":                       false,
		"/a/b/?next=//x":                true,
		"/x%00y":                        false,
		"/x%0D%0Ay":                     false,
		"":                              false,
		"a":                             false,
		"/" + strings.Repeat("a", 3000): false,
	} {
		if got := bff.ValidReturnURL(s); got != want {
			t.Errorf("ValidReturnURL(%q) = %t, want %t", s, got, want)
		}
	}
}

func TestLogoutNeedsTheSessionsSID(t *testing.T) {
	op, a := newTestOPApp(t)
	br := newBrowser(t, a)
	br.Login("/", "", "")
	for _, q := range []string{"", "?sid=", "?sid=wrong", "?returnUrl=/"} {
		resp, _ := br.Get(a.url("/bff/logout" + q))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/bff/logout%s: %d, want 400", q, resp.StatusCode)
		}
		if resp, _ := br.User(); resp.StatusCode != http.StatusOK {
			t.Fatalf("/bff/logout%s ended the session", q)
		}
	}
	if len(op.Revoked()) != 0 {
		t.Error("a refused logout revoked a token")
	}
	if !strings.Contains(a.logs.String(), `"rule":"sid"`) {
		t.Error("no log line names the sid rule")
	}
}

func TestLogoutWithoutSessionRedirects(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	resp, _ := br.Get(a.url("/bff/logout?returnUrl=/x"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/x" {
		t.Fatalf("anonymous logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestLogoutWithoutEndSessionEndpoint(t *testing.T) {
	op, a := newTestOPApp(t)
	op.EditMetadata = func(m map[string]any) { delete(m, "end_session_endpoint") }
	br := newBrowser(t, a)
	br.Login("/", "", "")
	_, body := br.User()
	logoutURL := claimString(t, userClaims(t, body), "bff:logout_url")
	resp, _ := br.Get(a.url(logoutURL + "&returnUrl=/bye"))
	if resp.Header.Get("Location") != "/bye" {
		t.Fatalf("logout redirected to %q, want /bye", resp.Header.Get("Location"))
	}
	if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatal("session survived logout")
	}
}

func TestUserEndpointNeedsAntiforgeryHeader(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	br.Login("/", "", "")
	for _, h := range [][]string{nil, {"X-CSRF", "0"}, {"X-CSRF", ""}, {"X-Requested-With", "XMLHttpRequest"}} {
		resp, body := br.Get(a.url("/bff/user"), h...)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/bff/user with %v: %d, want 401", h, resp.StatusCode)
		}
		if strings.Contains(body, "alice") {
			t.Errorf("/bff/user with %v leaked claims", h)
		}
	}
	if !strings.Contains(a.logs.String(), `"rule":"antiforgery"`) {
		t.Error("no log line names the antiforgery rule")
	}
	anon := newBrowser(t, a)
	if resp, _ := anon.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous /bff/user: %d", resp.StatusCode)
	}
}

func TestProtectAPI(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	if resp, _ := br.Get(a.url("/api/me"), "X-CSRF", "1"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous API call: %d, want 401 (not a redirect)", resp.StatusCode)
	}
	br.Login("/", "", "")
	if resp, _ := br.Get(a.url("/api/me")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API call without X-CSRF: %d, want 401", resp.StatusCode)
	}
	resp, body := br.Get(a.url("/api/me"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"alice-sub"`) {
		t.Fatalf("API call: %d %s", resp.StatusCode, body)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		_, a := newTestOPApp(t, func(c *bff.Config) { c.Session.IdleTimeout = 10 * time.Minute })
		br := newBrowser(t, a)
		br.Login("/", "", "")
		// Activity every 5 minutes keeps the session alive past 10.
		for range 4 {
			a.clock.Advance(5 * time.Minute)
			if resp, _ := br.User(); resp.StatusCode != http.StatusOK {
				t.Fatalf("active session ended: %d", resp.StatusCode)
			}
		}
		a.clock.Advance(11 * time.Minute)
		if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("idle session still alive: %d", resp.StatusCode)
		}
	})
	t.Run("absolute lifetime", func(t *testing.T) {
		_, a := newTestOPApp(t, func(c *bff.Config) {
			c.Session.Lifetime = 30 * time.Minute
			c.Session.IdleTimeout = 20 * time.Minute
		})
		br := newBrowser(t, a)
		br.Login("/", "", "")
		for range 3 {
			a.clock.Advance(9 * time.Minute)
			if resp, _ := br.User(); resp.StatusCode != http.StatusOK {
				t.Fatalf("session ended early: %d", resp.StatusCode)
			}
		}
		a.clock.Advance(4 * time.Minute)
		if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("session outlived its lifetime: %d", resp.StatusCode)
		}
	})
	t.Run("slide=false does not extend", func(t *testing.T) {
		_, a := newTestOPApp(t, func(c *bff.Config) { c.Session.IdleTimeout = 10 * time.Minute })
		br := newBrowser(t, a)
		br.Login("/", "", "")
		for range 2 {
			a.clock.Advance(6 * time.Minute)
			br.Get(a.url("/bff/user?slide=false"), "X-CSRF", "1")
		}
		if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("slide=false extended the session: %d", resp.StatusCode)
		}
	})
}

// countingStore counts Touch calls.
type countingStore struct {
	session.Store
	touches int
}

func (s *countingStore) Touch(ctx context.Context, key session.Key, idle time.Time) error {
	s.touches++
	return s.Store.Touch(ctx, key, idle)
}

func TestIdleExpiryIsRenewedAtMostOncePerMinute(t *testing.T) {
	var cs *countingStore
	_, a := newTestOPApp(t, func(c *bff.Config) {
		cs = &countingStore{Store: c.Session.Store}
		c.Session.Store = cs
	})
	br := newBrowser(t, a)
	br.Login("/", "", "")
	for range 20 {
		br.User()
		a.clock.Advance(5 * time.Second)
	}
	// 100 seconds of requests every 5 seconds: one renewal per minute.
	if cs.touches < 1 || cs.touches > 2 {
		t.Fatalf("%d store writes for 20 requests over 100s, want 1 or 2", cs.touches)
	}
}

func TestSilentLogin(t *testing.T) {
	t.Run("logged in", func(t *testing.T) {
		op, a := newTestOPApp(t)
		br := newBrowser(t, a)
		resp, _ := br.Get(a.url("/bff/silent-login"))
		authURL, _ := url.Parse(follow(t, resp))
		if authURL.Query().Get("prompt") != "none" {
			t.Fatalf("silent login prompt %q", authURL.Query().Get("prompt"))
		}
		resp, _ = br.Get(authURL.String())
		resp, body := br.Get(follow(t, resp))
		checkSilentPage(t, a, resp, body, true)
		if br.SessionCookie() == "" {
			t.Fatal("silent login set no session")
		}
		_ = op
	})
	t.Run("login required", func(t *testing.T) {
		op, a := newTestOPApp(t)
		op.AuthError = "login_required"
		br := newBrowser(t, a)
		resp, _ := br.Get(a.url("/bff/silent-login"))
		resp, _ = br.Get(follow(t, resp))
		resp, body := br.Get(follow(t, resp))
		checkSilentPage(t, a, resp, body, false)
	})
}

// checkSilentPage checks the page a silent login's callback answers: a
// per-response CSP nonce on its only script, no caching, and a postMessage
// of the outcome aimed at exactly the configured origin.
func checkSilentPage(t *testing.T, a *app, resp *http.Response, body string, loggedIn bool) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	i := strings.Index(csp, "'nonce-")
	if resp.StatusCode != http.StatusOK || i < 0 || !strings.Contains(csp, "frame-ancestors 'self'") {
		t.Fatalf("silent page: %d CSP %q", resp.StatusCode, csp)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("silent page Cache-Control %q", cc)
	}
	nonce := csp[i+7 : i+7+strings.Index(csp[i+7:], "'")]
	if !strings.Contains(body, `nonce="`+nonce+`"`) || len(nonce) < 16 {
		t.Error("silent page script lacks the CSP nonce")
	}
	want := regexp.MustCompile(`postMessage\(\{source: "bff-silent-login", isLoggedIn:\s*` + strconv.FormatBool(loggedIn) +
		`\s*\}, "` + regexp.QuoteMeta(a.cfg.PublicURL) + `"\);`)
	if !want.MatchString(body) {
		t.Errorf("silent page does not post isLoggedIn %t to exactly %s: %s", loggedIn, a.cfg.PublicURL, body)
	}
}

func TestPromptNoneIsASilentLogin(t *testing.T) {
	op, a := newTestOPApp(t)
	op.AuthError = "login_required"
	br := newBrowser(t, a)
	resp, _ := br.Get(a.url("/bff/login?prompt=none"))
	resp, _ = br.Get(follow(t, resp))
	resp, body := br.Get(follow(t, resp))
	checkSilentPage(t, a, resp, body, false)
}

func TestSilentLoginWithABadStateAnswersTheIframe(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	resp, body := br.Get(a.url("/signin-oidc?state=unknown&code=x"), "Sec-Fetch-Dest", "iframe")
	checkSilentPage(t, a, resp, body, false)
}

func TestLoginRejectsUnknownPrompt(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	if resp, _ := br.Get(a.url("/bff/login?prompt=evil")); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown prompt: %d", resp.StatusCode)
	}
	resp, _ := br.Get(a.url("/bff/login?prompt=login"))
	u, _ := url.Parse(follow(t, resp))
	if u.Query().Get("prompt") != "login" {
		t.Fatalf("prompt not passed on: %s", u.Redacted())
	}
}

func TestLoginCookiesAreBounded(t *testing.T) {
	_, a := newTestOPApp(t)
	br := newBrowser(t, a)
	for range 10 {
		br.Get(a.url("/bff/login"))
		a.clock.Advance(time.Second)
	}
	n := 0
	for name := range br.Cookies() {
		if strings.HasPrefix(name, "__Host-bff-login-") {
			n++
		}
	}
	if n > 4 {
		t.Fatalf("%d open login cookies, want at most 4", n)
	}
}
