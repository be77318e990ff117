package bff

import "net/http"

// The anti-forgery header every API call from the SPA must carry, as in
// Duende.BFF. A cross-site page cannot send a custom header without a CORS
// preflight that bff never approves, so its presence proves the request
// comes from script on this origin (OAuth 2.0 for Browser-Based
// Applications, section 6.1.3.2; OWASP's "custom request header" defence).
const (
	AntiforgeryHeader = "X-CSRF"
	AntiforgeryValue  = "1"
)

// antiforgeryOK reports whether r carries the anti-forgery header with the
// expected value, exactly once.
func antiforgeryOK(r *http.Request) bool {
	// The canonical form of the name, looked up directly: Header.Values
	// would canonicalise "X-CSRF" again, with an allocation, per request.
	v := r.Header[antiforgeryKey]
	return len(v) == 1 && v[0] == AntiforgeryValue
}

var antiforgeryKey = http.CanonicalHeaderKey(AntiforgeryHeader)

// requireAntiforgery answers 401, with a log line naming the rule, when r
// lacks the anti-forgery header, and reports whether r may go on. path is
// what the log line names (the route, not the full path, for API routes).
func (b *BFF) requireAntiforgery(w http.ResponseWriter, r *http.Request, path string) bool {
	if antiforgeryOK(r) {
		return true
	}
	b.log.WarnContext(r.Context(), "request refused", "path", path, "rule", "antiforgery")
	problem(w, http.StatusUnauthorized, "the "+AntiforgeryHeader+" header is required")
	return false
}
