// Package cookie writes and reads the cookies bff sets: always Secure,
// HttpOnly, Path=/ and without Domain, which is what the __Host- prefix
// demands (RFC 6265bis, section 4.1.3.2) and what bff wants for every cookie
// of its own, prefixed or not.
package cookie

import (
	"net/http"
	"strings"
	"time"
)

// Set adds a Set-Cookie header for name=value that lasts maxAge (rounded
// down to seconds; at least one second).
func Set(w http.ResponseWriter, name, value string, maxAge time.Duration, sameSite http.SameSite) {
	seconds := int(maxAge / time.Second)
	if seconds < 1 {
		seconds = 1
	}
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   seconds,
		Secure:   true,
		HttpOnly: true,
		SameSite: sameSite,
	})
}

// Clear adds a Set-Cookie header that makes the browser drop name at once.
// The attributes match Set's, as browsers require for a __Host- cookie.
func Clear(w http.ResponseWriter, name string, sameSite http.SameSite) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
		Secure:   true,
		HttpOnly: true,
		SameSite: sameSite,
	})
}

// Get returns the value of the first cookie called name in r, without the
// allocations of http.Request.Cookie: it runs on every proxied request.
func Get(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			n, v, ok := strings.Cut(part, "=")
			if !ok || n != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// WithPrefix returns the name and value of every cookie in r whose name
// starts with prefix.
func WithPrefix(r *http.Request, prefix string) []*http.Cookie {
	var found []*http.Cookie
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, prefix) {
			found = append(found, c)
		}
	}
	return found
}
