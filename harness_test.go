package bff_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clock is a settable clock for session expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// app is a BFF under test behind an httptest server, with its logs captured.
type app struct {
	t      *testing.T
	bff    *bff.BFF
	server *httptest.Server
	logs   *syncBuffer
	store  session.Store
	clock  *clock
}

// newApp starts a BFF for a client of the OP at issuer. edit may change the
// configuration before New.
func newApp(t *testing.T, issuer, clientID, clientSecret string, edit ...func(*bff.Config)) *app {
	t.Helper()
	a := &app{t: t, logs: &syncBuffer{}, clock: &clock{now: time.Now()}}
	a.server = httptest.NewUnstartedServer(nil)
	publicURL := "http://" + a.server.Listener.Addr().String()
	a.store = memstore.New(memstore.WithClock(a.clock.Now))
	key := make([]byte, session.KeySize)
	rand.Read(key)
	cfg := bff.Config{
		PublicURL: publicURL,
		OIDC: bff.OIDCConfig{
			Issuer:       issuer,
			ClientID:     clientID,
			ClientSecret: clientSecret,
		},
		Session: bff.SessionConfig{Store: a.store},
		Keys:    [][]byte{key},
		Logger:  slog.New(slog.NewJSONHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&cfg)
	}
	if cfg.Now == nil {
		// Sessions follow the test clock; token checks stay on real time
		// unless a test sets Now itself.
		cfg.Now = a.clock.Now
	}
	b, err := bff.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.bff = b
	mux := http.NewServeMux()
	mux.Handle("/", b)
	mux.Handle("/api/", b.ProtectAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := bff.UserFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"sub":"`+u.Subject+`"}`)
	})))
	a.server.Config.Handler = mux
	a.server.Start()
	t.Cleanup(a.server.Close)
	return a
}

func (a *app) url(path string) string { return a.server.URL + path }

// browser is an HTTP client that keeps cookies per host itself (Go's
// cookiejar will not send Secure cookies over http://), never follows
// redirects on its own, checks every cookie bff sets, and records every
// response body and Location it sees, for the token leak checks.
type browser struct {
	t       *testing.T
	app     *app
	client  *http.Client
	cookies map[string]map[string]string // host -> name -> value
	seen    []string                     // bodies and Location headers
	// locations are the Location headers, kept apart for the
	// id_token_hint exception.
	locations []string
}

func newBrowser(t *testing.T, a *app) *browser {
	return &browser{
		t:       t,
		app:     a,
		client:  &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second},
		cookies: map[string]map[string]string{},
	}
}

// do sends a request with this browser's cookies for the host, stores the
// cookies of the response, and returns the response with its body read.
func (br *browser) do(req *http.Request) (*http.Response, string) {
	br.t.Helper()
	for name, value := range br.cookies[req.URL.Host] {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/json")
	}
	resp, err := br.client.Do(req)
	if err != nil {
		br.t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	br.seen = append(br.seen, string(body))
	if loc := resp.Header.Get("Location"); loc != "" {
		br.seen = append(br.seen, loc)
		br.locations = append(br.locations, loc)
	}
	isBFF := br.app != nil && "http://"+req.URL.Host == br.app.server.URL
	for _, c := range resp.Cookies() {
		if isBFF {
			checkCookie(br.t, c, resp.Header.Values("Set-Cookie"))
		}
		if br.cookies[req.URL.Host] == nil {
			br.cookies[req.URL.Host] = map[string]string{}
		}
		if c.MaxAge < 0 || c.Value == "" {
			delete(br.cookies[req.URL.Host], c.Name)
		} else {
			br.cookies[req.URL.Host][c.Name] = c.Value
		}
	}
	return resp, string(body)
}

func (br *browser) get(rawURL string, header ...string) (*http.Response, string) {
	br.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		br.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return br.do(req)
}

func (br *browser) postForm(rawURL string, form url.Values) (*http.Response, string) {
	br.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		br.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return br.do(req)
}

// follow resolves a redirect's Location against the request URL.
func follow(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("%s: want a redirect, got %d", resp.Request.URL.Path, resp.StatusCode)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.String()
}

var formRE = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"`)
var hiddenRE = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)

// login runs /bff/login through the OP back to bff and returns the last
// response (the redirect to returnUrl). When the OP shows a login form with
// username and password fields, it fills them in.
func (br *browser) login(returnURL, username, password string) *http.Response {
	br.t.Helper()
	target := br.app.url("/bff/login")
	if returnURL != "" {
		target += "?returnUrl=" + url.QueryEscape(returnURL)
	}
	resp, body := br.get(target)
	for range 10 {
		switch {
		case resp.StatusCode == http.StatusOK && strings.Contains(body, `name="password"`):
			m := formRE.FindStringSubmatch(body)
			if m == nil {
				br.t.Fatalf("login form without action: %s", body)
			}
			action, err := resp.Request.URL.Parse(htmlUnescape(m[1]))
			if err != nil {
				br.t.Fatal(err)
			}
			form := url.Values{"username": {username}, "password": {password}}
			for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
				form.Set(h[1], htmlUnescape(h[2]))
			}
			resp, body = br.postForm(action.String(), form)
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next := follow(br.t, resp)
			if strings.HasPrefix(next, br.app.server.URL) && !strings.Contains(next, "/bff/login") {
				u, _ := url.Parse(next)
				if u.Path == "/signin-oidc" {
					return br.getCallback(next)
				}
			}
			resp, body = br.get(next)
		default:
			br.t.Fatalf("login stopped at %s with %d: %s", resp.Request.URL.Redacted(), resp.StatusCode, body)
		}
	}
	br.t.Fatal("login did not finish in 10 steps")
	return nil
}

// getCallback requests the callback and records the response.
func (br *browser) getCallback(u string) *http.Response {
	resp, _ := br.get(u)
	return resp
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#34;", `"`, "&quot;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// sessionCookie returns the browser's bff session cookie value.
func (br *browser) sessionCookie() string {
	host := strings.TrimPrefix(br.app.server.URL, "http://")
	return br.cookies[host]["__Host-bff"]
}

// user calls /bff/user with the anti-forgery header.
func (br *browser) user() (*http.Response, string) {
	return br.get(br.app.url("/bff/user"), "X-CSRF", "1")
}

// checkCookie asserts the attributes every cookie bff sets must have:
// __Host- prefix, Secure, HttpOnly, Path=/, no Domain, and SameSite Strict
// (session) or Lax (login and logout round trips through the OP).
func checkCookie(t *testing.T, c *http.Cookie, raw []string) {
	t.Helper()
	if !strings.HasPrefix(c.Name, "__Host-") {
		t.Errorf("cookie %s: no __Host- prefix", c.Name)
	}
	if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie %s: Secure=%t HttpOnly=%t Path=%q Domain=%q (raw %q)", c.Name, c.Secure, c.HttpOnly, c.Path, c.Domain, raw)
	}
	switch {
	case c.Name == "__Host-bff":
		if c.SameSite != http.SameSiteStrictMode {
			t.Errorf("session cookie SameSite = %v, want Strict", c.SameSite)
		}
	case strings.HasPrefix(c.Name, "__Host-bff-login-"), c.Name == "__Host-bff-signout":
		if c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s SameSite = %v, want Lax", c.Name, c.SameSite)
		}
	default:
		t.Errorf("unexpected cookie %s", c.Name)
	}
}

// assertNoTokenLeak fails if any of tokens appears in a response body, a
// Location header (but for the ID token as id_token_hint to the OP's
// end-session endpoint, which RP-Initiated Logout asks for) or a log line.
func (br *browser) assertNoTokenLeak(endSessionURL string, tokens ...string) {
	br.t.Helper()
	logs := br.app.logs.String()
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		if strings.Contains(logs, tok) {
			br.t.Errorf("a token appears in the logs")
		}
		for _, s := range br.seen {
			if !strings.Contains(s, tok) {
				continue
			}
			if endSessionURL != "" && strings.HasPrefix(s, endSessionURL) {
				u, _ := url.Parse(s)
				if u.Query().Get("id_token_hint") == tok {
					continue
				}
			}
			br.t.Errorf("a token appears in a response: %.80q…", s)
		}
	}
}
