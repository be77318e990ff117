package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
)

// Upstream returns a handler that proxies every request to the SPA's dev
// server, e.g. "http://localhost:5173" for Vite, so that the page, its
// modules and the hot-module-reload WebSocket share bff's origin.
//
// The outgoing request goes to devServer with the dev server's Host, fresh
// X-Forwarded-For, -Host and -Proto headers, and without the browser's Cookie
// and Authorization headers. WebSocket and other Upgrade requests pass
// through, and responses are streamed as they arrive. A request under a
// NoFallback prefix gets 404 without being proxied. When the dev server
// cannot be reached the handler answers 502 with a short text naming
// devServer, and logs the error.
func Upstream(devServer string, opts Options) (http.Handler, error) {
	c, err := opts.config()
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	target, err := url.Parse(devServer)
	if err != nil {
		return nil, fmt.Errorf("frontend: dev server URL: %w", err)
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("frontend: dev server URL %q: want http:// or https:// and a host", devServer)
	}
	if target.RawQuery != "" || target.Fragment != "" {
		return nil, fmt.Errorf("frontend: dev server URL %q: has a query or fragment", devServer)
	}

	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Del("Cookie")
			pr.Out.Header.Del("Authorization")
		},
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				c.log.Debug("frontend: client went away", "path", r.URL.Path, "err", err)
			} else {
				c.log.Error("frontend: dev server unreachable", "url", devServer, "path", r.URL.Path, "err", err)
			}
			http.Error(w, fmt.Sprintf("502 bad gateway: the frontend dev server %s did not answer; is it running?", devServer), http.StatusBadGateway)
		},
	}
	return &upstream{proxy: proxy, config: c}, nil
}

// upstream is the handler returned by Upstream.
type upstream struct {
	proxy *httputil.ReverseProxy
	config
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u.reserved(path.Clean("/" + r.URL.Path)) {
		http.NotFound(w, r)
		return
	}
	u.proxy.ServeHTTP(w, r)
}
