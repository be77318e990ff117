package bff_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
)

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// roundTripFunc answers upstream requests in process, so the benchmark
// measures bff's work per API request (route match, anti-forgery check,
// session lookup, token, path check, header rewrite) and ReverseProxy's, but
// no network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func BenchmarkAPIRequest(b *testing.B) {
	store := memstore.New()
	key := make([]byte, session.KeySize)
	rand.Read(key)
	body := make([]byte, 1024)
	b2, err := bff.New(bff.Config{
		PublicURL: "https://app.example",
		OIDC:      bff.OIDCConfig{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s"},
		Session:   bff.SessionConfig{Store: store},
		Keys:      [][]byte{key},
		APIs:      []bff.APIConfig{{Path: "/api", Upstream: "http://upstream.internal/v1"}},
		APITransport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(&fixedReader{b: body}), ContentLength: int64(len(body)), Request: r}, nil
		}),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s := &session.Session{Issuer: "https://idp.example", Subject: "alice", Payload: &session.Payload{
		Tokens: session.Tokens{AccessToken: "header.payload.signature-of-a-typical-jwt-access-token", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)},
	}}
	if err := b2.Sessions().Create(context.Background(), rec, s); err != nil {
		b.Fatal(err)
	}
	req := browserRequest(rec.Result().Cookies()[0].Name + "=" + rec.Result().Cookies()[0].Value)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		b2.ServeHTTP(w, req)
	}
}

// BenchmarkBareReverseProxy is the same request through a bare
// httputil.ReverseProxy over the same in-process transport: the baseline
// BenchmarkAPIRequest is compared with.
func BenchmarkBareReverseProxy(b *testing.B) { benchBare(b, nil) }

// BenchmarkBareReverseProxyPooled adds a buffer pool to the bare proxy, as
// bff's proxy has: the baseline for bff's own work.
func BenchmarkBareReverseProxyPooled(b *testing.B) {
	benchBare(b, &chanPool{free: make(chan []byte, 64)})
}

type chanPool struct{ free chan []byte }

func (p *chanPool) Get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, 32<<10)
	}
}

func (p *chanPool) Put(b []byte) {
	select {
	case p.free <- b:
	default:
	}
}

func benchBare(b *testing.B, pool httputil.BufferPool) {
	body := make([]byte, 1024)
	up, _ := url.Parse("http://upstream.internal/v1")
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.SetXForwarded() },
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(&fixedReader{b: body}), ContentLength: int64(len(body)), Request: r}, nil
		}),
		BufferPool: pool,
	}
	req := browserRequest("__Host-bff=" + strings.Repeat("x", 43))
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		rp.ServeHTTP(w, req)
	}
}

// browserRequest is an API call as a browser sends it, headers and all.
func browserRequest(sessionCookie string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "https://app.example/api/orders/42?page=2", nil)
	for k, v := range map[string]string{
		"Accept": "application/json", "Accept-Encoding": "gzip, deflate, br", "Accept-Language": "en-GB,en;q=0.9",
		"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
		"X-Csrf":     "1", "Referer": "https://app.example/orders", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin",
		"Cookie": "theme=dark; " + sessionCookie,
	} {
		req.Header.Set(k, v)
	}
	return req
}

type fixedReader struct {
	b []byte
	n int
}

func (f *fixedReader) Read(p []byte) (int, error) {
	if f.n >= len(f.b) {
		return 0, io.EOF
	}
	n := copy(p, f.b[f.n:])
	f.n += n
	return n, nil
}
