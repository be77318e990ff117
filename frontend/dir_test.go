package frontend

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

const (
	indexHTML = "<!doctype html><title>app</title><div id=app></div>"
	secret    = "TOP-SECRET-OUTSIDE-THE-SITE"
)

// site writes a built SPA into a temporary directory, with a secret file
// next to it, and returns the SPA's directory.
func site(t *testing.T) string {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "dist")
	files := map[string]string{
		"index.html":               indexHTML,
		"app.css":                  "body { margin: 0 }",
		"robots.txt":               "User-agent: *",
		"assets/index-BxY12abc.js": "console.log('app')",
		"main.3f2a9c1b.css":        ".main {}",
		"chunk-5f3e2a1b9c.js":      "export const x = 1",
		"docs/index.html":          "<!doctype html><title>docs</title>",
		".env":                     "SECRET=dotenv",
		".git/config":              "[core]",
		"empty/.keep":              "",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(parent, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	// Symbolic links out of the directory must not be followed.
	if err := os.Symlink(filepath.Join(parent, "secret.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(parent, filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func dirHandler(t *testing.T) http.Handler {
	t.Helper()
	h, err := Dir(site(t), Options{
		NoFallback: []string{"/bff/", "/api/orders"},
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServeFile(t *testing.T) {
	h := dirHandler(t)
	for _, tc := range []struct {
		path, contentType, body string
	}{
		{"/app.css", "text/css; charset=utf-8", "body { margin: 0 }"},
		{"/assets/index-BxY12abc.js", "text/javascript; charset=utf-8", "console.log('app')"},
		{"/robots.txt", "text/plain; charset=utf-8", "User-agent: *"},
		{"/index.html", "text/html; charset=utf-8", indexHTML},
	} {
		w := get(h, "GET", tc.path)
		if w.Code != http.StatusOK || w.Body.String() != tc.body {
			t.Errorf("GET %s: %d %q, want 200 %q", tc.path, w.Code, w.Body, tc.body)
		}
		if got := w.Header().Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if w.Header().Get("Last-Modified") == "" {
			t.Errorf("GET %s: no Last-Modified", tc.path)
		}
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", tc.path, got)
		}
	}

	lm := get(h, "GET", "/app.css").Header().Get("Last-Modified")
	if w := get(h, "GET", "/app.css", "If-Modified-Since", lm); w.Code != http.StatusNotModified {
		t.Errorf("conditional GET: %d, want 304", w.Code)
	}
	if w := get(h, "GET", "/app.css", "Range", "bytes=0-3"); w.Code != http.StatusPartialContent || w.Body.String() != "body" {
		t.Errorf("Range: %d %q, want 206 \"body\"", w.Code, w.Body)
	}
}

func TestFallback(t *testing.T) {
	h := dirHandler(t)
	for _, tc := range []struct {
		path   string
		status int
		body   string // "" for any
	}{
		{"/", 200, indexHTML},
		{"/index.html", 200, indexHTML}, // served, not redirected
		{"/deep/client/route", 200, indexHTML},
		{"/deep/client/route/", 200, indexHTML},
		{"/settings?tab=profile", 200, indexHTML},
		{"/docs/", 200, "<!doctype html><title>docs</title>"}, // a directory's own index.html
		{"/docs", 200, "<!doctype html><title>docs</title>"},
		{"/empty", 200, indexHTML}, // a directory without index.html: no listing
		{"/empty/", 200, indexHTML},
		{"/assets/", 200, indexHTML},
		{"/api/ordersx", 200, indexHTML},
		{"/api", 200, indexHTML},

		{"/missing.js", 404, ""},
		{"/assets/index-00000000.js", 404, ""},
		{"/deep/route/logo.png", 404, ""},
		{"/bff/anything", 404, ""},
		{"/bff", 404, ""},
		{"/bff/", 404, ""},
		{"/api/orders", 404, ""},
		{"/api/orders/x", 404, ""},
		{"/api//orders/x", 404, ""}, // matched on the cleaned path
		{"/./bff/x", 404, ""},
		{"/x/../api/orders/", 400, ""}, // ".." is never valid
	} {
		w := get(h, "GET", tc.path)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, w.Code, w.Body, tc.status, tc.body)
			continue
		}
		if tc.status != 200 {
			if strings.Contains(w.Body.String(), indexHTML) {
				t.Errorf("GET %s: got index.html", tc.path)
			}
			continue
		}
		if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", tc.path, got)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, got)
		}
	}
}

func TestCaching(t *testing.T) {
	h := dirHandler(t)
	for path, want := range map[string]string{
		"/assets/index-BxY12abc.js": "public, max-age=31536000, immutable",
		"/main.3f2a9c1b.css":        "public, max-age=31536000, immutable",
		"/chunk-5f3e2a1b9c.js":      "public, max-age=31536000, immutable",
		"/app.css":                  "no-cache",
		"/robots.txt":               "no-cache",
		"/index.html":               "no-cache",
		"/":                         "no-cache",
		"/some/route":               "no-cache",
	} {
		w := get(h, "GET", path)
		if w.Code != 200 {
			t.Errorf("GET %s: %d", path, w.Code)
		}
		if got := w.Header().Get("Cache-Control"); got != want {
			t.Errorf("GET %s: Cache-Control %q, want %q", path, got, want)
		}
	}
}

func TestHiddenFiles(t *testing.T) {
	h := dirHandler(t)
	for _, path := range []string{
		"/.env", "/%2eenv", "/.git/config", "/.git", "/.git/", "/.git/HEAD", "/.git/some/route",
		"/empty/.keep", "/assets/./.env", "//.env",
	} {
		w := get(h, "GET", path)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
		if b := w.Body.String(); strings.Contains(b, "SECRET") || strings.Contains(b, "[core]") || strings.Contains(b, indexHTML) {
			t.Errorf("GET %s: served %q", path, b)
		}
	}
}

var traversals = []string{
	"/../secret.txt",
	"/../../secret.txt",
	"/assets/../../secret.txt",
	"/%2e%2e/secret.txt",
	"/%2E%2E/secret.txt",
	"/..%2fsecret.txt",
	"/%2e%2e%2fsecret.txt",
	"/assets%2f..%2f..%2fsecret.txt",
	"/..%5csecret.txt",
	"/assets\\..\\..\\secret.txt",
	"/..",
	"/%2e%2e",
	"/%00",
	"/link.txt",      // a symbolic link to the secret
	"/up/secret.txt", // a symbolic link to the parent directory
	"/up/dist/app.css",
}

func TestTraversal(t *testing.T) {
	h := dirHandler(t)
	for _, target := range traversals {
		w := get(h, "GET", target)
		if w.Code != http.StatusNotFound && w.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 404 or 400", target, w.Code)
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("GET %s: served the secret", target)
		}
	}
}

// TestTraversalRaw sends the request lines over TCP, so that no client
// cleans the path first.
func TestTraversalRaw(t *testing.T) {
	srv := httptest.NewServer(dirHandler(t))
	defer srv.Close()
	for _, target := range append(traversals, "..%2fsecret.txt", "/./../secret.txt", "//../secret.txt") {
		if strings.ContainsAny(target, "\\") {
			continue // not a valid request line
		}
		status, body := rawGet(t, srv.Listener.Addr().String(), target)
		if status != http.StatusNotFound && status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 404 or 400", target, status)
		}
		if strings.Contains(body, secret) {
			t.Errorf("GET %s: served the secret", target)
		}
	}
}

func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMethods(t *testing.T) {
	h := dirHandler(t)
	for _, path := range []string{"/app.css", "/deep/route", "/"} {
		w := get(h, "HEAD", path)
		if w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d with %d bytes, want 200 without a body", path, w.Code, w.Body.Len())
		}
		if w.Header().Get("Content-Length") == "" || w.Header().Get("Content-Type") == "" {
			t.Errorf("HEAD %s: headers %v", path, w.Header())
		}
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		w := get(h, method, "/app.css")
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", method, w.Code)
		}
		if got := w.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow %q", method, got)
		}
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", method, got)
		}
	}
}

func TestFS(t *testing.T) {
	fsys := fstest.MapFS{
		"index.html":               {Data: []byte(indexHTML)},
		"assets/index-BxY12abc.js": {Data: []byte("console.log('app')")},
		".env":                     {Data: []byte("SECRET=x")},
	}
	h, err := FS(fsys, Options{NoFallback: []string{"/bff"}})
	if err != nil {
		t.Fatal(err)
	}
	w := get(h, "GET", "/assets/index-BxY12abc.js")
	if w.Code != 200 || w.Body.String() != "console.log('app')" || w.Header().Get("Cache-Control") != cacheImmutable {
		t.Fatalf("asset: %d %q %v", w.Code, w.Body, w.Header())
	}
	// No modification time: an ETag instead of Last-Modified.
	w = get(h, "GET", "/client/route")
	tag := w.Header().Get("Etag")
	if w.Code != 200 || w.Body.String() != indexHTML || tag == "" || w.Header().Get("Last-Modified") != "" {
		t.Fatalf("fallback: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w := get(h, "GET", "/", "If-None-Match", tag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", w.Code)
	}
	for _, path := range []string{"/.env", "/bff/x", "/missing.css"} {
		if w := get(h, "GET", path); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
}

func TestMissingIndex(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "app.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(empty, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dir without index.html: %v, want fs.ErrNotExist", err)
	}
	if _, err := Dir(filepath.Join(empty, "nope"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dir of a missing directory: %v, want fs.ErrNotExist", err)
	}
	if _, err := FS(fstest.MapFS{"app.js": {}}, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FS without index.html: %v, want fs.ErrNotExist", err)
	}
	if _, err := FS(fstest.MapFS{"index.html/x": {}}, Options{}); err == nil {
		t.Error("FS with a directory index.html: no error")
	}
	if _, err := Dir(site(t), Options{NoFallback: []string{"bff/"}}); err == nil {
		t.Error("relative NoFallback prefix: no error")
	}
}
