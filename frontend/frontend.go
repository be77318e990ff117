// Package frontend serves a single-page application next to bff's own
// endpoints: either the built files from a directory or an fs.FS (Dir, FS),
// or, during development, by proxying a dev server such as Vite (Upstream).
//
// Mount the returned handler as the catch-all ("/") of the server; bff's
// endpoints and API routes are mounted on more specific patterns and list
// their prefixes in Options.NoFallback, so that a request meant for them never
// turns into the SPA's index.html.
package frontend

import (
	"fmt"
	"log/slog"
	"path"
	"strings"
)

// Options configures the handlers returned by Dir, FS and Upstream.
type Options struct {
	// NoFallback lists path prefixes that never get index.html (bff mounts
	// its own handlers there, e.g. "/bff/" and API prefixes such as
	// "/api/orders"); a request under one that reaches this handler gets
	// 404. A prefix "/api/orders" matches "/api/orders" and
	// "/api/orders/..." but not "/api/ordersx"; a trailing slash makes no
	// difference. Every prefix must start with "/".
	NoFallback []string

	// Logger receives the handler's log lines. Nil discards them.
	Logger *slog.Logger
}

// config is Options checked and normalised.
type config struct {
	noFallback []string // cleaned, without a trailing slash ("" for "/")
	log        *slog.Logger
}

func (o Options) config() (config, error) {
	c := config{log: o.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range o.NoFallback {
		if !strings.HasPrefix(p, "/") {
			return config{}, fmt.Errorf("NoFallback prefix %q does not start with /", p)
		}
		c.noFallback = append(c.noFallback, strings.TrimSuffix(path.Clean(p), "/"))
	}
	return c, nil
}

// reserved reports whether the cleaned path p is under a NoFallback prefix.
func (c config) reserved(p string) bool {
	for _, pre := range c.noFallback {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}
