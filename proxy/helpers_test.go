package proxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// seen is one request as the upstream received it.
type seen struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
}

// upstream is a recording httptest server.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// newUpstream starts a recording upstream whose answers come from serve
// (default: 200 with a small JSON body).
func newUpstream(t *testing.T, serve http.HandlerFunc) *upstream {
	t.Helper()
	if serve == nil {
		serve = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		}
	}
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.RequestURI, r.Host, r.Header.Clone()})
		u.mu.Unlock()
		serve(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

// only returns the single request the upstream received.
func (u *upstream) only(t *testing.T) seen {
	t.Helper()
	r := u.requests()
	if len(r) != 1 {
		t.Fatalf("upstream got %d requests, want 1: %+v", len(r), r)
	}
	return r[0]
}

func (u *upstream) base(t *testing.T, path string) *url.URL {
	t.Helper()
	b, err := url.Parse(u.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a proxy in front of a recording upstream.
type fixture struct {
	up         *upstream
	h          *Handler
	srv        *httptest.Server
	authorized atomic.Int32 // calls of Authorize
	logs       *syncBuffer
}

const token = "Bearer tok-123"

// newFixture builds the route "/api/orders" -> upstream "/v1" with a token,
// after edit has adjusted the route.
func newFixture(t *testing.T, serve http.HandlerFunc, edit func(*Route)) *fixture {
	t.Helper()
	f := &fixture{up: newUpstream(t, serve), logs: &syncBuffer{}}
	route := Route{
		Prefix:   "/api/orders",
		Upstream: f.up.base(t, "/v1"),
		Authorize: func(w http.ResponseWriter, r *http.Request) (string, bool) {
			f.authorized.Add(1)
			return token, true
		},
	}
	if edit != nil {
		edit(&route)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := New(route, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// raw sends target verbatim as the request-target of a request written by
// hand, so no client library cleans or re-encodes it, and returns the
// response with its body read.
func raw(t *testing.T, srv *httptest.Server, method, target string, headers ...string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() + "\r\nConnection: close\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// do sends req to the proxy with a client that never follows redirects.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func newRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// wantProblem checks a problem document response.
func wantProblem(t *testing.T, res *http.Response, body string, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", res.StatusCode, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	want := `"status":` + strconv.Itoa(status)
	if !strings.Contains(body, want) || !strings.Contains(body, `"title":"`+http.StatusText(status)+`"`) || !strings.Contains(body, `"detail":`) {
		t.Errorf("body %s is not a problem document for %d", body, status)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
