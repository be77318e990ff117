package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestPathMapping(t *testing.T) {
	cases := []struct {
		base, target, want string
	}{
		{"/v1", "/api/orders", "/v1"},
		{"/v1", "/api/orders/", "/v1/"},
		{"/v1", "/api/orders/123", "/v1/123"},
		{"/v1", "/api/orders/123/items/", "/v1/123/items/"},
		{"/v1", "/api/orders/a/b?x=1&y=two", "/v1/a/b?x=1&y=two"},
		{"/v1", "/api/orders?page=2", "/v1?page=2"},
		{"/v1", "/api/orders/a%20b", "/v1/a%20b"},
		{"/v1", "/api/orders/caf%C3%A9", "/v1/caf%C3%A9"},
		{"/v1", "/api/orders/what%3F?q=1", "/v1/what%3F?q=1"},
		{"/v1", "/api/orders/a%23b", "/v1/a%23b"},
		{"/v1", "/api/orders/x?q=50%25", "/v1/x?q=50%25"},
		{"/v1", "/api/orders/...", "/v1/..."},
		{"/v1", "/api/orders/v1.2/file.json", "/v1/v1.2/file.json"},
		{"/v1", "/api/orders/a;v=1", "/v1/a;v=1"},
		{"/v1", "http://evil.example/api/orders/x", "/v1/x"}, // absolute-form target
		{"", "/api/orders", "/"},
		{"", "/api/orders/x", "/x"},
		{"/", "/api/orders", "/"},
		{"/", "/api/orders/x", "/x"},
		{"/v1/", "/api/orders", "/v1/"},
		{"/v1/", "/api/orders/x", "/v1/x"},
		{"/a%20b", "/api/orders/x", "/a%20b/x"},
		{"/a%20b", "/api/orders/c%20d", "/a%20b/c%20d"},
	}
	for _, c := range cases {
		t.Run(c.base+" "+c.target, func(t *testing.T) {
			f := newFixture(t, nil, func(r *Route) {
				u, err := url.Parse(f0(r.Upstream) + c.base)
				if err != nil {
					t.Fatal(err)
				}
				r.Upstream = u
			})
			res, body := raw(t, f.srv, "GET", c.target)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if got := f.up.only(t).RequestURI; got != c.want {
				t.Errorf("upstream got %q, want %q", got, c.want)
			}
		})
	}
}

// f0 is the scheme://host of u.
func f0(u *url.URL) string { return u.Scheme + "://" + u.Host }

func TestRequestHeaders(t *testing.T) {
	f := newFixture(t, nil, nil)
	req := newRequest(t, "POST", f.srv.URL+"/api/orders/1")
	req.Header.Set("Cookie", "__Host-bff=session; other=1")
	req.Header.Set("Authorization", "Basic browser")
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Host", "evil.com")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=6.6.6.6;host=evil.com;proto=https")
	req.Header.Set("X-Real-IP", "6.6.6.6")
	req.Header.Set("X-HTTP-Method-Override", "DELETE")
	req.Header.Set("X-Original-URL", "/admin")
	req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
	res, body := do(t, req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	got := f.up.only(t)
	upHost := f.up.Listener.Addr().String()
	proxyHost := f.srv.Listener.Addr().String()
	if got.Host != upHost {
		t.Errorf("Host %q, want the upstream's %q", got.Host, upHost)
	}
	for k, want := range map[string]string{
		"Authorization":     token,
		"Accept":            "application/json",
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  proxyHost,
		"X-Forwarded-Proto": "http",
	} {
		if v := got.Header.Values(k); len(v) != 1 || v[0] != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
	for _, k := range []string{"Cookie", "X-Csrf", "Forwarded", "X-Real-Ip", "X-Http-Method-Override", "X-Original-Url"} {
		if v, ok := got.Header[k]; ok {
			t.Errorf("%s forwarded: %q", k, v)
		}
	}
	for k, v := range got.Header {
		if strings.Contains(k, "_") {
			t.Errorf("%s forwarded: %q", k, v)
		}
	}
	if got.Method != "POST" {
		t.Errorf("method %s", got.Method)
	}
}

// Without a token, the browser's own Authorization still does not pass.
func TestNoTokenNoAuthorization(t *testing.T) {
	f := newFixture(t, nil, func(r *Route) {
		r.Authorize = func(http.ResponseWriter, *http.Request) (string, bool) { return "", true }
	})
	req := newRequest(t, "GET", f.srv.URL+"/api/orders/1")
	req.Header.Set("Authorization", "Basic browser")
	do(t, req)
	if v, ok := f.up.only(t).Header["Authorization"]; ok {
		t.Errorf("Authorization forwarded: %q", v)
	}
}

// A client naming Authorization in Connection cannot strip the token: with
// Rewrite, hop-by-hop removal runs before the token is set.
func TestConnectionHeaderCannotStripToken(t *testing.T) {
	f := newFixture(t, nil, nil)
	res, body := raw(t, f.srv, "GET", "/api/orders/1",
		"Connection", "keep-alive, Authorization, X-Secret", "X-Secret", "s3cret", "Authorization", "Basic browser")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	got := f.up.only(t)
	if v := got.Header.Values("Authorization"); len(v) != 1 || v[0] != token {
		t.Errorf("Authorization %q, want the token", v)
	}
	if v, ok := got.Header["X-Secret"]; ok {
		t.Errorf("X-Secret forwarded: %q", v)
	}
}

func TestRedirectPassedBackNotFollowed(t *testing.T) {
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/old" {
			http.Redirect(w, r, "/v1/new", http.StatusFound)
			return
		}
		io.WriteString(w, "followed")
	}, nil)
	res, _ := raw(t, f.srv, "GET", "/api/orders/old")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/v1/new" {
		t.Errorf("status %d Location %q, want 302 /v1/new", res.StatusCode, res.Header.Get("Location"))
	}
	f.up.only(t) // the redirect was not followed
}

func TestUnauthorizedPassedThrough(t *testing.T) {
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_token"}`)
	}, nil)
	res, body := raw(t, f.srv, "GET", "/api/orders/1")
	if res.StatusCode != http.StatusUnauthorized || body != `{"error":"invalid_token"}` ||
		res.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Errorf("got %d %q %q", res.StatusCode, res.Header, body)
	}
}

func TestSetCookie(t *testing.T) {
	serve := func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "planted", Value: "1"})
	}
	for _, pass := range []bool{false, true} {
		f := newFixture(t, serve, func(r *Route) { r.PassSetCookie = pass })
		res, _ := raw(t, f.srv, "GET", "/api/orders/1")
		if got := res.Header.Get("Set-Cookie") != ""; got != pass {
			t.Errorf("PassSetCookie=%v: Set-Cookie %q", pass, res.Header.Values("Set-Cookie"))
		}
	}
}

// An upgrade to anything but WebSocket is not tunnelled: the offer is
// dropped and the request proxied as a plain one.
func TestOtherUpgradeDropped(t *testing.T) {
	f := newFixture(t, nil, nil)
	res, body := raw(t, f.srv, "GET", "/api/orders/1", "Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	got := f.up.only(t)
	for _, k := range []string{"Upgrade", "Connection", "Http2-Settings"} {
		if v, ok := got.Header[k]; ok {
			t.Errorf("%s forwarded: %q", k, v)
		}
	}
}

func TestUpstreamDown(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.up.Close()
	res, body := raw(t, f.srv, "GET", "/api/orders/1")
	wantProblem(t, res, body, http.StatusBadGateway)
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "refused") {
		t.Errorf("body leaks the error: %s", body)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "upstream request failed") {
		t.Errorf("no error logged: %s", logs)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestUpstreamTimeout(t *testing.T) {
	for _, err := range []error{timeoutErr{}, context.DeadlineExceeded} {
		h, nerr := New(Route{
			Prefix:    "/api",
			Upstream:  &url.URL{Scheme: "http", Host: "orders.internal"},
			Authorize: func(http.ResponseWriter, *http.Request) (string, bool) { return "", true },
		}, Options{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, err })})
		if nerr != nil {
			t.Fatal(nerr)
		}
		w := newRecorder()
		h.ServeHTTP(w, mustRequest(t, "GET", "http://bff.example/api/x"))
		if w.Code != http.StatusGatewayTimeout {
			t.Errorf("%v: status %d, want 504", err, w.Code)
		}
	}
}

// A client that goes away is not an upstream failure: debug, not error.
func TestClientGoneLogsAtDebug(t *testing.T) {
	arrived := make(chan struct{})
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // until the proxy cancels the upstream request
	}, nil)
	done := make(chan struct{})
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		f.h.ServeHTTP(w, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	req := newRequest(t, "GET", f.srv.URL+"/api/orders/1").WithContext(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := http.DefaultClient.Do(req)
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	<-done
	logs := f.logs.String()
	if strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
		t.Errorf("client cancellation logged as a failure: %s", logs)
	}
	if !strings.Contains(logs, "level=DEBUG") {
		t.Errorf("no debug line: %s", logs)
	}
}

// A client leaving in the middle of a stream is not logged either.
func TestClientGoneMidStreamNotLogged(t *testing.T) {
	upDone := make(chan struct{})
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(upDone)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}, nil)
	done := make(chan struct{})
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done) // also when ReverseProxy aborts with http.ErrAbortHandler
		f.h.ServeHTTP(w, r)
	})
	res, err := http.Get(f.srv.URL + "/api/orders/events")
	if err != nil {
		t.Fatal(err)
	}
	readEvent(t, bufio.NewReader(res.Body))
	res.Body.Close()
	<-done
	<-upDone
	if logs := f.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
		t.Errorf("client leaving mid-stream logged as a failure: %s", logs)
	}
}

// Server-sent events reach the client while the upstream is still open.
func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	}, nil)
	res, err := http.Get(f.srv.URL + "/api/orders/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	// The upstream is blocked until release: this read succeeds only if
	// the proxy flushed the first event.
	if ev := readEvent(t, br); ev != "data: one" {
		t.Fatalf("first event %q", ev)
	}
	close(release)
	if ev := readEvent(t, br); ev != "data: two" {
		t.Fatalf("second event %q", ev)
	}
}

func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, lines)
		}
		l = strings.TrimSuffix(l, "\n")
		if l == "" {
			return strings.Join(lines, "\n")
		}
		lines = append(lines, l)
	}
}

// newRecorder and mustRequest keep the unit tests free of a server.
func newRecorder() *recorder { return &recorder{h: http.Header{}} }

type recorder struct {
	h    http.Header
	Code int
	body strings.Builder
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(c int) {
	if r.Code == 0 {
		r.Code = c
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.Code == 0 {
		r.Code = 200
	}
	return r.body.Write(p)
}

func mustRequest(t testing.TB, method, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "192.0.2.1:1234"
	r.RequestURI = r.URL.RequestURI()
	return r
}
