package proxy

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns an [http.Transport] tuned for a proxy in front of a
// few internal upstreams that carry every API call:
//
//   - Proxy: [http.ProxyFromEnvironment], as conventional; list internal
//     upstreams in NO_PROXY when HTTPS_PROXY/HTTP_PROXY are set.
//   - dial timeout 10s, TCP keep-alive 30s, TLS handshake timeout 10s.
//   - HTTP/2 attempted over TLS (WebSocket upgrades still use HTTP/1.1).
//   - 1024 idle connections, 256 per host (the default 2 per host would
//     make a busy proxy open and close connections constantly), kept 90s.
//   - Expect: 100-continue waits at most 1s.
//   - ResponseHeaderTimeout 60s: the upstream must start answering within
//     a minute. It bounds only the wait for the response headers, so
//     server-sent events and WebSocket streams may last longer.
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers, which it would
// otherwise allocate for every response. It is a bounded free list on a
// channel rather than a sync.Pool: putting a []byte into a sync.Pool boxes
// it, one allocation per response; a channel send does not.
type bufferPool struct{ free chan []byte }

const (
	bufferSize = 32 << 10
	// maxFreeBuffers bounds what an idle handler keeps: 8 MiB.
	maxFreeBuffers = 256
)

func newBufferPool() *bufferPool {
	return &bufferPool{free: make(chan []byte, maxFreeBuffers)}
}

func (b *bufferPool) Get() []byte {
	select {
	case buf := <-b.free:
		return buf
	default:
		return make([]byte, bufferSize)
	}
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != bufferSize {
		return
	}
	select {
	case b.free <- buf[:bufferSize]:
	default: // full: let the GC have it
	}
}
