package proxy

import (
	"errors"
	"net/http"
	"net/http/httputil"
	"strings"
)

// rewrite is the ReverseProxy Rewrite hook. ReverseProxy has already
// removed hop-by-hop headers, including any the client named in its
// Connection header, and the client's Forwarded and X-Forwarded-* headers,
// so what is set here survives (DESIGN.md 5: Rewrite, not Director).
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	st, ok := pr.In.Context().(*state)
	if !ok {
		// Not from ServeHTTP: leave the URL on the inbound host, which the
		// guard transport refuses.
		return
	}
	u := pr.Out.URL
	u.Scheme, u.Host = h.scheme, h.host
	u.Path, u.RawPath = st.path, st.rawPath
	u.User, u.Opaque, u.Fragment, u.RawFragment = nil, "", "", ""
	// u.RawQuery stays: the client's query, minus any parameter
	// ReverseProxy found unparsable (parameter smuggling with ';').
	pr.Out.Host = h.host
	pr.SetXForwarded() // fresh X-Forwarded-For, -Host, -Proto
	if h.fwdHost != "" {
		pr.Out.Header["X-Forwarded-Host"][0] = h.fwdHost
		pr.Out.Header["X-Forwarded-Proto"][0] = h.fwdProto
	}

	hd := pr.Out.Header
	for k := range hd { // one pass; deleting while ranging is allowed
		if dropHeader(k) {
			delete(hd, k)
		}
	}
	if st.auth != "" {
		hd["Authorization"] = []string{st.auth}
	}
}

// dropHeader reports whether a request header (canonical name) must not
// reach the upstream. One pass over the request's headers with a switch
// is cheaper than deleting every listed name from the map (~260 ns
// against ~360 ns for a 15-header browser request).
func dropHeader(k string) bool {
	switch k {
	case
		// The browser's credentials for bff, not for the API (DESIGN.md 5).
		"Cookie",
		"Authorization",
		"Proxy-Authorization", // hop-by-hop, so already gone; kept explicit
		"X-Csrf",              // the anti-forgery header, meant for bff only
		// Headers some frameworks obey to override the method or the path,
		// which would bypass Route.Methods or the base path.
		"X-Http-Method-Override",
		"X-Http-Method",
		"X-Method-Override",
		"X-Original-Url",
		"X-Rewrite-Url",
		// Client-IP claims beside X-Forwarded-For, which SetXForwarded owns.
		"X-Real-Ip",
		"True-Client-Ip",
		"X-Forwarded-Port",
		"X-Forwarded-Prefix",
		"X-Forwarded-Server":
		return true
	}
	// Some upstreams (CGI, PHP, Rack, ...) read "X_Forwarded_For" as
	// X-Forwarded-For; nginx drops such names by default. So do we.
	return strings.IndexByte(k, '_') >= 0
}

// dropSetCookie is the ModifyResponse hook unless Route.PassSetCookie: an
// upstream must not set cookies on bff's origin.
func dropSetCookie(res *http.Response) error {
	delete(res.Header, "Set-Cookie")
	return nil
}

// errOutsideUpstream is returned by the guard for a request it refuses.
var errOutsideUpstream = errors.New("proxy: outgoing request leaves the upstream base URL")

// guard wraps the transport with the last check before the wire: the
// outgoing URL's host is the upstream's and its path stays under the
// upstream base path, clean (defense in depth after joining).
type guard struct {
	h    *Handler
	next http.RoundTripper
}

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if !g.h.underUpstream(req) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errOutsideUpstream
	}
	return g.next.RoundTrip(req)
}
