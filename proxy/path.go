package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// remainder matches u against the route prefix and validates what follows
// it. It returns the remainder in escaped form (rem, "" or starting with
// "/") and decoded form (dec), or the status to refuse with: 404 when the
// prefix does not match, 400 when the path or query is unsafe.
//
// DESIGN.md 5: only configured prefixes; the remainder must stay under the
// upstream's base path. It never allocates for a path without escapes.
func (h *Handler) remainder(u *url.URL) (rem, dec string, status int) {
	esc := u.EscapedPath()
	if !strings.HasPrefix(esc, h.prefix) {
		return "", "", http.StatusNotFound
	}
	rem = esc[len(h.prefix):]
	if rem != "" && rem[0] != '/' { // "/api/ordersx"
		return "", "", http.StatusNotFound
	}
	if !checkPath(rem) || !checkQuery(u.RawQuery) {
		return "", "", http.StatusBadRequest
	}
	// The prefix needs no escaping, so the decoded path starts with it too
	// and the decoded remainder follows it (EscapedPath decodes to Path).
	if !strings.HasPrefix(u.Path, h.prefix) {
		return "", "", http.StatusBadRequest
	}
	return rem, u.Path[len(h.prefix):], 0
}

// checkPath reports whether p, "" or a path starting with "/", in escaped
// or decoded form, is safe to append under a base path. Each percent
// escape is decoded on the fly, so the rules hold for both forms. p is
// refused when it contains:
//
//   - a "." or ".." segment, also encoded ("%2e%2e", ".%2E"), also before
//     a ";" path parameter ("..;/", which Tomcat treats as "..");
//   - an empty segment ("//evil.com", "/;x"), except one trailing slash;
//   - "%25": double encoding ("%252e%252e" decodes to "%2e%2e");
//   - "%2f", an encoded slash, which upstreams split or not;
//   - a backslash, raw or "%5c", a path separator to some upstreams;
//   - "@", raw or "%40", which could turn into userinfo if a path is ever
//     joined as a string;
//   - control characters, raw or encoded, including CR, LF and NUL
//     ("%0d%0a", "%00");
//   - a malformed escape.
func checkPath(p string) bool {
	if p == "" {
		return true
	}
	if p[0] != '/' {
		return false
	}
	n := 0          // decoded bytes of the current segment before any ';'
	dots := true    // those bytes are all '.'
	params := false // a ';' was seen in the current segment
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if dots && n <= 2 { // "", "." or "..", before any ';'
				return false
			}
			n, dots, params = 0, true, false
			continue
		case c == '%':
			if i+2 >= len(p) {
				return false
			}
			hi, lo := unhex(p[i+1]), unhex(p[i+2])
			if hi > 15 || lo > 15 {
				return false
			}
			c = hi<<4 | lo
			i += 2
			if c == '%' || c == '/' {
				return false
			}
		}
		switch {
		case c < 0x20 || c == 0x7f || c == '\\' || c == '@':
			return false
		case c == ';':
			params = true
		case !params:
			n++
			if c != '.' {
				dots = false
			}
		}
	}
	if n == 0 && !params {
		return true // one trailing slash
	}
	return !(dots && n <= 2)
}

// checkQuery reports whether the raw query q is free of control
// characters, raw or as "%00", "%0d" or "%0a" (CR/LF injection, NUL
// truncation). Other escapes, "%25" included, are legitimate in a query.
func checkQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c == '%' && i+2 < len(q) && q[i+1] == '0' {
			switch q[i+2] {
			case '0', 'a', 'A', 'd', 'D':
				return false
			}
		}
	}
	return true
}

// unhex returns the value of a hex digit, or 255.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// join appends a checked remainder, decoded (dec) and escaped (rem), to
// the upstream base path. It returns the values for URL.Path and
// URL.RawPath ("" when the path needs no escaping).
func (h *Handler) join(dec, rem string) (path, rawPath string) {
	if rem == "" {
		return h.exactPath, h.exactRaw
	}
	path = h.basePath + dec
	if h.baseEscaped || len(dec) != len(rem) {
		rawPath = h.baseEsc + rem
	}
	return path, rawPath
}

// underUpstream reports whether an outgoing request goes to the upstream
// host and stays under its base path: the defense in depth the guard
// transport applies after Rewrite, whatever built the URL.
func (h *Handler) underUpstream(req *http.Request) bool {
	u := req.URL
	if u.Scheme != h.scheme || u.Host != h.host || req.Host != h.host ||
		u.User != nil || u.Opaque != "" {
		return false
	}
	if u.Path == h.exactPath {
		return true
	}
	return len(u.Path) > len(h.basePath) && u.Path[len(h.basePath)] == '/' &&
		strings.HasPrefix(u.Path, h.basePath) && checkPath(u.Path[len(h.basePath):])
}
