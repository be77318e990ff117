package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// browserRequest is a realistic SPA API call: 15 headers, a session
// cookie, the anti-forgery header.
func browserRequest(tb testing.TB, target string) *http.Request {
	r := mustRequest(tb, "GET", target)
	r.Host = "app.example.com"
	h := r.Header
	h.Set("Accept", "application/json, text/plain, */*")
	h.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	h.Set("Accept-Language", "en-GB,en;q=0.9,de;q=0.8")
	h.Set("Cookie", "__Host-bff=Fe26.2**0c7ad8f1e6b2c4b9d1a0e3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5**; theme=dark")
	h.Set("Referer", "https://app.example.com/orders?page=2")
	h.Set("Sec-Ch-Ua", `"Chromium";v="131", "Not_A Brand";v="24"`)
	h.Set("Sec-Ch-Ua-Mobile", "?0")
	h.Set("Sec-Ch-Ua-Platform", `"Linux"`)
	h.Set("Sec-Fetch-Dest", "empty")
	h.Set("Sec-Fetch-Mode", "cors")
	h.Set("Sec-Fetch-Site", "same-origin")
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	h.Set("X-CSRF", "1")
	h.Set("Priority", "u=1, i")
	h.Set("Connection", "keep-alive")
	return r
}

var benchUpstream = &url.URL{Scheme: "https", Host: "orders.internal", Path: "/v1"}

func benchHandler(tb testing.TB, up *url.URL, t http.RoundTripper) *Handler {
	h, err := New(Route{
		Prefix:   "/api/orders",
		Upstream: up,
		Methods:  []string{"GET", "POST"},
		Authorize: func(http.ResponseWriter, *http.Request) (string, bool) {
			return "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl", true
		},
	}, Options{Transport: t})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func BenchmarkCheckPath(b *testing.B) {
	h := benchHandler(b, benchUpstream, nil)
	for _, target := range []string{
		"/api/orders/123/items/45?expand=lines&page=2",
		"/api/orders/search/caf%C3%A9%20cr%C3%A8me?q=50%25",
	} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.Split(target, "/")[3], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, s := h.remainder(u); s != 0 {
					b.Fatal(s)
				}
			}
		})
	}
}

// BenchmarkRewrite measures the Rewrite hook alone on a cloned browser
// request (the clone itself is ReverseProxy's work, outside the timing).
func BenchmarkRewrite(b *testing.B) {
	h := benchHandler(b, benchUpstream, nil)
	in := browserRequest(b, "http://app.example.com/api/orders/123/items?page=2")
	rem, dec, status := h.remainder(in.URL)
	if status != 0 {
		b.Fatal(status)
	}
	st := &state{Context: context.Background(), auth: "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}
	st.path, st.rawPath = h.join(dec, rem)
	in = in.WithContext(st)
	out := in.Clone(st)
	removeHop := func(hd http.Header) { // what ReverseProxy does before Rewrite
		delete(hd, "Connection")
	}
	removeHop(out.Header)
	cookie, csrf := in.Header["Cookie"], in.Header["X-Csrf"]
	pr := &httputil.ProxyRequest{In: in, Out: out}
	b.ReportAllocs()
	for b.Loop() {
		// Restore what the previous iteration changed, without allocating.
		*out.URL = *in.URL
		out.Host = in.Host
		out.Header["Cookie"], out.Header["X-Csrf"] = cookie, csrf
		delete(out.Header, "X-Forwarded-For")
		delete(out.Header, "X-Forwarded-Host")
		delete(out.Header, "X-Forwarded-Proto")
		h.rewrite(pr)
	}
	if out.URL.String() != "https://orders.internal/v1/123/items?page=2" || out.Header.Get("Cookie") != "" {
		b.Fatalf("rewrite: %s %v", out.URL, out.Header)
	}
}

// BenchmarkProxy runs a GET end to end against an upstream answering
// 1 KiB of JSON: through bff's Handler, and through a bare ReverseProxy
// (SetURL + SetXForwarded) on the same transport, to show the overhead.
func BenchmarkProxy(b *testing.B) {
	payload := `{"items":[` + strings.Repeat(`{"id":12345,"name":"widget"},`, 30) + `{"id":0}]}`
	payload += strings.Repeat(" ", 1024-len(payload))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, payload)
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL + "/v1")
	tr := NewTransport()
	defer tr.CloseIdleConnections()

	run := func(b *testing.B, h http.Handler) {
		r := browserRequest(b, "http://app.example.com/api/orders/123/items?page=2")
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			w.code, w.n = 0, 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusOK || w.n != 1024 {
				b.Fatalf("status %d, %d bytes", w.code, w.n)
			}
		}
	}
	b.Run("bff", func(b *testing.B) { run(b, benchHandler(b, upURL, tr)) })
	b.Run("bare", func(b *testing.B) {
		run(b, &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(upURL)
				pr.SetXForwarded()
			},
			Transport: tr,
		})
	})
}

type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	w.n += len(p)
	return len(p), nil
}
