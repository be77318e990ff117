// Package testbrowser is an HTTP client for bff's end-to-end tests that
// behaves like a browser where it matters here: it keeps cookies per host
// itself (Go's cookiejar will not send Secure cookies over http://, and
// browsers do on localhost), never follows a redirect on its own, fills in
// the OP's username and password form, checks the attributes of every
// cookie bff sets, and records every response body and Location header so
// a test can check that no token leaked into one.
package testbrowser

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Browser is one browser profile: its own cookies.
type Browser struct {
	t      testing.TB
	client *http.Client
	// BFF is the origin of bff ("http://127.0.0.1:1234"); cookies set by it
	// are checked.
	BFF string
	// CallbackPath is bff's callback path; Login stops after requesting it.
	CallbackPath string
	// NotBFF is a path prefix on bff's origin served by something else
	// (the embedded OP of bff dev, "/idp/"), whose cookies are not bff's.
	NotBFF string
	// UserAgent, when set, is sent with every request.
	UserAgent string

	cookies map[string]map[string]string // host -> name -> value
	strict  map[string]map[string]bool   // host -> name -> SameSite=Strict
	seen    []string                     // bodies and Location headers
	// lastHost is the host name (without port) of the last response, the
	// "site" a redirect followed by Navigate comes from.
	lastHost string
}

// New returns a browser for the bff at origin.
func New(t testing.TB, origin string) *Browser {
	return &Browser{
		t:            t,
		BFF:          strings.TrimSuffix(origin, "/"),
		CallbackPath: "/signin-oidc",
		client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       30 * time.Second,
		},
		cookies: map[string]map[string]string{},
		strict:  map[string]map[string]bool{},
	}
}

// URL returns bff's origin + path.
func (b *Browser) URL(path string) string { return b.BFF + path }

// Do sends req with this browser's cookies for its host, stores the cookies
// of the response, and returns the response with its body read.
func (b *Browser) Do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	return b.do(req, false)
}

// Navigate follows a redirect the way a browser does: when the previous
// response came from another site (host name, ports aside), SameSite=Strict
// cookies are not sent.
func (b *Browser) Navigate(rawURL string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req, b.lastHost != "" && b.lastHost != req.URL.Hostname())
}

func (b *Browser) do(req *http.Request, crossSite bool) (*http.Response, string) {
	b.t.Helper()
	for name, value := range b.cookies[req.URL.Host] {
		if crossSite && b.strict[req.URL.Host][name] {
			continue
		}
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	b.lastHost = req.URL.Hostname()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/json")
	}
	if b.UserAgent != "" && req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", b.UserAgent)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.seen = append(b.seen, string(body))
	if loc := resp.Header.Get("Location"); loc != "" {
		b.seen = append(b.seen, loc)
	}
	isBFF := "http://"+req.URL.Host == b.BFF && (b.NotBFF == "" || !strings.HasPrefix(req.URL.Path, b.NotBFF))
	for _, c := range resp.Cookies() {
		if isBFF {
			CheckCookie(b.t, c)
		}
		if b.cookies[req.URL.Host] == nil {
			b.cookies[req.URL.Host] = map[string]string{}
			b.strict[req.URL.Host] = map[string]bool{}
		}
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies[req.URL.Host], c.Name)
		} else {
			b.cookies[req.URL.Host][c.Name] = c.Value
			b.strict[req.URL.Host][c.Name] = c.SameSite == http.SameSiteStrictMode
		}
	}
	return resp, string(body)
}

// Post sends body with contentType to rawURL, with header given as name,
// value pairs.
func (b *Browser) Post(rawURL, contentType, body string, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.Do(req)
}

// Get requests rawURL with header given as name, value pairs.
func (b *Browser) Get(rawURL string, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.Do(req)
}

// PostForm posts form to rawURL.
func (b *Browser) PostForm(rawURL string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Follow returns the absolute URL a redirect points to, failing the test
// when resp is not a redirect.
func Follow(t testing.TB, resp *http.Response) string {
	t.Helper()
	switch resp.StatusCode {
	case http.StatusFound, http.StatusSeeOther, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		t.Fatalf("%s: want a redirect, got %d", resp.Request.URL.Path, resp.StatusCode)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.String()
}

var (
	formRE   = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"`)
	hiddenRE = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
)

// Login requests /bff/login (with returnUrl when not empty), follows the
// redirects through the OP, fills in a username and password form when the
// OP shows one, and returns bff's answer to the callback.
func (b *Browser) Login(returnURL, username, password string) *http.Response {
	b.t.Helper()
	target := b.URL("/bff/login")
	if returnURL != "" {
		target += "?returnUrl=" + url.QueryEscape(returnURL)
	}
	resp, body := b.Get(target)
	for range 12 {
		switch {
		case resp.StatusCode == http.StatusOK && strings.Contains(body, `name="password"`):
			m := formRE.FindStringSubmatch(body)
			if m == nil {
				b.t.Fatalf("login form without action: %s", body)
			}
			action, err := resp.Request.URL.Parse(unescape(m[1]))
			if err != nil {
				b.t.Fatal(err)
			}
			form := url.Values{"username": {username}, "password": {password}}
			for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
				form.Set(h[1], unescape(h[2]))
			}
			resp, body = b.PostForm(action.String(), form)
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next := Follow(b.t, resp)
			resp, body = b.Navigate(next)
			if u, _ := url.Parse(next); strings.HasPrefix(next, b.BFF) && u.Path == b.CallbackPath {
				return resp
			}
		default:
			b.t.Fatalf("login stopped at %s with %d: %.300s", resp.Request.URL.Redacted(), resp.StatusCode, body)
		}
	}
	b.t.Fatal("login did not finish in 12 steps")
	return nil
}

func unescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#34;", `"`, "&quot;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// Cookie returns the value of the named cookie the browser holds for bff.
func (b *Browser) Cookie(name string) string {
	return b.cookies[strings.TrimPrefix(b.BFF, "http://")][name]
}

// Cookies returns the names and values of the cookies held for bff.
func (b *Browser) Cookies() map[string]string {
	return b.cookies[strings.TrimPrefix(b.BFF, "http://")]
}

// SetCookie plants a cookie for bff, as an attacker with a foothold might.
func (b *Browser) SetCookie(name, value string) {
	host := strings.TrimPrefix(b.BFF, "http://")
	if b.cookies[host] == nil {
		b.cookies[host] = map[string]string{}
		b.strict[host] = map[string]bool{}
	}
	b.cookies[host][name] = value
}

// SessionCookie returns the bff session cookie's value, "" when none.
func (b *Browser) SessionCookie() string { return b.Cookie("__Host-bff") }

// User calls /bff/user with the anti-forgery header.
func (b *Browser) User() (*http.Response, string) {
	b.t.Helper()
	return b.Get(b.URL("/bff/user"), "X-CSRF", "1")
}

// CheckCookie asserts the attributes every cookie bff sets must have:
// __Host- prefix, Secure, HttpOnly, Path=/, no Domain, and SameSite Strict
// (the session) or Lax (the login and logout round trips through the OP).
func CheckCookie(t testing.TB, c *http.Cookie) {
	t.Helper()
	if !strings.HasPrefix(c.Name, "__Host-") {
		t.Errorf("cookie %s: no __Host- prefix", c.Name)
	}
	if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie %s: Secure=%t HttpOnly=%t Path=%q Domain=%q", c.Name, c.Secure, c.HttpOnly, c.Path, c.Domain)
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

// AssertNoTokenLeak fails the test if any of tokens appears in logs, in a
// response body, or in a Location header, but for the ID token as the
// id_token_hint of a redirect to endSessionURL, which RP-Initiated Logout
// asks for.
func (b *Browser) AssertNoTokenLeak(logs, endSessionURL string, tokens ...string) {
	b.t.Helper()
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		if strings.Contains(logs, tok) {
			b.t.Errorf("a token appears in the logs")
		}
		for _, s := range b.seen {
			if !strings.Contains(s, tok) {
				continue
			}
			if endSessionURL != "" && strings.HasPrefix(s, endSessionURL) {
				if u, err := url.Parse(s); err == nil && u.Query().Get("id_token_hint") == tok {
					continue
				}
			}
			b.t.Errorf("a token appears in a response: %.80q…", s)
		}
	}
}
