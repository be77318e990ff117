package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// Every refusal happens before Authorize (no token is minted for it) and
// before anything reaches the upstream.
func (f *fixture) wantUntouched(t *testing.T) {
	t.Helper()
	if n := len(f.up.requests()); n != 0 {
		t.Errorf("upstream got %d requests, want none", n)
	}
	if n := f.authorized.Load(); n != 0 {
		t.Errorf("Authorize called %d times, want none", n)
	}
}

func TestRejectedPaths(t *testing.T) {
	cases := []struct {
		name, target string
		status       int
	}{
		{"dotdot", "/api/orders/../admin", 400},
		{"dotdot at end", "/api/orders/..", 400},
		{"dot", "/api/orders/./x", 400},
		{"encoded dotdot", "/api/orders/%2e%2e/admin", 400},
		{"encoded dotdot upper", "/api/orders/%2E%2E/admin", 400},
		{"encoded dotdot mixed", "/api/orders/%2E%2e", 400},
		{"half encoded", "/api/orders/.%2e/admin", 400},
		{"half encoded other", "/api/orders/%2e./admin", 400},
		{"encoded dot", "/api/orders/%2e/x", 400},
		{"double encoding", "/api/orders/%252e%252e/admin", 400},
		{"percent 25", "/api/orders/a%25b", 400},
		{"encoded backslash", "/api/orders/..%5cadmin", 400},
		{"encoded backslash upper", "/api/orders/a%5Cb", 400},
		{"raw backslash", `/api/orders/..\admin`, 400},
		{"raw backslash plain", `/api/orders/a\b`, 400},
		{"double slash", "/api/orders//evil.com", 400},
		{"double slash inside", "/api/orders/a//b", 400},
		{"encoded slash", "/api/orders/a%2fb", 400},
		{"encoded slash upper", "/api/orders/%2F%2Fevil.com", 400},
		{"at", "/api/orders/@evil.com", 400},
		{"encoded at", "/api/orders/%40evil.com", 400},
		{"crlf", "/api/orders/a%0d%0aX-Injected:%201", 400},
		{"CRLF upper", "/api/orders/a%0D%0A", 400},
		{"nul", "/api/orders/a%00.json", 400},
		{"tab", "/api/orders/a%09b", 400},
		{"del", "/api/orders/a%7f", 400},
		{"tomcat dotdot param", "/api/orders/..;/admin", 400},
		{"empty segment with param", "/api/orders/;x/admin", 400},
		{"encoded semicolon dotdot", "/api/orders/..%3b/admin", 400},
		{"bad escape", "/api/orders/%zz", 400},
		{"crlf in query", "/api/orders/x?a=%0d%0aSet-Cookie:%20x", 400},
		{"lf in query", "/api/orders/x?a=%0A", 400},
		{"nul in query", "/api/orders/x?a=%00", 400},
		{"not the prefix", "/api/ordersx", 404},
		{"not the prefix below", "/api/ordersx/1", 404},
		{"shorter", "/api/order", 404},
		{"elsewhere", "/admin", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			res, body := raw(t, f.srv, "GET", c.target)
			if res.StatusCode != c.status {
				t.Fatalf("%s: status %d, want %d; body %s", c.target, res.StatusCode, c.status, body)
			}
			if c.target != "/api/orders/%zz" { // Go's server refuses this one itself
				wantProblem(t, res, body, c.status)
			}
			f.wantUntouched(t)
		})
	}
}

// Raw control characters cannot reach a handler through net/http's server
// (its URL parser refuses them), but the handler must not rely on that.
func TestRejectedRawControlCharacters(t *testing.T) {
	for _, u := range []*url.URL{
		{Path: "/api/orders/x", RawQuery: "a=1\r\nX-Injected: 1"},
		{Path: "/api/orders/x", RawQuery: "a=\x00"},
		{Path: "/api/orders/a\r\nX-Injected: 1"},
		{Path: "/api/orders/a\x00"},
		{Path: "/api/orders/a\x7f"},
	} {
		f := newFixture(t, nil, nil)
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = u
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", u, w.Code)
		}
		f.wantUntouched(t)
	}
}

// A request built with RawPath set (as a client library would send it)
// takes the same checks as the request line.
func TestRejectedRawPath(t *testing.T) {
	f := newFixture(t, nil, nil)
	req := newRequest(t, "GET", f.srv.URL+"/api/orders/x")
	req.URL.Path = "/api/orders/../admin"
	req.URL.RawPath = "/api/orders/%2e%2e/admin"
	res, body := do(t, req)
	wantProblem(t, res, body, http.StatusBadRequest)
	f.wantUntouched(t)
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, nil, func(r *Route) { r.Methods = []string{"get", "POST"} })
	res, body := raw(t, f.srv, "DELETE", "/api/orders/1")
	wantProblem(t, res, body, http.StatusMethodNotAllowed)
	if a := res.Header.Get("Allow"); a != "GET, POST" {
		t.Errorf("Allow %q", a)
	}
	f.wantUntouched(t)

	res, _ = raw(t, f.srv, "GET", "/api/orders/1")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d", res.StatusCode)
	}
	if m := f.up.only(t).Method; m != "GET" {
		t.Errorf("upstream method %s", m)
	}
}

// TRACE would reflect the attached token back; it is refused even without
// an allow-list.
func TestTraceNeverProxied(t *testing.T) {
	f := newFixture(t, nil, nil)
	res, body := raw(t, f.srv, "TRACE", "/api/orders/1")
	wantProblem(t, res, body, http.StatusNotImplemented)
	f.wantUntouched(t)
}

func TestAuthorizeRefuses(t *testing.T) {
	f := newFixture(t, nil, func(r *Route) {
		r.Authorize = func(w http.ResponseWriter, r *http.Request) (string, bool) {
			http.Error(w, "no session", http.StatusUnauthorized)
			return "", false
		}
	})
	res, _ := raw(t, f.srv, "GET", "/api/orders/1")
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
	if n := len(f.up.requests()); n != 0 {
		t.Errorf("upstream got %d requests", n)
	}
}

// The guard transport is the last line: whatever built the URL, nothing
// leaves for another host or outside the base path.
func TestGuardTransport(t *testing.T) {
	var called int
	next := roundTripFunc(func(*http.Request) (*http.Response, error) {
		called++
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	h, err := New(Route{
		Prefix:    "/api/orders",
		Upstream:  &url.URL{Scheme: "https", Host: "orders.internal", Path: "/v1"},
		Authorize: func(http.ResponseWriter, *http.Request) (string, bool) { return "", true },
	}, Options{Transport: next})
	if err != nil {
		t.Fatal(err)
	}
	g := h.rp.Transport
	for _, c := range []struct {
		url, host string
		ok        bool
	}{
		{"https://orders.internal/v1", "orders.internal", true},
		{"https://orders.internal/v1/", "orders.internal", true},
		{"https://orders.internal/v1/a/b?x=1", "orders.internal", true},
		{"https://evil.com/v1/a", "evil.com", false},
		{"https://evil.com/v1/a", "orders.internal", false},
		{"https://orders.internal/v1/a", "evil.com", false},
		{"http://orders.internal/v1/a", "orders.internal", false},
		{"https://orders.internal/v2/a", "orders.internal", false},
		{"https://orders.internal/v1x", "orders.internal", false},
		{"https://orders.internal/v1/../admin", "orders.internal", false},
		{"https://orders.internal/v1//evil.com", "orders.internal", false},
		{"https://u@orders.internal/v1/a", "orders.internal", false},
	} {
		req := httptest.NewRequest("GET", c.url, nil)
		req.Host = c.host
		called = 0
		_, err := g.RoundTrip(req)
		if ok := err == nil && called == 1; ok != c.ok {
			t.Errorf("%s (Host %s): sent=%v err=%v, want sent=%v", c.url, c.host, called == 1, err, c.ok)
		}
	}

	// A request that skipped ServeHTTP carries no state: the rewrite
	// leaves it on the inbound host, and the guard refuses it.
	w := httptest.NewRecorder()
	h.rp.ServeHTTP(w, httptest.NewRequest("GET", "/api/orders/1", nil))
	if w.Code != http.StatusBadRequest || called != 0 {
		t.Errorf("request without state: status %d, sent %d", w.Code, called)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
