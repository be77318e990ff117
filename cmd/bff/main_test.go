package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/internal/testbrowser"
)

// running is a command started by start.
type running struct {
	addr   net.Addr
	stdout *testbrowser.Logs
	stderr *testbrowser.Logs
	stop   func() error // cancels the command and returns its error
}

// start runs the command in the background and waits until it listens.
func start(t *testing.T, environ []string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &testbrowser.Logs{}, stderr: &testbrowser.Logs{}}
	ready := make(chan net.Addr, 1)
	c := &cli{stdout: r.stdout, stderr: r.stderr, environ: environ, ready: func(a net.Addr) { ready <- a }}
	done := make(chan error, 1)
	go func() { done <- c.run(ctx, args) }()
	select {
	case r.addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("bff %v exited: %v\n%s", args, err, r.stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("bff %v did not start", args)
	}
	var once sync.Once
	var result error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(30 * time.Second):
				t.Error("bff did not stop")
			}
		})
		return result
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func TestKeygen(t *testing.T) {
	var out bytes.Buffer
	c := &cli{stdout: &out, stderr: &out}
	if err := c.run(context.Background(), []string{"keygen"}); err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out.String()))
	if err != nil || len(key) != 32 {
		t.Fatalf("keygen printed %q (%d bytes, %v)", out.String(), len(key), err)
	}
	var again bytes.Buffer
	(&cli{stdout: &again}).run(context.Background(), []string{"keygen"})
	if again.String() == out.String() {
		t.Fatal("two keys are the same")
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out bytes.Buffer
	c := &cli{stdout: &out, stderr: &out}
	if err := c.run(context.Background(), []string{"version"}); err != nil || !strings.HasPrefix(out.String(), "bff ") {
		t.Fatalf("version: %q %v", out.String(), err)
	}
	if err := c.run(context.Background(), []string{"frobnicate"}); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}

func TestServeRejectsABadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bff.yaml")
	os.WriteFile(path, []byte("public_url: https://a.example\noidc:\n  isuer: https://idp.example\n"), 0o600)
	var out bytes.Buffer
	err := (&cli{stdout: &out, stderr: &out}).run(context.Background(), []string{"serve", "--config", path})
	if err == nil || !strings.Contains(err.Error(), "oidc.isuer") {
		t.Fatalf("want an error naming oidc.isuer, got %v", err)
	}
}

// serveFixture is the embedded OP, an API upstream, a built SPA and a
// configuration file for `bff serve` with a bolt store.
type serveFixture struct {
	idp       *devidp.Provider
	publicURL string
	path      string   // of the configuration file
	env       []string // the client secret, as production would pass it
}

func newServeFixture(t *testing.T) *serveFixture {
	t.Helper()
	opServer := httptest.NewUnstartedServer(nil)
	issuer := "http://" + opServer.Listener.Addr().String() + "/idp"
	port := freePort(t)
	publicURL := "http://127.0.0.1:" + port
	idp, err := devidp.New(devidp.Config{
		Issuer: issuer,
		Clients: []devidp.Client{{
			ID: "bff", Secret: "serve-secret",
			RedirectURIs:           []string{publicURL + "/signin-oidc"},
			PostLogoutRedirectURIs: []string{publicURL + "/signout-callback-oidc"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	opServer.Config.Handler = idp
	opServer.Start()
	t.Cleanup(opServer.Close)

	// An API upstream that echoes what it got, and a built SPA.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path=%s auth=%t cookie=%t", r.URL.Path, strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "), r.Header.Get("Cookie") != "")
	}))
	t.Cleanup(api.Close)
	dir := t.TempDir()
	web := filepath.Join(dir, "web")
	os.MkdirAll(filepath.Join(web, "assets"), 0o755)
	os.WriteFile(filepath.Join(web, "index.html"), []byte("<!doctype html><title>the spa</title>"), 0o644)
	os.WriteFile(filepath.Join(web, "assets", "app-4f3a2b1c9d.js"), []byte("console.log(1)"), 0o644)

	path := filepath.Join(dir, "bff.yaml")
	yaml := `
listen: "127.0.0.1:` + port + `"
apis:
  - path: "/api/orders"
    upstream: "` + api.URL + `/v1"
frontend:
  dir: "` + web + `"
public_url: "` + publicURL + `"
oidc:
  issuer: "` + issuer + `"
  client_id: "bff"
session:
  store: "bolt://` + filepath.Join(dir, "data", "sessions.db") + `"
keys: ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]
log:
  level: debug
  format: json
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return &serveFixture{idp: idp, publicURL: publicURL, path: path, env: []string{"BFF_OIDC_CLIENT_SECRET=serve-secret"}}
}

// TestServe runs `bff serve` from a file with a bolt store against the
// embedded OP, logs in, restarts the server, and checks that the session
// survived the restart.
func TestServe(t *testing.T) {
	f := newServeFixture(t)
	publicURL, path, env := f.publicURL, f.path, f.env

	srv := start(t, env, "serve", "--config", path)
	for _, probe := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(publicURL + probe)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", probe, resp.StatusCode)
		}
	}
	br := testbrowser.New(t, publicURL)
	resp := br.Login("/", "alice", "alice")
	if resp.StatusCode != http.StatusFound || br.SessionCookie() == "" {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if resp, body := br.User(); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Alice") {
		t.Fatalf("/bff/user: %d %s", resp.StatusCode, body)
	}
	// The API route, from the file, with the user's token and no cookies.
	if resp, body := br.Get(publicURL+"/api/orders/7", "X-CSRF", "1"); resp.StatusCode != http.StatusOK || body != "path=/v1/7 auth=true cookie=false" {
		t.Fatalf("API route: %d %q", resp.StatusCode, body)
	}
	// The SPA: index.html at / and for client-side routes, long caching for
	// hashed assets, no fallback under /bff/.
	for _, tc := range []struct{ path, want, cache string }{
		{"/", "the spa", "no-cache"},
		{"/orders/7/edit", "the spa", "no-cache"},
		{"/assets/app-4f3a2b1c9d.js", "console.log(1)", "public, max-age=31536000, immutable"},
	} {
		resp, body := br.Get(publicURL + tc.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, tc.want) || resp.Header.Get("Cache-Control") != tc.cache {
			t.Errorf("%s: %d %q Cache-Control %q", tc.path, resp.StatusCode, body, resp.Header.Get("Cache-Control"))
		}
	}
	if resp, body := br.Get(publicURL + "/bff/nope"); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "the spa") {
		t.Errorf("/bff/nope: %d %q", resp.StatusCode, body)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	logs := srv.stderr.String()
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no stop in the logs:\n%s", logs)
	}

	// Same file, new process: the session is still there.
	srv = start(t, env, "serve", "--config", path)
	if resp, body := br.User(); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Alice") {
		t.Fatalf("/bff/user after a restart: %d %s", resp.StatusCode, body)
	}
	srv.stop()
	if strings.Contains(logs+srv.stderr.String(), "serve-secret") {
		t.Error("the client secret appears in the logs")
	}
}

// runCommand runs a command that does not serve and returns its output.
func runCommand(t *testing.T, environ []string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := (&cli{stdout: &out, stderr: &errOut, environ: environ}).run(context.Background(), args)
	return out.String() + errOut.String(), err
}

// TestSessionsCommand: an operator lists alice's sessions in the store and
// ends them from the command line; their refresh tokens are revoked at the
// OP, and bob's session is left alone.
func TestSessionsCommand(t *testing.T) {
	f := newServeFixture(t)
	srv := start(t, f.env, "serve", "--config", f.path)
	alice1, alice2, bob := testbrowser.New(t, f.publicURL), testbrowser.New(t, f.publicURL), testbrowser.New(t, f.publicURL)
	alice1.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	alice1.Login("/", "alice", "alice")
	alice2.Login("/", "alice", "alice")
	bob.Login("/", "bob", "bob")

	// bolt serves one process: the command says so while bff runs.
	aliceSub := devidp.DefaultUsers()[0].Subject
	if out, err := runCommand(t, f.env, "sessions", "list", "--config", f.path, "--sub", aliceSub); err == nil || !strings.Contains(err.Error(), "Redis or PostgreSQL") {
		t.Fatalf("sessions list beside a running bff on bolt: %v\n%s", err, out)
	}
	srv.stop()

	out, err := runCommand(t, f.env, "sessions", "list", "--config", f.path, "--sub", aliceSub)
	if err != nil || !strings.Contains(out, "2 session(s)") || !strings.Contains(out, "Firefox on Linux") {
		t.Fatalf("sessions list: %v\n%s", err, out)
	}
	if _, err := runCommand(t, f.env, "sessions", "revoke", "--config", f.path); err == nil {
		t.Fatal("sessions revoke without --sub or --sid succeeded")
	}
	before := f.idp.Stats().Revocations
	out, err = runCommand(t, f.env, "sessions", "revoke", "--config", f.path, "--sub", aliceSub)
	if err != nil || !strings.Contains(out, "ended 2 session(s)") {
		t.Fatalf("sessions revoke: %v\n%s", err, out)
	}
	if got := f.idp.Stats().Revocations; got != before+2 {
		t.Fatalf("%d revocations at the OP, want %d", got, before+2)
	}

	start(t, f.env, "serve", "--config", f.path)
	for _, br := range []*testbrowser.Browser{alice1, alice2} {
		if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("alice after sessions revoke: %d", resp.StatusCode)
		}
	}
	if resp, _ := bob.User(); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob after alice's sessions were revoked: %d", resp.StatusCode)
	}
}

// TestDev runs `bff dev` on a free loopback port and logs in as alice
// through the embedded OP, then calls the sample API through bff.
func TestDev(t *testing.T) {
	srv := start(t, nil, "dev", "--listen", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(srv.addr.String())
	publicURL := "http://localhost:" + port
	if !strings.Contains(srv.stdout.String(), publicURL) || !strings.Contains(srv.stdout.String(), "alice / alice") {
		t.Fatalf("dev printed:\n%s", srv.stdout.String())
	}
	br := testbrowser.New(t, publicURL)
	br.NotBFF = "/idp/"

	resp, body := br.Get(publicURL + "/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "/app.js") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("sample SPA: %d CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if resp, _ := br.Get(publicURL+"/api/hello", "X-CSRF", "1"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous API call: %d", resp.StatusCode)
	}
	if resp := br.Login("/", "alice", "alice"); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, body = br.Get(publicURL+"/api/hello", "X-CSRF", "1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello, Alice") {
		t.Fatalf("sample API: %d %s", resp.StatusCode, body)
	}
	// 127.0.0.1 is sent to the canonical localhost origin.
	resp, _ = br.Get("http://" + srv.addr.String() + "/")
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != publicURL+"/" {
		t.Fatalf("127.0.0.1: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestDevRefusesANonLoopbackAddress(t *testing.T) {
	var out bytes.Buffer
	err := (&cli{stdout: &out, stderr: &out}).run(context.Background(), []string{"dev", "--listen", "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("want a loopback error, got %v", err)
	}
}
