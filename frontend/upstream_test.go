package frontend

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func upstreamHandler(t *testing.T, devServer string) http.Handler {
	t.Helper()
	h, err := Upstream(devServer, Options{
		NoFallback: []string{"/bff/", "/api/orders"},
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestUpstreamForwards(t *testing.T) {
	seen := make(chan *http.Request, 1)
	dev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Clone(r.Context())
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, "export default 1")
	}))
	defer dev.Close()
	devURL, _ := url.Parse(dev.URL)

	h := upstreamHandler(t, dev.URL)
	w := get(h, "GET", "https://app.example/src/main.ts?t=123&import",
		"Cookie", "__Host-bff=session",
		"Authorization", "Bearer token",
		"X-Forwarded-Host", "evil.example",
		"Accept", "*/*")
	if w.Code != 200 || w.Body.String() != "export default 1" || w.Header().Get("Content-Type") != "text/javascript" {
		t.Fatalf("proxied response: %d %q %v", w.Code, w.Body, w.Header())
	}

	r := <-seen
	if got := r.URL.RequestURI(); got != "/src/main.ts?t=123&import" {
		t.Errorf("path and query: %q", got)
	}
	if r.Host != devURL.Host {
		t.Errorf("Host %q, want the dev server's %q", r.Host, devURL.Host)
	}
	for _, name := range []string{"Cookie", "Authorization"} {
		if v, ok := r.Header[name]; ok {
			t.Errorf("%s forwarded: %q", name, v)
		}
	}
	if got := r.Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", got)
	}
	if got := r.Header.Values("X-Forwarded-Host"); len(got) != 1 || got[0] != "app.example" {
		t.Errorf("X-Forwarded-Host %q, want [app.example]", got)
	}
	if got := r.Header.Get("X-Forwarded-For"); got == "" {
		t.Error("no X-Forwarded-For")
	}
	if got := r.Header.Get("Accept"); got != "*/*" {
		t.Errorf("Accept %q not forwarded", got)
	}
}

func TestUpstreamNoFallback(t *testing.T) {
	hits := make(chan string, 10)
	dev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
	}))
	defer dev.Close()
	h := upstreamHandler(t, dev.URL)
	for _, path := range []string{"/bff/user", "/bff", "/api/orders", "/api/orders/7", "/api//orders/7"} {
		if w := get(h, "GET", path); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	if w := get(h, "GET", "/api/ordersx"); w.Code != http.StatusOK {
		t.Errorf("GET /api/ordersx: %d, want 200 from the dev server", w.Code)
	}
	close(hits)
	var got []string
	for p := range hits {
		got = append(got, p)
	}
	if len(got) != 1 || got[0] != "/api/ordersx" {
		t.Errorf("dev server saw %q, want only /api/ordersx", got)
	}
}

// TestUpstreamWebSocket does a WebSocket handshake through the proxy, as
// Vite's HMR client does, and sends a text frame each way.
func TestUpstreamWebSocket(t *testing.T) {
	cookies := make(chan string, 1)
	dev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookies <- r.Header.Get("Cookie")
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not a websocket", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: vite-hmr\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		if err := rw.Flush(); err != nil {
			t.Error(err)
			return
		}
		msg, err := readFrame(rw.Reader)
		if err != nil {
			t.Errorf("dev server: %v", err)
			return
		}
		if err := writeFrame(conn, "echo: "+msg, false); err != nil {
			t.Errorf("dev server: %v", err)
		}
	}))
	defer dev.Close()
	srv := httptest.NewServer(upstreamHandler(t, dev.URL))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	fmt.Fprintf(conn, "GET /?token=abc HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: vite-hmr\r\n"+
		"Cookie: __Host-bff=session\r\n\r\n", key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), wsAccept(key); got != want {
		t.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if c := <-cookies; c != "" {
		t.Errorf("Cookie forwarded on the upgrade: %q", c)
	}
	if err := writeFrame(conn, "hello", true); err != nil {
		t.Fatal(err)
	}
	msg, err := readFrame(br)
	if err != nil {
		t.Fatal(err)
	}
	if msg != "echo: hello" {
		t.Errorf("got %q, want %q", msg, "echo: hello")
	}
}

func wsAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// writeFrame writes a final text frame of less than 126 bytes, masked as a
// client must.
func writeFrame(w io.Writer, msg string, mask bool) error {
	if len(msg) >= 126 {
		return errors.New("frame too long for this test")
	}
	frame := []byte{0x81, byte(len(msg))}
	payload := []byte(msg)
	if mask {
		key := []byte{1, 2, 3, 4}
		frame[1] |= 0x80
		frame = append(frame, key...)
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	_, err := w.Write(append(frame, payload...))
	return err
}

// readFrame reads a final text frame of less than 126 bytes.
func readFrame(r io.Reader) (string, error) {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return "", err
	}
	if head[0] != 0x81 {
		return "", fmt.Errorf("frame header %#x: want a final text frame", head[0])
	}
	n := int(head[1] & 0x7f)
	if n >= 126 {
		return "", errors.New("frame too long for this test")
	}
	var key [4]byte
	masked := head[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return "", err
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return "", err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return string(payload), nil
}

// TestUpstreamStreaming holds the dev server's response open after the first
// event; the client must read that event before the response ends.
func TestUpstreamStreaming(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	defer done()

	dev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
	}))
	defer dev.Close()
	srv := httptest.NewServer(upstreamHandler(t, dev.URL))
	defer srv.Close()
	defer done() // before the servers close, which waits for the handlers

	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line: %q, %v", line, err)
	}
	// The upstream is still held open here: the event arrived streamed.
	done()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
}

func TestUpstreamDown(t *testing.T) {
	dev := httptest.NewServer(http.NotFoundHandler())
	devURL := dev.URL
	dev.Close()

	var logs bytes.Buffer
	h, err := Upstream(devURL, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w := get(h, "GET", "/")
	if w.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	if !strings.Contains(w.Body.String(), devURL) {
		t.Errorf("body %q does not name %s", w.Body, devURL)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), devURL) {
		t.Errorf("log %q: want an error naming %s", logs.String(), devURL)
	}
}

func TestUpstreamBadURL(t *testing.T) {
	for _, u := range []string{"", "localhost:5173", "ftp://localhost:5173", "http://", "http://localhost:5173/?x=1", "http://[::1"} {
		if _, err := Upstream(u, Options{}); err == nil {
			t.Errorf("Upstream(%q): no error", u)
		}
	}
	if _, err := Upstream("http://localhost:5173", Options{NoFallback: []string{"api"}}); err == nil {
		t.Error("relative NoFallback prefix: no error")
	}
}
