package proxy

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"testing"
)

// The RFC 6455 handshake and framing, by hand: just enough for one text
// message each way.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// writeFrame writes one final text frame, masked when mask is not nil
// (client to server frames must be, RFC 6455 5.3).
func writeFrame(w io.Writer, payload []byte, mask []byte) error {
	if len(payload) > 125 {
		panic("short frames only")
	}
	b := []byte{0x81, byte(len(payload))}
	if mask != nil {
		b[1] |= 0x80
		b = append(b, mask...)
		for i, c := range payload {
			b = append(b, c^mask[i%4])
		}
	} else {
		b = append(b, payload...)
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one short frame and returns its unmasked payload and
// whether it was masked.
func readFrame(r io.Reader) (payload []byte, masked bool, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, false, err
	}
	if h[0] != 0x81 || h[1]&0x7f > 125 {
		return nil, false, io.ErrUnexpectedEOF
	}
	masked = h[1]&0x80 != 0
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return nil, false, err
		}
	}
	payload = make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, false, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return payload, masked, nil
}

// wsEcho is an upstream WebSocket endpoint that answers one message with
// "echo: " + message.
func wsEcho(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Sec-WebSocket-Key") == "" {
			http.Error(w, "not a websocket handshake", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+wsAccept(r.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
		brw.Flush()
		msg, masked, err := readFrame(brw)
		if err != nil || !masked {
			t.Errorf("upstream read: %q masked=%v err=%v", msg, masked, err)
			return
		}
		writeFrame(brw, append([]byte("echo: "), msg...), nil)
		brw.Flush()
	}
}

const appOrigin = "https://app.example.com"

func wsFixture(t *testing.T) *fixture {
	return newFixture(t, wsEcho(t), func(r *Route) { r.AllowedOrigins = []string{"https://APP.example.com:443"} })
}

// wsDial performs the client handshake through the proxy with the given
// Origin header lines (none for no Origin).
func wsDial(t *testing.T, f *fixture, origins ...string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	req := "GET /api/orders/ws HTTP/1.1\r\nHost: " + f.srv.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" +
		"Cookie: __Host-bff=session\r\n"
	for _, o := range origins {
		req += "Origin: " + o + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusSwitchingProtocols && res.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Errorf("Sec-WebSocket-Accept %q", res.Header.Get("Sec-WebSocket-Accept"))
	}
	return c, br, res
}

func TestWebSocketRoundTrip(t *testing.T) {
	f := wsFixture(t)
	c, br, res := wsDial(t, f, "HTTPS://App.Example.com") // scheme and host compare case-insensitively
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	if err := writeFrame(c, []byte("hello"), []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	msg, masked, err := readFrame(br)
	if err != nil || masked || string(msg) != "echo: hello" {
		t.Fatalf("client read %q masked=%v err=%v", msg, masked, err)
	}
	got := f.up.only(t)
	if v := got.Header.Values("Authorization"); len(v) != 1 || v[0] != token {
		t.Errorf("upstream Authorization %q, want the token", v)
	}
	if v, ok := got.Header["Cookie"]; ok {
		t.Errorf("Cookie forwarded: %q", v)
	}
}

func TestWebSocketOriginRefused(t *testing.T) {
	for name, origins := range map[string][]string{
		"missing":      nil,
		"foreign":      {"https://evil.example"},
		"other port":   {"https://app.example.com:8443"},
		"other scheme": {"http://app.example.com"},
		"suffix":       {"https://app.example.com.evil.example"},
		"null":         {"null"},
		"two":          {appOrigin, "https://evil.example"},
	} {
		t.Run(name, func(t *testing.T) {
			f := wsFixture(t)
			_, _, res := wsDial(t, f, origins...)
			body, _ := io.ReadAll(res.Body)
			wantProblem(t, res, string(body), http.StatusForbidden)
			f.wantUntouched(t)
		})
	}
}

func TestWebSocketRefusedWithoutAllowedOrigins(t *testing.T) {
	f := newFixture(t, wsEcho(t), nil)
	_, _, res := wsDial(t, f, appOrigin)
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", res.StatusCode)
	}
	f.wantUntouched(t)
}
