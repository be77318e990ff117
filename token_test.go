package bff_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/bfftest"
	"github.com/gobff/bff/devidp"
)

// storm sends n API calls at once with the session cookie, request i to
// apps[i%len(apps)], and returns their status codes.
func storm(t *testing.T, apps []*app, cookie, path string, n int) []int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, apps[i%len(apps)].url(path), nil)
			req.Header.Set("X-CSRF", "1")
			req.AddCookie(&http.Cookie{Name: "__Host-bff", Value: cookie})
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	return codes
}

// TestRefreshStormAfterExpiry: the real OP issues 2-second access tokens
// with rotating refresh tokens. Once alice's token has expired, 1,000 API
// calls arrive at once, on one bff instance or spread over two instances
// that share one store (as instances sharing Redis do): the OP sees exactly
// one refresh, and every call reaches the upstream with the new token.
func TestRefreshStormAfterExpiry(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d instances", instances), func(t *testing.T) {
			up := newUpstream(t)
			route := func(c *bff.Config) {
				c.APIs = []bff.APIConfig{{Path: "/api", Upstream: up.server.URL, Token: bff.TokenUser}}
				c.Now = time.Now // the OP's tokens expire in real time
			}
			op, a := newDevOPApp(t, devOPOptions{idp: func(c *devidp.Config) { c.AccessTokenLifetime = 2 * time.Second }}, route)
			apps := []*app{a}
			for range instances - 1 {
				// Another instance: a server of its own over the same store
				// object and keys, with its own singleflight.
				apps = append(apps, newApp(t, a.cfg.OIDC.Issuer, a.cfg.OIDC.ClientID, a.cfg.OIDC.ClientSecret, route, func(c *bff.Config) {
					c.Session.Store = a.store
					c.Keys = a.cfg.Keys
				}))
			}
			br := newBrowser(t, a)
			br.Login("/", "alice", "alice")
			first := a.sessionOf(br).Tokens
			if first.Expiry.Sub(time.Now()) > 3*time.Second || first.RefreshToken == "" {
				t.Fatalf("the OP issued a token for %v, refresh token %t", time.Until(first.Expiry), first.RefreshToken != "")
			}
			// The refreshed token lives long, so that however slowly the
			// storm goes through, it meets one expiry only.
			op.SetAccessTokenLifetime(time.Hour)
			time.Sleep(time.Until(first.Expiry) + 100*time.Millisecond)

			codes := storm(t, apps, br.SessionCookie(), "/api/orders", 1000)
			if got := op.Stats().RefreshGrants; got != 1 {
				t.Fatalf("the OP saw %d refreshes for 1,000 concurrent requests on %d instance(s), want 1", got, instances)
			}
			for i, c := range codes {
				if c != http.StatusOK {
					t.Fatalf("request %d: %d", i, c)
				}
			}
			fresh := a.sessionOf(br).Tokens
			if fresh.AccessToken == first.AccessToken || fresh.RefreshToken == first.RefreshToken {
				t.Fatal("the session kept its old access or refresh token")
			}
			reqs := up.requests()
			if len(reqs) != 1000 {
				t.Fatalf("the upstream got %d requests, want 1000", len(reqs))
			}
			for _, r := range reqs {
				if bearer(r) != fresh.AccessToken {
					t.Fatal("an upstream request carried a token other than the refreshed one")
				}
			}
		})
	}
}

// TestRefreshWithTheOPDown: when the OP cannot be reached, a call whose
// token has expired gets a 502 problem document, the session stays, and the
// next call after the OP is back refreshes and succeeds.
func TestRefreshWithTheOPDown(t *testing.T) {
	up := newUpstream(t)
	op, a := newDevOPApp(t, devOPOptions{}, func(c *bff.Config) {
		c.APIs = []bff.APIConfig{{Path: "/api", Upstream: up.server.URL, Token: bff.TokenUser}}
	})
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	old := a.sessionOf(br)
	a.clock.Advance(devidp.DefaultAccessTokenLifetime + time.Second)

	op.Stop()
	resp, body := br.Get(a.url("/api/orders"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("OP down: %d %s, want 502 or 503", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("OP down: Content-Type %q, want a problem document", ct)
	}
	if len(up.requests()) != 0 {
		t.Fatal("a request with an expired token went upstream")
	}
	if got := a.sessionOf(br); got.Version != old.Version {
		t.Fatal("the session changed while the OP was down")
	}
	if resp, _ := br.User(); resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user with the OP down: %d, want 200 (the session stays)", resp.StatusCode)
	}
	if strings.Contains(a.logs.String(), old.Tokens.RefreshToken) {
		t.Fatal("the refresh token is in a log line")
	}

	op.Start()
	resp, body = br.Get(a.url("/api/orders"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the OP came back: %d %s", resp.StatusCode, body)
	}
	if got := op.Stats().RefreshGrants; got != 1 {
		t.Fatalf("%d refreshes, want 1", got)
	}
	if fresh := a.sessionOf(br).Tokens.AccessToken; fresh == old.Tokens.AccessToken || bearer(up.last(t)) != fresh {
		t.Fatal("the upstream did not get the refreshed token")
	}
}

// TestRefreshWithTheOPFailing: a token endpoint answering 503 is an outage
// too, not a dead session.
func TestRefreshWithTheOPFailing(t *testing.T) {
	up := newUpstream(t)
	op, a := newTestOPApp(t, func(c *bff.Config) {
		c.APIs = []bff.APIConfig{{Path: "/api", Upstream: up.server.URL, Token: bff.TokenUser}}
	})
	op.AccessTokenLifetime = 2 * time.Minute
	br := newBrowser(t, a)
	br.Login("/", "", "")
	a.clock.Advance(150 * time.Second) // past the token, not past the ID token's exp
	op.Set(func(op *bfftest.OP) { op.TokenStatus = http.StatusServiceUnavailable })
	resp, body := br.Get(a.url("/api/orders"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("token endpoint 503: %d %s", resp.StatusCode, body)
	}
	a.sessionOf(br) // still there
	op.Set(func(op *bfftest.OP) { op.TokenStatus = 0 })
	if resp, body := br.Get(a.url("/api/orders"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the OP recovered: %d %s", resp.StatusCode, body)
	}
}

// TestDeadRefreshTokenEndsTheSession: the OP revokes alice's grant, then her
// token expires: the API call is 401 and the session is gone from the store,
// not left looking logged in.
func TestDeadRefreshTokenEndsTheSession(t *testing.T) {
	up := newUpstream(t)
	op, a := newDevOPApp(t, devOPOptions{}, func(c *bff.Config) {
		c.APIs = []bff.APIConfig{{Path: "/api", Upstream: up.server.URL, Token: bff.TokenUser}}
	})
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	key := a.sessionOf(br).Key
	op.RevokeUserTokens(devidp.DefaultUsers()[0].Subject)
	a.clock.Advance(devidp.DefaultAccessTokenLifetime)
	resp, _ := br.Get(a.url("/api/orders"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dead refresh token: %d, want 401", resp.StatusCode)
	}
	if _, err := a.store.Get(t.Context(), key); err == nil {
		t.Fatal("the session is still in the store")
	}
	if br.SessionCookie() != "" {
		t.Fatal("the session cookie was not cleared")
	}
	// The SPA logs in again and goes on.
	br.Login("/", "alice", "alice")
	if resp, _ := br.Get(a.url("/api/orders"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a new login: %d", resp.StatusCode)
	}
}

// TestClientCredentialsCache: the first calls of a client-token route,
// all at once, cause one token request; the token's expiry causes one more;
// a failed fetch is not cached.
func TestClientCredentialsCache(t *testing.T) {
	up := newUpstream(t)
	op, a := newDevOPApp(t, devOPOptions{}, func(c *bff.Config) {
		c.APIs = []bff.APIConfig{{Path: "/api", Upstream: up.server.URL, Token: bff.TokenClient}}
	})
	codes := storm(t, []*app{a}, "", "/api/reports", 50)
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if n := op.Stats().ClientCredentialsGrants; n != 1 {
		t.Fatalf("%d client_credentials grants for 50 concurrent first calls, want 1", n)
	}
	tok := bearer(up.last(t))
	for _, r := range up.requests() {
		if bearer(r) != tok || tok == "" {
			t.Fatal("the calls did not share one client token")
		}
	}

	a.clock.Advance(devidp.DefaultAccessTokenLifetime)
	storm(t, []*app{a}, "", "/api/reports", 10)
	if n := op.Stats().ClientCredentialsGrants; n != 2 {
		t.Fatalf("%d grants after the token expired, want 2", n)
	}
	if bearer(up.last(t)) == tok {
		t.Fatal("an expired client token was used")
	}

	a.clock.Advance(devidp.DefaultAccessTokenLifetime)
	op.Stop()
	if codes := storm(t, []*app{a}, "", "/api/reports", 1); codes[0] != http.StatusBadGateway {
		t.Fatalf("client token with the OP down: %d, want 502", codes[0])
	}
	op.Start()
	if codes := storm(t, []*app{a}, "", "/api/reports", 1); codes[0] != http.StatusOK {
		t.Fatalf("after the OP came back: %d (a failure was cached)", codes[0])
	}
	if n := op.Stats().ClientCredentialsGrants; n != 3 {
		t.Fatalf("%d grants, want 3", n)
	}
}

// TestLogoutDoesNotWaitForASlowRevocation: the OP's revocation endpoint
// hangs until the test releases it, and the revocation may take an hour.
// Logout still redirects, after its short wait, while the revocation is in
// flight (waiting for it would deadlock the test), and the revocation goes
// through in the background once the OP answers.
func TestLogoutDoesNotWaitForASlowRevocation(t *testing.T) {
	op, a := newTestOPApp(t)
	bff.SetRevocationBounds(a.bff, 100*time.Millisecond, time.Hour)
	inFlight, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	op.BeforeRevoke = func(url.Values) {
		close(inFlight)
		<-release
	}
	br := newBrowser(t, a)
	br.Login("/", "", "")
	rt := a.sessionOf(br).Tokens.RefreshToken
	_, body := br.User()
	resp, _ := br.Get(a.url(claimString(t, userClaims(t, body), "bff:logout_url")))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	select {
	case <-inFlight:
	default:
		t.Fatal("logout did not call the revocation endpoint")
	}
	if len(op.Revoked()) != 0 {
		t.Fatal("the revocation finished before the release")
	}
	go func() {
		defer close(done)
		for len(op.Revoked()) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	close(release)
	<-done
	if got := op.Revoked(); len(got) != 1 || got[0] != rt {
		t.Fatal("the background revocation did not revoke the refresh token")
	}
	logs := a.logs.String()
	if !strings.Contains(logs, "finishing it in the background") || strings.Contains(logs, "revocation failed") {
		t.Fatalf("logout did not leave the revocation to the background, or the revocation failed:\n%s", logs)
	}
}

func TestSkipRevocation(t *testing.T) {
	op, a := newTestOPApp(t, func(c *bff.Config) { c.OIDC.SkipRevocation = true })
	br := newBrowser(t, a)
	br.Login("/", "", "")
	_, body := br.User()
	if resp, _ := br.Get(a.url(claimString(t, userClaims(t, body), "bff:logout_url"))); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if len(op.Revoked()) != 0 {
		t.Fatal("skip_revocation: logout revoked a token")
	}
}

// noRefreshTokenApp is an app whose OP issues 2-minute access tokens and,
// without offline_access, no refresh token, with API routes of the user
// token types, logged in.
func noRefreshTokenApp(t *testing.T, outlive bool) (*app, *browser, *upstream) {
	t.Helper()
	up := newUpstream(t)
	op, a := newTestOPApp(t, func(c *bff.Config) {
		c.OIDC.Scopes = []string{"openid", "profile"}
		c.Session.OutliveTokens = outlive
		for _, tt := range []bff.TokenType{bff.TokenUser, bff.TokenUserOrNone, bff.TokenUserOrClient} {
			c.APIs = append(c.APIs, bff.APIConfig{Path: "/api/" + string(tt), Upstream: up.server.URL + "/" + string(tt), Token: tt})
		}
	})
	op.AccessTokenLifetime = 2 * time.Minute
	br := newBrowser(t, a)
	br.Login("/", "", "")
	if s := a.sessionOf(br); s.Tokens.RefreshToken != "" {
		t.Fatal("the OP issued a refresh token without offline_access")
	}
	return a, br, up
}

// TestSessionEndsWithItsLastToken: by default, a session without a refresh
// token ends with its access token: /bff/user says so in
// bff:session_expires_in, and the first request after the token expired,
// to whichever endpoint, ends the session with a 401.
func TestSessionEndsWithItsLastToken(t *testing.T) {
	for _, path := range []string{"/bff/user", "/api/user_or_none/x", "/api/me"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			a, br, _ := noRefreshTokenApp(t, false)
			_, body := br.User()
			if left := claimNumber(t, userClaims(t, body), "bff:session_expires_in"); left > 120 {
				t.Fatalf("bff:session_expires_in %d with a 2-minute token and no refresh token", left)
			}
			key := a.sessionOf(br).Key
			a.clock.Advance(150 * time.Second) // past the token; not past the session's idle end or the ID token's exp
			resp, _ := br.Get(a.url(path), "X-CSRF", "1")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s with an expired token and no refresh token: %d, want 401", path, resp.StatusCode)
			}
			if _, err := a.store.Get(t.Context(), key); err == nil {
				t.Fatal("the session outlived its last token")
			}
			if br.SessionCookie() != "" {
				t.Fatal("the cookie was not cleared")
			}
		})
	}
}

// TestOutliveTokens: with Session.OutliveTokens the session goes on after
// its last token expired, and only user_or_none and user_or_client routes
// keep working (without the user's token).
func TestOutliveTokens(t *testing.T) {
	a, br, up := noRefreshTokenApp(t, true)
	s := a.sessionOf(br)
	_, body := br.User()
	if left := claimNumber(t, userClaims(t, body), "bff:session_expires_in"); left <= 120 {
		t.Fatalf("bff:session_expires_in %d: the session should outlive its 2-minute token", left)
	}
	if resp, _ := br.Get(a.url("/api/user/x"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK || bearer(up.last(t)) != s.Tokens.AccessToken {
		t.Fatalf("before expiry: %d", resp.StatusCode)
	}
	a.clock.Advance(150 * time.Second)
	n := len(up.requests())
	if resp, _ := br.Get(a.url("/api/user/x"), "X-CSRF", "1"); resp.StatusCode != http.StatusUnauthorized || len(up.requests()) != n {
		t.Fatalf("user route with an expired token: %d, want 401 and nothing upstream", resp.StatusCode)
	}
	if resp, _ := br.Get(a.url("/api/user_or_none/x"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK || up.last(t).Header.Get("Authorization") != "" {
		t.Fatalf("user_or_none route: %d, Authorization %q", resp.StatusCode, up.last(t).Header.Get("Authorization"))
	}
	if resp, _ := br.Get(a.url("/api/user_or_client/x"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(bearer(up.last(t)), "cc-") {
		t.Fatalf("user_or_client route: %d, want the client token", resp.StatusCode)
	}
	if _, err := a.store.Get(t.Context(), s.Key); err != nil {
		t.Fatalf("outlive_tokens: the session ended: %v", err)
	}
	if resp, _ := br.User(); resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user: %d, want 200", resp.StatusCode)
	}
}
