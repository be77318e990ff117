package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// IsWebSocketUpgrade reports whether r asks to switch to WebSocket and
// nothing else (RFC 6455 4.1): a "Connection" header with the token
// "upgrade" and exactly one "Upgrade" header whose only value is
// "websocket", case-insensitive. A browser cannot add the anti-forgery
// header to such a request, so bff skips that check for it and this package
// checks Origin instead. An Upgrade that also offers another protocol
// ("h2c, websocket", or a second Upgrade line) is not a WebSocket upgrade:
// ReverseProxy would switch to the first protocol offered, a tunnel past
// every check.
func IsWebSocketUpgrade(r *http.Request) bool {
	up := r.Header["Upgrade"]
	return hasToken(r.Header["Connection"], "upgrade") &&
		len(up) == 1 && strings.EqualFold(strings.Trim(up[0], " \t"), "websocket")
}

// hasToken reports whether the comma-separated header values contain
// token, ignoring case and optional whitespace. It does not allocate.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			if i := strings.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				item, v = v, ""
			}
			if strings.EqualFold(strings.Trim(item, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// originAllowed reports whether the Origin header values are exactly one
// origin that equals an allowed one, ignoring case (DESIGN.md 5: WebSocket
// upgrades check Origin). A missing or "null" Origin never matches.
func (h *Handler) originAllowed(values []string) bool {
	if len(values) != 1 {
		return false
	}
	for _, o := range h.origins {
		if strings.EqualFold(values[0], o) {
			return true
		}
	}
	return false
}

// normalizeOrigin turns a configured origin into the form a browser sends
// (RFC 6454 6.1): lower-case scheme://host, the port only when not the
// scheme's default. A URL with a path (a public URL under a sub-path)
// gives its origin.
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errors.New("want scheme://host[:port] with scheme http or https")
	}
	host := strings.ToLower(u.Host)
	if port := u.Port(); u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return strings.ToLower(u.Scheme) + "://" + host, nil
}
