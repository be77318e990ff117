package bff_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/internal/testredis"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/pgstore"
	"github.com/gobff/bff/session/redisstore"
)

// backend is a store server that several bff instances share. namespace
// makes a fresh namespace on it for one test (a key prefix, a schema) and
// returns a function that opens a new client on that namespace, one per
// instance, as separate processes would have; clients are closed and the
// namespace removed when the test ends.
type backend struct {
	name      string
	namespace func(t *testing.T) (open func() session.Store)
}

// sharedBackends are the shared Redis and PostgreSQL servers of the machine.
func sharedBackends() []backend {
	return []backend{
		{"redis", func(t *testing.T) func() session.Store {
			addr := testredis.Addr(t)
			raw := "redis://" + addr + "?prefix=" + url.QueryEscape(testredis.Prefix(t, addr))
			return func() session.Store { return openStore(t, raw) }
		}},
		{"postgres", func(t *testing.T) func() session.Store {
			u := testpg.URL(t)
			raw := u + "&bff_schema=" + testpg.Schema(t, u)
			return func() session.Store { return openStore(t, raw) }
		}},
	}
}

func openStore(t *testing.T, raw string) session.Store {
	t.Helper()
	var (
		s   session.Store
		err error
	)
	if strings.HasPrefix(raw, "redis") {
		s, err = redisstore.Open(context.Background(), raw)
	} else {
		s, err = pgstore.Open(context.Background(), raw)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// cluster is n bff instances, each on its own port with its own client of
// one shared store, and the real OP. Logins go to the first instance;
// back-channel logout tokens to the last.
type cluster struct {
	op   *devOP
	apps []*app
}

func newCluster(t *testing.T, be backend, n int, idp func(*devidp.Config), edit ...func(*bff.Config)) *cluster {
	t.Helper()
	opServer := httptest.NewUnstartedServer(nil)
	issuer := "http://" + opServer.Listener.Addr().String() + "/idp"
	key := make([]byte, session.KeySize)
	rand.Read(key)
	open := be.namespace(t)
	c := &cluster{}
	for range n {
		shared := func(cfg *bff.Config) {
			cfg.Session.Store = open()
			cfg.Keys = [][]byte{key}
		}
		c.apps = append(c.apps, newApp(t, issuer, "bff-cluster", "cluster-secret", append([]func(*bff.Config){shared}, edit...)...))
	}
	client := devidp.Client{ID: "bff-cluster", Secret: "cluster-secret",
		BackChannelLogoutURI: c.apps[n-1].bff.BackchannelLogoutURL()}
	for _, a := range c.apps {
		client.RedirectURIs = append(client.RedirectURIs, a.bff.RedirectURL())
		client.PostLogoutRedirectURIs = append(client.PostLogoutRedirectURIs, a.bff.PostLogoutRedirectURL())
	}
	cfg := devidp.Config{Issuer: issuer, Clients: []devidp.Client{client}}
	if idp != nil {
		idp(&cfg)
	}
	provider, err := devidp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", provider)
	opServer.Config.Handler = mux
	opServer.Start()
	c.op = &devOP{Provider: provider, t: t, addr: opServer.Listener.Addr().String(), server: opServer}
	t.Cleanup(func() { c.op.server.Close() })
	return c
}

// call sends one request with the session cookie to instance a.
func call(t *testing.T, a *app, cookie, method, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, a.url(path), nil)
	req.Header.Set("X-CSRF", "1")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-bff", Value: cookie})
	}
	return doRaw(t, req)
}

// TestInstancesShareAStore runs three bff instances over one Redis, and
// again over one PostgreSQL, each instance with a client of its own: alice
// logs in on A and calls an API through B; once her 2-second token has
// expired, a storm of calls spread over A, B and C makes exactly one
// refresh at the OP and no call fails; a back-channel logout received by C
// ends her session for A and B at once; and a logout on B is seen by A.
func TestInstancesShareAStore(t *testing.T) {
	for _, be := range sharedBackends() {
		t.Run(be.name, func(t *testing.T) {
			up := newUpstream(t)
			c := newCluster(t, be, 3, func(cfg *devidp.Config) { cfg.AccessTokenLifetime = 2 * time.Second }, func(cfg *bff.Config) {
				cfg.APIs = []bff.APIConfig{{Path: "/api", Upstream: up.server.URL, Token: bff.TokenUser}}
				cfg.Now = time.Now // the OP's tokens expire in real time
			})
			a, b, cc := c.apps[0], c.apps[1], c.apps[2]
			br := newBrowser(t, a)
			br.Login("/", "alice", "alice")
			cookie := br.SessionCookie()
			first := a.sessionOf(br).Tokens

			if resp, body := call(t, b, cookie, http.MethodGet, "/api/orders"); resp.StatusCode != http.StatusOK || bearer(up.last(t)) != first.AccessToken {
				t.Fatalf("API call through B: %d %s", resp.StatusCode, body)
			}

			c.op.SetAccessTokenLifetime(time.Hour)
			time.Sleep(time.Until(first.Expiry) + 100*time.Millisecond)
			codes := storm(t, c.apps, cookie, "/api/orders", 600)
			for i, code := range codes {
				if code != http.StatusOK {
					t.Fatalf("storm request %d (instance %c): %d", i, 'A'+i%3, code)
				}
			}
			if got := c.op.Stats().RefreshGrants; got != 1 {
				t.Fatalf("a storm over three instances made %d refreshes, want 1", got)
			}
			fresh := a.sessionOf(br).Tokens.AccessToken
			for _, r := range up.requests()[1:] {
				if bearer(r) != fresh {
					t.Fatal("a storm request went upstream without the refreshed token")
				}
			}

			// C gets the OP's logout token; A and B see it at once.
			if err := c.op.EndSession(t.Context(), a.sessionOf(br).SID); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(cc.logs.String(), `"msg":"back-channel logout"`) {
				t.Fatal("C did not receive the logout token")
			}
			for i, inst := range []*app{a, b} {
				if resp, _ := call(t, inst, cookie, http.MethodGet, "/bff/user"); resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("instance %c after a back-channel logout on C: %d, want 401", 'A'+i, resp.StatusCode)
				}
			}

			// Log in again on A, log out on B: A sees it.
			br.Login("/", "alice", "alice")
			cookie = br.SessionCookie()
			if resp, _ := call(t, a, cookie, http.MethodGet, "/bff/user"); resp.StatusCode != http.StatusOK {
				t.Fatalf("A after a new login: %d", resp.StatusCode)
			}
			logoutID := a.sessionOf(br).LogoutID
			if resp, body := call(t, b, cookie, http.MethodGet, "/bff/logout?sid="+url.QueryEscape(logoutID)); resp.StatusCode != http.StatusFound {
				t.Fatalf("logout on B: %d %s %s", resp.StatusCode, body, resp.Request.URL)
			}
			if resp, _ := call(t, a, cookie, http.MethodGet, "/bff/user"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("A after a logout on B: %d, want 401", resp.StatusCode)
			}
		})
	}
}

// outage is a private store server a test can stop and restart, with a URL
// bff opens it by.
type outage struct {
	name  string
	start func(t *testing.T) (rawURL string, stop, restart func())
}

func outages() []outage {
	return []outage{
		{"redis", func(t *testing.T) (string, func(), func()) {
			srv := testredis.Start(t, testredis.Options{Persist: true})
			return "redis://" + srv.Addr(), srv.Stop, srv.Restart
		}},
		{"postgres", func(t *testing.T) (string, func(), func()) {
			srv := testpg.Start(t)
			return srv.URL(), srv.Stop, srv.Restart
		}},
	}
}

// TestStoreOutage stops the store under a running bff: requests that need
// it get a 503 problem document (never a 500, never a cleared cookie), the
// BFF reports itself not ready, and once the store is back, with its data,
// the same cookie works again without a new login.
func TestStoreOutage(t *testing.T) {
	for _, o := range outages() {
		t.Run(o.name, func(t *testing.T) {
			raw, stop, restart := o.start(t)
			up := newUpstream(t)
			_, a := newDevOPApp(t, devOPOptions{}, func(c *bff.Config) {
				c.Session.Store = openStore(t, raw)
				c.APIs = []bff.APIConfig{{Path: "/api", Upstream: up.server.URL, Token: bff.TokenUser}}
			})
			br := newBrowser(t, a)
			br.Login("/", "alice", "alice")
			cookie := br.SessionCookie()
			if err := a.bff.Ready(t.Context()); err != nil {
				t.Fatalf("Ready with the store up: %v", err)
			}

			stop()
			for _, path := range []string{"/api/orders", "/bff/user", "/bff/sessions"} {
				resp, body := br.Get(a.url(path), "X-CSRF", "1")
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("%s with the store down: %d %q %s, want a 503 problem document", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
			}
			if br.SessionCookie() != cookie {
				t.Fatal("an outage cleared the session cookie")
			}
			if len(up.requests()) != 0 {
				t.Fatal("a request went upstream without a session check")
			}
			if err := a.bff.Ready(t.Context()); err == nil {
				t.Fatal("Ready with the store down reported ready")
			}
			// A login cannot complete either, and says why.
			resp, _ := br.Get(a.url("/bff/login"))
			resp, _ = br.Navigate(follow(t, resp))
			for resp.StatusCode >= 300 && resp.StatusCode < 400 {
				resp, _ = br.Navigate(follow(t, resp))
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("login callback with the store down: %d, want 503", resp.StatusCode)
			}

			restart()
			if err := a.bff.Ready(t.Context()); err != nil {
				t.Fatalf("Ready after the store came back: %v", err)
			}
			if resp, body := br.Get(a.url("/api/orders"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK {
				t.Fatalf("API call after the store came back: %d %s", resp.StatusCode, body)
			}
			if resp, _ := br.User(); resp.StatusCode != http.StatusOK {
				t.Fatalf("/bff/user after the store came back: %d", resp.StatusCode)
			}
			if !strings.Contains(a.logs.String(), "the session store is unavailable") && !strings.Contains(a.logs.String(), "session cannot be read") {
				t.Fatal("no log line for the outage")
			}
		})
	}
}
