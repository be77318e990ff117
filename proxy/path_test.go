package proxy

import (
	"net/http"
	"net/url"
	"testing"
)

func TestCheckPath(t *testing.T) {
	good := []string{"", "/", "/a", "/a/", "/a/b", "/a%20b", "/caf%C3%A9", "/...", "/a.b", "/.well-known",
		"/a..", "/..a", "/a;v=1", "/a;v=1/b", "/%3F", "/~user", "/a:b", "/a+b"}
	bad := []string{"a", "//", "/a//b", "/.", "/..", "/./", "/../", "/a/..", "/%2e", "/%2E%2e", "/.%2E/",
		"/..;x", "/.;x/", "/;x", "/;x/a", "/a%2fb", "/a%2F", "/%25", "/%252e", "/a\\b", "/%5c", "/%5C",
		"/@x", "/%40x", "/a%0d", "/a%0A", "/a%00", "/a\x00", "/a\n", "/a%7F", "/a%", "/a%2", "/a%g0", "/a%0g"}
	for _, p := range good {
		if !checkPath(p) {
			t.Errorf("checkPath(%q) = false, want true", p)
		}
	}
	for _, p := range bad {
		if checkPath(p) {
			t.Errorf("checkPath(%q) = true, want false", p)
		}
	}
}

func TestCheckPathNoAllocs(t *testing.T) {
	h := &Handler{prefix: "/api/orders"}
	u := &url.URL{Path: "/api/orders/123/items/45", RawQuery: "expand=lines&page=2"}
	if n := testing.AllocsPerRun(100, func() {
		if _, _, s := h.remainder(u); s != 0 {
			t.Fatal(s)
		}
	}); n != 0 {
		t.Errorf("remainder allocates %v times for a clean path", n)
	}
}

func TestCheckQuery(t *testing.T) {
	for q, want := range map[string]bool{
		"": true, "a=1&b=2": true, "q=50%25": true, "q=%20x": true, "q=%0": true, "q=%01": true,
		"q=%0d": false, "q=%0A": false, "q=%00": false, "q=a\rb": false, "q=\x7f": false,
	} {
		if got := checkQuery(q); got != want {
			t.Errorf("checkQuery(%q) = %v", q, got)
		}
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	for _, c := range []struct {
		conn, upgrade []string
		want          bool
	}{
		{[]string{"Upgrade"}, []string{"websocket"}, true},
		{[]string{"keep-alive, UPGRADE"}, []string{"WebSocket"}, true},
		// Another protocol offered beside websocket: ReverseProxy would
		// switch to the first one, past the Origin check.
		{[]string{"keep-alive", "upgrade"}, []string{"h2c", "websocket"}, false},
		{[]string{"upgrade"}, []string{"h2c, websocket"}, false},
		{[]string{"keep-alive,\tupgrade "}, []string{"websocket"}, true},
		{nil, []string{"websocket"}, false},
		{[]string{"Upgrade"}, nil, false},
		{[]string{"Upgrade"}, []string{"h2c"}, false},
		{[]string{"Upgraded"}, []string{"websocket"}, false},
		{[]string{"Upgrade"}, []string{"websockets"}, false},
	} {
		r := &http.Request{Header: http.Header{}}
		if c.conn != nil {
			r.Header["Connection"] = c.conn
		}
		if c.upgrade != nil {
			r.Header["Upgrade"] = c.upgrade
		}
		if got := IsWebSocketUpgrade(r); got != c.want {
			t.Errorf("Connection %q Upgrade %q: %v", c.conn, c.upgrade, got)
		}
	}
}

func TestNewValidates(t *testing.T) {
	up := &url.URL{Scheme: "https", Host: "orders.internal", Path: "/v1"}
	auth := func(http.ResponseWriter, *http.Request) (string, bool) { return "", true }
	ok := Route{Prefix: "/api/orders", Upstream: up, Authorize: auth}
	if _, err := New(ok, Options{}); err != nil {
		t.Fatalf("valid route: %v", err)
	}
	for name, edit := range map[string]func(*Route){
		"root prefix":       func(r *Route) { r.Prefix = "/" },
		"empty prefix":      func(r *Route) { r.Prefix = "" },
		"relative prefix":   func(r *Route) { r.Prefix = "api" },
		"trailing slash":    func(r *Route) { r.Prefix = "/api/" },
		"dot prefix":        func(r *Route) { r.Prefix = "/api/../x" },
		"escaped prefix":    func(r *Route) { r.Prefix = "/api%20x" },
		"space prefix":      func(r *Route) { r.Prefix = "/api x" },
		"no upstream":       func(r *Route) { r.Upstream = nil },
		"ftp upstream":      func(r *Route) { r.Upstream = &url.URL{Scheme: "ftp", Host: "x"} },
		"no host":           func(r *Route) { r.Upstream = &url.URL{Scheme: "https", Path: "/v1"} },
		"user info":         func(r *Route) { r.Upstream = &url.URL{Scheme: "https", Host: "x", User: url.User("u")} },
		"query":             func(r *Route) { r.Upstream = &url.URL{Scheme: "https", Host: "x", RawQuery: "a=1"} },
		"dirty upstream":    func(r *Route) { r.Upstream = &url.URL{Scheme: "https", Host: "x", Path: "/v1/../admin"} },
		"bad method":        func(r *Route) { r.Methods = []string{"GE T"} },
		"trace":             func(r *Route) { r.Methods = []string{"trace"} },
		"connect":           func(r *Route) { r.Methods = []string{"CONNECT"} },
		"origin with query": func(r *Route) { r.AllowedOrigins = []string{"https://app.example.com/?x"} },
		"origin not http":   func(r *Route) { r.AllowedOrigins = []string{"null"} },
		"no authorize":      func(r *Route) { r.Authorize = nil },
	} {
		r := ok
		edit(&r)
		if _, err := New(r, Options{}); err == nil {
			t.Errorf("%s: New accepted %+v", name, r)
		}
	}
}

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":      "https://app.example.com",
		"https://app.example.com:443":  "https://app.example.com",
		"https://app.example.com:8443": "https://app.example.com:8443",
		"http://localhost:80/":         "http://localhost",
		"HTTP://localhost:8080":        "http://localhost:8080",
		"https://example.com/app":      "https://example.com",
	} {
		got, err := normalizeOrigin(in)
		if err != nil || got != want {
			t.Errorf("normalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
