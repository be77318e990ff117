// Package proxy forwards browser API calls under a configured path prefix to
// one upstream API, attaching the session's access token on the way.
//
// It implements the proxy rules of DESIGN.md section 5: only configured
// prefixes are served; the rest of the path must stay under the upstream's
// base path (dot segments, double encoding, backslashes and friends are
// refused before anything is sent); requests are built with
// [httputil.ReverseProxy] and its Rewrite hook, never Director, so a
// client's Connection header cannot strip the token; the browser's Cookie
// and Authorization headers are dropped and fresh X-Forwarded-* headers are
// set; upstream redirects are passed back, never followed; WebSocket
// upgrades must come from an allowed Origin.
//
// The package knows nothing about sessions or tokens: the caller supplies
// them through [Route.Authorize].
package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// Route is one remote API: requests under Prefix go to Upstream.
type Route struct {
	// Prefix is the local path prefix, e.g. "/api/orders": it starts with
	// "/", has no trailing slash, is not "/" and needs no percent-encoding.
	// It matches the prefix itself and prefix + "/...", never
	// "/api/ordersx" (DESIGN.md 5: only configured prefixes).
	Prefix string

	// Upstream is the base URL, e.g. "https://orders.internal/v1": http or
	// https, with a host and no user info, query or fragment. The rest of
	// the request path after Prefix is appended under Upstream's path and
	// must stay under it. "/api/orders" maps to Upstream's path itself,
	// "/api/orders/" to that path + "/", "/api/orders/x" to path + "/x".
	Upstream *url.URL

	// Methods, when not empty, is the allow-list of methods (compared with
	// the request method after upper-casing the configured names); others
	// get 405 with an Allow header. TRACE and CONNECT are never proxied:
	// TRACE would echo the attached token back to the browser.
	Methods []string

	// AllowedOrigins are the origins (scheme://host[:port]; of a URL with
	// a path, its origin) a WebSocket upgrade's Origin header must equal,
	// ignoring case and a default port in the configured value; bff passes
	// its public_url. Browsers
	// cannot add custom headers to a WebSocket, so this check replaces the
	// anti-forgery header for upgrades (DESIGN.md 5). Empty: every upgrade
	// is refused with 403.
	AllowedOrigins []string

	// Authorize is called for every request that passed the path, method
	// and origin checks, before anything is sent upstream. It returns the
	// value for the upstream Authorization header ("" for none), or
	// ok=false after writing the response itself (401, 502, ...). It is
	// required; a route without a token returns "", true.
	Authorize func(w http.ResponseWriter, r *http.Request) (authorization string, ok bool)

	// PassSetCookie lets upstream Set-Cookie headers through to the
	// browser; by default they are dropped, so an API cannot plant cookies
	// on bff's origin.
	PassSetCookie bool

	// PublicOrigin, when set (bff passes its public_url), is what the
	// upstream gets as X-Forwarded-Host and X-Forwarded-Proto, instead of
	// the client's Host header: an upstream that builds links or redirects
	// from those must not be steered to a host of the client's choosing.
	PublicOrigin string
}

// Options are the shared, non-route settings of a [Handler].
type Options struct {
	// Transport sends the upstream requests. Default: a new [NewTransport]
	// per Handler; pass one shared transport to pool connections across
	// routes. It must not follow redirects (an [http.RoundTripper] never
	// does).
	Transport http.RoundTripper
	// Logger receives upstream failures (error level) and requests
	// abandoned by the client (debug level). Default: discard.
	Logger *slog.Logger
}

// Handler proxies one [Route]. It is safe for concurrent use.
type Handler struct {
	prefix       string
	authorize    func(http.ResponseWriter, *http.Request) (string, bool)
	methods      []string
	allow        string // the Allow header for 405
	origins      []string
	fwdHost      string // X-Forwarded-Host from PublicOrigin, or ""
	fwdProto     string
	log          *slog.Logger
	rp           *httputil.ReverseProxy
	scheme, host string
	// The upstream base path, decoded (…Path) and escaped (…Esc): exact*
	// as configured, for a request to the prefix itself; base* without a
	// trailing slash, to append a remainder to.
	exactPath, exactRaw string
	basePath, baseEsc   string
	baseEscaped         bool // baseEsc != basePath
}

// New validates route and returns its handler. Everything a request needs
// from the route (the joined base path, the methods, the normalized
// origins) is computed here, not per request. A route whose Prefix or
// Upstream path would itself fail the path rules is refused.
func New(route Route, opts Options) (*Handler, error) {
	h := &Handler{prefix: route.Prefix, authorize: route.Authorize, log: opts.Logger}
	fail := func(format string, args ...any) (*Handler, error) {
		return nil, fmt.Errorf("proxy: route %q: "+format, append([]any{route.Prefix}, args...)...)
	}

	p := route.Prefix
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' || strings.IndexByte(p, '%') >= 0 ||
		!checkPath(p) || (&url.URL{Path: p}).EscapedPath() != p {
		return fail(`prefix must be a clean path like "/api/orders" (not "/", no trailing slash, no dot segments or escapes)`)
	}

	u := route.Upstream
	switch {
	case u == nil:
		return fail("upstream is required")
	case u.Scheme != "http" && u.Scheme != "https":
		return fail("upstream must be an http or https URL")
	case u.Host == "" || u.Opaque != "":
		return fail("upstream must have a host")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fail("upstream must not have user info, a query or a fragment")
	}
	esc := u.EscapedPath()
	if !checkPath(esc) || !checkPath(u.Path) {
		return fail("upstream path must be clean (no dot segments, empty segments or odd escapes)")
	}
	h.scheme, h.host = u.Scheme, u.Host
	h.exactPath = u.Path
	if esc != u.Path {
		h.exactRaw = esc
	}
	h.basePath = strings.TrimSuffix(u.Path, "/")
	h.baseEsc = strings.TrimSuffix(esc, "/")
	h.baseEscaped = h.baseEsc != h.basePath

	for _, m := range route.Methods {
		m = strings.ToUpper(m)
		if !isToken(m) {
			return fail("method %q is not a valid HTTP method", m)
		}
		if m == http.MethodTrace || m == http.MethodConnect {
			return fail("method %s cannot be proxied", m)
		}
		h.methods = append(h.methods, m)
	}
	h.allow = strings.Join(h.methods, ", ")

	for _, o := range route.AllowedOrigins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return fail("allowed origin %q: %v", o, err)
		}
		h.origins = append(h.origins, n)
	}
	if route.PublicOrigin != "" {
		n, err := normalizeOrigin(route.PublicOrigin)
		if err != nil {
			return fail("public origin %q: %v", route.PublicOrigin, err)
		}
		h.fwdProto, h.fwdHost, _ = strings.Cut(n, "://")
	}

	if h.authorize == nil {
		return fail("Authorize is required")
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	t := opts.Transport
	if t == nil {
		t = NewTransport()
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:   h.rewrite,
		Transport: guard{h: h, next: t},
		// 0: ReverseProxy flushes server-sent events (text/event-stream)
		// and responses of unknown length as they come, and buffers the
		// rest: a flush per write would cost a syscall per write.
		FlushInterval: 0,
		ErrorHandler:  h.errorHandler,
		ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
		BufferPool:    newBufferPool(),
	}
	if !route.PassSetCookie {
		h.rp.ModifyResponse = dropSetCookie
	}
	return h, nil
}

// ServeHTTP checks the request, asks Authorize for the token, and proxies.
// Refusals, each before Authorize and before anything is sent upstream,
// are problem documents (RFC 9457, Cache-Control: no-store): 404 outside
// the prefix, 400 for an unsafe path or query, 405 (with Allow) for a
// method outside Methods, 501 for TRACE or CONNECT, 403 for a WebSocket
// upgrade without an allowed Origin. An unreachable upstream gives 502, a
// timed-out one 504. Upstream responses, redirects and 401s included, are
// passed back as they are, minus Set-Cookie. As with any ReverseProxy, a
// stream broken mid-body aborts with a panic of [http.ErrAbortHandler],
// which [http.Server] handles silently.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rem, dec, status := h.remainder(r.URL)
	if status != 0 {
		if status == http.StatusNotFound {
			probNotFound.write(w)
		} else {
			probBadPath.write(w)
		}
		return
	}
	if !h.methodAllowed(r.Method) {
		if len(h.methods) == 0 {
			probNotImplemented.write(w)
			return
		}
		w.Header().Set("Allow", h.allow)
		probMethod.write(w)
		return
	}
	ws := IsWebSocketUpgrade(r)
	if ws && !h.originAllowed(r.Header["Origin"]) {
		probOrigin.write(w)
		return
	}
	auth, ok := h.authorize(w, r)
	if !ok {
		return
	}

	// The per-request state rides in the context of a shallow copy of r,
	// where rewrite finds it: two small allocations, no map.
	st := &state{Context: r.Context(), auth: auth}
	st.path, st.rawPath = h.join(dec, rem)
	out := r.WithContext(st)
	if !ws {
		if _, up := r.Header["Upgrade"]; up {
			// Only WebSocket upgrades, which passed the Origin check, may
			// switch protocols; ReverseProxy would tunnel any other kind
			// (h2c, ...) unchecked. Drop the offer and proxy a plain request.
			out.Header = r.Header.Clone()
			delete(out.Header, "Upgrade")
		}
	}
	h.rp.ServeHTTP(w, out)
}

// methodAllowed applies Route.Methods; TRACE and CONNECT are always refused.
func (h *Handler) methodAllowed(m string) bool {
	// Method names are case-sensitive (RFC 9110, 9.1), but some servers
	// treat "trace" as TRACE; refuse every spelling, and TRACK too.
	if strings.EqualFold(m, http.MethodTrace) || strings.EqualFold(m, http.MethodConnect) || strings.EqualFold(m, "TRACK") {
		return false
	}
	if len(h.methods) == 0 {
		return true
	}
	for _, a := range h.methods {
		if a == m {
			return true
		}
	}
	return false
}

// state is the per-request data rewrite needs, carried as the request's
// context (which it wraps unchanged).
type state struct {
	context.Context
	auth          string
	path, rawPath string
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
