package bff

import (
	"net/url"
	"strings"
)

// maxReturnURL bounds the length of a returnUrl.
const maxReturnURL = 2048

// ValidReturnURL reports whether s is safe to redirect the browser to after
// login or logout: a path on this origin. It must start with a single "/",
// and its path must not contain "//" (so never "//host", and no
// "/a/..//host" that becomes "//host" once the browser resolves dot
// segments), a "." or ".." segment, a backslash (browsers read "/\host" as
// another host), or a control character (browsers drop tabs and newlines,
// so "/\t/evil" becomes "//evil"); nor have a scheme, user info or a host.
// All of that must still hold once the path is percent-decoded, so that a
// front end that decodes it before redirecting is not fooled either
// (OWASP ASVS 5.0, V3.7; RFC 9700, section 4.11).
func ValidReturnURL(s string) bool {
	if s == "" || len(s) > maxReturnURL {
		return false
	}
	if !safeLocalPath(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	decoded, err := url.PathUnescape(u.EscapedPath())
	if err != nil || !safeLocalPath(decoded) {
		return false
	}
	return true
}

func safeLocalPath(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	path, _, _ := strings.Cut(s, "?")
	path, _, _ = strings.Cut(path, "#")
	if strings.Contains(path, "//") {
		return false
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
