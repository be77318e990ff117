package bff_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/devidp"
)

// upstream is an API behind bff that records every request it receives.
type upstream struct {
	t      *testing.T
	server *httptest.Server
	mu     sync.Mutex
	seen   []*http.Request
	// release, when set, holds the /sse stream open after its first event.
	release chan struct{}
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{t: t, release: make(chan struct{})}
	u.server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		select {
		case <-u.release:
		default:
			close(u.release)
		}
		u.server.Close()
	})
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Clone(context.Background()))
	u.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/sse"):
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-u.release
		fmt.Fprint(w, "data: second\n\n")
	case strings.HasSuffix(r.URL.Path, "/ws"):
		wsEcho(w, r)
	case strings.HasSuffix(r.URL.Path, "/cookie"):
		http.SetCookie(w, &http.Cookie{Name: "planted", Value: "x", Path: "/"})
		io.WriteString(w, "{}")
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path})
	}
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.seen...)
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	rs := u.requests()
	if len(rs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return rs[len(rs)-1]
}

// newAPIApp starts the real OP, an upstream, and a BFF with one API route
// per token type.
func newAPIApp(t *testing.T, edit ...func(*bff.Config)) (*devidp.Provider, *app, *upstream) {
	t.Helper()
	up := newUpstream(t)
	routes := func(c *bff.Config) {
		for _, tt := range []bff.TokenType{bff.TokenUser, bff.TokenClient, bff.TokenUserOrClient, bff.TokenUserOrNone, bff.TokenNone} {
			c.APIs = append(c.APIs, bff.APIConfig{Path: "/api/" + string(tt), Upstream: up.server.URL + "/v1/" + string(tt), Token: tt})
		}
		c.APIs = append(c.APIs, bff.APIConfig{Path: "/api/readonly", Upstream: up.server.URL + "/ro", Methods: []string{"GET"}})
	}
	idp, a := newDevIDPApp(t, append([]func(*bff.Config){routes}, edit...)...)
	return idp, a, up
}

func bearer(r *http.Request) string {
	v, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return v
}

// TestAPITokenTypes calls each route as alice and anonymously, and checks
// the token the upstream receives, and that it never receives the browser's
// cookies or the anti-forgery header.
func TestAPITokenTypes(t *testing.T) {
	_, a, up := newAPIApp(t)
	alice := newBrowser(t, a)
	alice.Login("/", "alice", "alice")
	userToken := a.sessionOf(alice).Tokens.AccessToken
	anon := newBrowser(t, a)
	anon.SetCookie("unrelated", "browser-cookie")

	var clientToken string
	for _, tc := range []struct {
		route    string
		br       *browser
		want     string // "user", "client", "" (none) or "401"
		upstream string
	}{
		{"user", alice, "user", "/v1/user/orders"},
		{"client", alice, "client", "/v1/client/orders"},
		{"user_or_client", alice, "user", "/v1/user_or_client/orders"},
		{"user_or_none", alice, "user", "/v1/user_or_none/orders"},
		{"none", alice, "", "/v1/none/orders"},
		{"user", anon, "401", ""},
		{"client", anon, "client", "/v1/client/orders"},
		{"user_or_client", anon, "client", "/v1/user_or_client/orders"},
		{"user_or_none", anon, "", "/v1/user_or_none/orders"},
		{"none", anon, "", "/v1/none/orders"},
	} {
		who := "alice"
		if tc.br == anon {
			who = "anonymous"
		}
		before := len(up.requests())
		resp, body := tc.br.Get(a.url("/api/"+tc.route+"/orders?page=2"), "X-CSRF", "1")
		if tc.want == "401" {
			if resp.StatusCode != http.StatusUnauthorized || len(up.requests()) != before {
				t.Errorf("%s %s: %d, upstream requests %d→%d", who, tc.route, resp.StatusCode, before, len(up.requests()))
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: %d %s", who, tc.route, resp.StatusCode, body)
			continue
		}
		r := up.last(t)
		if r.URL.Path != tc.upstream || r.URL.RawQuery != "page=2" {
			t.Errorf("%s %s: upstream got %s?%s, want %s?page=2", who, tc.route, r.URL.Path, r.URL.RawQuery, tc.upstream)
		}
		if len(r.Header.Values("Cookie")) != 0 || r.Header.Get("X-CSRF") != "" {
			t.Errorf("%s %s: the upstream got Cookie %q X-CSRF %q", who, tc.route, r.Header.Values("Cookie"), r.Header.Get("X-CSRF"))
		}
		got := bearer(r)
		switch tc.want {
		case "user":
			if got != userToken {
				t.Errorf("%s %s: upstream token is not alice's access token", who, tc.route)
			}
		case "client":
			if got == "" || got == userToken {
				t.Errorf("%s %s: want the client token, got %s", who, tc.route, map[bool]string{true: "none", false: "the user's"}[got == ""])
			}
			if clientToken != "" && got != clientToken {
				t.Errorf("%s %s: the client token was not reused", who, tc.route)
			}
			clientToken = got
			if sub := jwtClaim(t, got, "sub"); sub != "bff-e2e" {
				t.Errorf("client token sub %q, want the client id", sub)
			}
		case "":
			if r.Header.Get("Authorization") != "" {
				t.Errorf("%s %s: the upstream got an Authorization header", who, tc.route)
			}
		}
	}
	alice.AssertNoTokenLeak(a.logs.String(), "", userToken, clientToken)
}

// jwtClaim reads a claim of a JWT without verifying it.
func jwtClaim(t *testing.T, jwt, name string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	s, _ := claims[name].(string)
	return s
}

// rawRequest sends a request line as written, so neither the client nor a
// ServeMux cleans the path before bff sees it.
func rawRequest(t *testing.T, a *app, method, target string, header map[string]string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.server.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, strings.TrimPrefix(a.server.URL, "http://"))
	for k, v := range header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v)
	}
	fmt.Fprint(conn, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAPIRejections: every refused request is refused before anything
// reaches the upstream.
func TestAPIRejections(t *testing.T) {
	_, a, up := newAPIApp(t)
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	cookie := "__Host-bff=" + br.SessionCookie()
	withCSRF := map[string]string{"X-CSRF": "1", "Cookie": cookie}

	cases := []struct {
		name   string
		method string
		target string
		header map[string]string
		status int
	}{
		{"no X-CSRF", "GET", "/api/user/orders", map[string]string{"Cookie": cookie}, 401},
		{"wrong X-CSRF", "GET", "/api/user/orders", map[string]string{"Cookie": cookie, "X-CSRF": "0"}, 401},
		{"dot dot", "GET", "/api/user/../../admin", withCSRF, 400},
		{"encoded dot dot", "GET", "/api/user/%2e%2e/admin", withCSRF, 400},
		{"double-encoded dot dot", "GET", "/api/user/%252e%252e/admin", withCSRF, 400},
		{"backslash", "GET", `/api/user/..\admin`, withCSRF, 400},
		{"encoded backslash", "GET", "/api/user/%5c..%5cadmin", withCSRF, 400},
		{"//host", "GET", "/api/user//evil.example/x", withCSRF, 400},
		{"@host", "GET", "/api/user/@evil.example", withCSRF, 400},
		{"CR LF", "GET", "/api/user/x%0d%0aX-Injected:1", withCSRF, 400},
		{"method not allowed", "DELETE", "/api/readonly/x", withCSRF, 405},
		{"websocket from a foreign origin", "GET", "/api/user/ws", map[string]string{
			"Cookie": cookie, "Connection": "Upgrade", "Upgrade": "websocket", "Origin": "https://evil.example",
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, 403},
		{"websocket without an origin", "GET", "/api/user/ws", map[string]string{
			"Cookie": cookie, "Connection": "Upgrade", "Upgrade": "websocket",
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, 403},
	}
	for _, tc := range cases {
		if got := rawRequest(t, a, tc.method, tc.target, tc.header); got != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.status)
		}
	}
	if n := len(up.requests()); n != 0 {
		for _, r := range up.requests() {
			t.Logf("upstream got %s %s", r.Method, r.URL)
		}
		t.Fatalf("%d refused requests reached the upstream", n)
	}
	// The same requests made right do reach it.
	if got := rawRequest(t, a, "GET", "/api/readonly/x", withCSRF); got != 200 {
		t.Fatalf("a good request: %d", got)
	}
}

// TestAPIHeaderSmuggling: an Upgrade that offers another protocol beside
// websocket is not tunnelled, a Host of the client's choosing does not
// reach X-Forwarded-Host, and TRACE is refused in any spelling.
func TestAPIHeaderSmuggling(t *testing.T) {
	_, a, up := newAPIApp(t)
	csrf := map[string]string{"X-CSRF": "1"}

	smuggle := map[string]string{"X-CSRF": "1", "Connection": "Upgrade", "Upgrade": "h2c, websocket",
		"Origin": a.server.URL, "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	if got := rawRequest(t, a, "GET", "/api/none/x", smuggle); got == http.StatusSwitchingProtocols {
		t.Fatal("an h2c+websocket upgrade was switched")
	}
	if r := up.last(t); r.Header.Get("Upgrade") != "" {
		t.Fatalf("the upstream was offered Upgrade %q", r.Header.Get("Upgrade"))
	}

	conn, _ := net.Dial("tcp", strings.TrimPrefix(a.server.URL, "http://"))
	fmt.Fprintf(conn, "GET http://evil.example/api/none/x HTTP/1.1\r\nHost: evil.example\r\nX-CSRF: 1\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("absolute-form request: %v %v", resp, err)
	}
	r := up.last(t)
	if r.Header.Get("X-Forwarded-Host") != strings.TrimPrefix(a.server.URL, "http://") || r.Header.Get("X-Forwarded-Proto") != "http" {
		t.Fatalf("X-Forwarded-Host %q Proto %q, want the public origin's", r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"))
	}

	before := len(up.requests())
	for _, m := range []string{"TRACE", "trace", "Trace", "TRACK", "connect"} {
		if got := rawRequest(t, a, m, "/api/none/x", csrf); got < 400 {
			t.Errorf("%s: %d", m, got)
		}
	}
	if len(up.requests()) != before {
		t.Fatal("a TRACE-like request reached the upstream")
	}
}

func TestAPIDropsUpstreamCookies(t *testing.T) {
	_, a, _ := newAPIApp(t)
	br := newBrowser(t, a)
	resp, _ := br.Get(a.url("/api/none/cookie"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("upstream Set-Cookie: %d %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
}

func TestAPIUnreachableUpstreamIs502(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, a := newDevIDPApp(t, func(c *bff.Config) {
		c.APIs = []bff.APIConfig{{Path: "/api", Upstream: dead.URL, Token: bff.TokenNone}}
	})
	resp, body := newBrowser(t, a).Get(a.url("/api/x"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		t.Fatalf("unreachable upstream: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestAPIRefreshesOnceForAThousandRequests lets alice's access token come
// close to expiry and sends 1,000 API calls at once: the OP sees one
// refresh, and every call reaches the upstream with the new token.
func TestAPIRefreshesOnceForAThousandRequests(t *testing.T) {
	idp, a, up := newAPIApp(t)
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	old := a.sessionOf(br).Tokens.AccessToken
	a.clock.Advance(devidp.DefaultAccessTokenLifetime - 30*time.Second)

	const n = 1000
	codes := storm(t, []*app{a}, br.SessionCookie(), "/api/user/orders", n)
	if got := idp.Stats().RefreshGrants; got != 1 {
		t.Fatalf("the OP saw %d refreshes for %d concurrent requests, want 1", got, n)
	}
	fresh := a.sessionOf(br).Tokens.AccessToken
	if fresh == old {
		t.Fatal("the session kept its old token")
	}
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	for _, r := range up.requests() {
		if bearer(r) != fresh {
			t.Fatal("an upstream request carried a token other than the refreshed one")
		}
	}
}

// TestAPIDeadRefreshTokenEndsTheSession: when the OP no longer honours the
// refresh token, the API call is 401 and the session is gone, rather than
// a session that looks logged in but cannot call anything.
func TestAPIDeadRefreshTokenEndsTheSession(t *testing.T) {
	idp, a, up := newAPIApp(t)
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	idp.RevokeUserTokens(devidp.DefaultUsers()[0].Subject)
	a.clock.Advance(devidp.DefaultAccessTokenLifetime)
	resp, _ := br.Get(a.url("/api/user/orders"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API call with a dead refresh token: %d, want 401", resp.StatusCode)
	}
	if len(up.requests()) != 0 {
		t.Fatal("the request reached the upstream")
	}
	if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/user after the session ended: %d", resp.StatusCode)
	}
}

func TestAPIServerSentEventsStream(t *testing.T) {
	_, a, up := newAPIApp(t)
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	req, _ := http.NewRequest(http.MethodGet, a.url("/api/user/sse"), nil)
	req.Header.Set("X-CSRF", "1")
	req.AddCookie(&http.Cookie{Name: "__Host-bff", Value: br.SessionCookie()})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	// The first event arrives while the upstream is still holding the
	// stream open: nothing buffers it.
	line, err := lines.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(up.release)
	rest, _ := io.ReadAll(lines)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("second event missing: %q", rest)
	}
}

// TestAPIWebSocket opens a WebSocket through bff with the page's Origin and
// the session cookie: the upstream gets the user's token, and a message
// goes there and back.
func TestAPIWebSocket(t *testing.T) {
	_, a, up := newAPIApp(t)
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.server.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(conn, "GET /api/user/ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nOrigin: %s\r\nCookie: __Host-bff=%s\r\n\r\n",
		strings.TrimPrefix(a.server.URL, "http://"), key, a.server.URL, br.SessionCookie())
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	wsWriteMasked(t, conn, "hello through bff")
	if got := wsRead(t, rd); got != "hello through bff" {
		t.Fatalf("echo: %q", got)
	}
	r := up.last(t)
	if bearer(r) != a.sessionOf(br).Tokens.AccessToken || len(r.Header.Values("Cookie")) != 0 {
		t.Fatal("the WebSocket upstream did not get the user's token, or got the cookie")
	}
}

// wsEcho is a minimal RFC 6455 server: it accepts the handshake, reads one
// masked text frame and sends it back unmasked.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	rw.Flush()
	var head [2]byte
	if _, err := io.ReadFull(rw, head[:]); err != nil {
		return
	}
	n := int(head[1] & 0x7f)
	var mask [4]byte
	io.ReadFull(rw, mask[:])
	payload := make([]byte, n)
	io.ReadFull(rw, payload)
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	rw.Write([]byte{0x81, byte(n)})
	rw.Write(payload)
	rw.Flush()
}

func wsWriteMasked(t *testing.T, w io.Writer, msg string) {
	t.Helper()
	var mask [4]byte
	rand.Read(mask[:])
	frame := []byte{0x81, 0x80 | byte(len(msg))}
	frame = append(frame, mask[:]...)
	for i := range len(msg) {
		frame = append(frame, msg[i]^mask[i%4])
	}
	if _, err := w.Write(frame); err != nil {
		t.Fatal(err)
	}
}

func wsRead(t *testing.T, r io.Reader) string {
	t.Helper()
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		t.Fatal(err)
	}
	n := int(head[1] & 0x7f)
	if n == 126 {
		var l [2]byte
		io.ReadFull(r, l[:])
		n = int(binary.BigEndian.Uint16(l[:]))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatal(err)
	}
	return string(payload)
}

// TestLocalAPIGetsTheAccessToken: a local handler behind ProtectAPI asks
// for the user's token to call another API itself.
func TestLocalAPIGetsTheAccessToken(t *testing.T) {
	var got string
	_, a := newDevIDPApp(t)
	a.local.Handle("/local/token", a.bff.ProtectAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := bff.UserFrom(r.Context())
		tok, err := u.AccessToken(r.Context())
		if err != nil {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		got = tok
		io.WriteString(w, "ok")
	})))
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	if resp, _ := br.Get(a.url("/local/token"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("local API: %d", resp.StatusCode)
	}
	if got == "" || got != a.sessionOf(br).Tokens.AccessToken {
		t.Fatal("the local API did not get the session's access token")
	}
}

// TestLocalWebSocketNeedsTheOrigin: a local API's WebSocket, which cannot
// carry X-CSRF, is refused from a foreign origin (cross-site WebSocket
// hijacking) and let through from the application's own.
func TestLocalWebSocketNeedsTheOrigin(t *testing.T) {
	_, a := newDevIDPApp(t)
	a.local.Handle("/local/ws", a.bff.ProtectAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "reached")
	})))
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	ws := func(origin string) int {
		return rawRequest(t, a, "GET", "/local/ws", map[string]string{"Cookie": "__Host-bff=" + br.SessionCookie(),
			"Connection": "Upgrade", "Upgrade": "websocket", "Origin": origin,
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
	}
	if got := ws("https://evil.example"); got != http.StatusForbidden {
		t.Fatalf("foreign origin: %d, want 403", got)
	}
	if got := ws(a.server.URL); got != http.StatusOK {
		t.Fatalf("own origin: %d, want 200", got)
	}
}
