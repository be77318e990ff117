package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/internal/testbrowser"
	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/internal/testredis"
)

// asBFF is the environment variable that makes this test binary run as the
// bff command (see TestMain), for tests that need bff in processes of its
// own, which they can kill.
// (Not BFF_...: bff refuses unknown BFF_ variables.)
const asBFF = "BFFTEST_RUN_AS_BFF"

func TestMain(m *testing.M) {
	if os.Getenv(asBFF) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is `bff serve` in a process of its own.
type process struct {
	cmd    *exec.Cmd
	stderr *testbrowser.Logs
	url    string
	exited chan struct{}
}

// startProcess runs `bff serve --config path` as a separate process and
// waits until its /healthz answers.
func startProcess(t *testing.T, path, listenURL string, env []string) *process {
	t.Helper()
	p := &process{stderr: &testbrowser.Logs{}, url: listenURL, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "serve", "--config", path)
	// The test's own BFF_ variables (BFF_REQUIRE_SERVICES, ...) stay
	// out: bff refuses BFF_ variables it does not know.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BFF_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(append(p.cmd.Env, asBFF+"=1"), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(listenURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("bff at %s exited:\n%s", listenURL, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bff at %s did not start:\n%s", listenURL, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL: no shutdown, no lock released.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// refreshGate holds the first refresh request at the OP until its client
// goes away, and then drops it without the OP ever seeing it: an instance
// killed after taking the refresh lock and before the OP spent the refresh
// token.
type refreshGate struct {
	next http.Handler
	once sync.Once
	held chan struct{}
}

func (g *refreshGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		first := false
		if form.Get("grant_type") == "refresh_token" {
			g.once.Do(func() { first = true })
		}
		if first {
			close(g.held)
			<-r.Context().Done()
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// TestKilledInstanceMidRefresh: two `bff serve` processes share a store.
// Instance A takes a session's refresh lock and is killed with SIGKILL
// while its request to the OP is in flight. Instance B, asked for the same
// session, waits out the lock's ttl, takes the refresh over with the
// refresh token A never spent, and answers: nothing is lost.
func TestKilledInstanceMidRefresh(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"redis": func(t *testing.T) string {
			addr := testredis.Addr(t)
			return "redis://" + addr + "?prefix=" + url.QueryEscape(testredis.Prefix(t, addr))
		},
		"postgres": func(t *testing.T) string {
			u := testpg.URL(t)
			return u + "&bff_schema=" + testpg.Schema(t, u)
		},
	}
	for _, name := range []string{"redis", "postgres"} {
		t.Run(name, func(t *testing.T) {
			store := stores[name](t)
			opServer := httptest.NewUnstartedServer(nil)
			issuer := "http://" + opServer.Listener.Addr().String() + "/idp"
			portA, portB := freePort(t), freePort(t)
			publicURL := "http://127.0.0.1:" + portA // both instances behind one name
			idp, err := devidp.New(devidp.Config{
				Issuer:              issuer,
				Clients:             []devidp.Client{{ID: "bff", Secret: "kill-secret", RedirectURIs: []string{publicURL + "/signin-oidc"}}},
				AccessTokenLifetime: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			gate := &refreshGate{next: idp, held: make(chan struct{})}
			opServer.Config.Handler = gate
			opServer.Start()
			t.Cleanup(opServer.Close)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			}))
			t.Cleanup(api.Close)

			dir := t.TempDir()
			config := func(port string) string {
				path := filepath.Join(dir, "bff-"+port+".yaml")
				yaml := `
listen: "127.0.0.1:` + port + `"
public_url: "` + publicURL + `"
oidc:
  issuer: "` + issuer + `"
  client_id: "bff"
  refresh_lock_ttl: 3s
session:
  store: "` + store + `"
keys: ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]
apis:
  - path: /api
    upstream: "` + api.URL + `"
log:
  format: json
`
				if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}
			env := []string{"BFF_OIDC_CLIENT_SECRET=kill-secret"}
			a := startProcess(t, config(portA), "http://127.0.0.1:"+portA, env)
			b := startProcess(t, config(portB), "http://127.0.0.1:"+portB, env)

			br := testbrowser.New(t, publicURL)
			br.Login("/", "alice", "alice")
			cookie := br.SessionCookie()
			_, first := br.Get(publicURL+"/api/x", "X-CSRF", "1")
			idp.SetAccessTokenLifetime(time.Hour)
			time.Sleep(2100 * time.Millisecond) // the first token has expired

			get := func(base string) (int, string, error) {
				req, _ := http.NewRequest(http.MethodGet, base+"/api/x", nil)
				req.Header.Set("X-CSRF", "1")
				req.AddCookie(&http.Cookie{Name: "__Host-bff", Value: cookie})
				resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
				if err != nil {
					return 0, "", err
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body), nil
			}
			go get(a.url) // A takes the lock and asks the OP
			select {
			case <-gate.held:
			case <-time.After(20 * time.Second):
				t.Fatalf("A never asked the OP for a refresh:\n%s", a.stderr)
			}
			a.kill()

			code, token, err := get(b.url)
			if err != nil || code != http.StatusOK {
				t.Fatalf("B after A was killed mid-refresh: %d %q %v\n%s", code, token, err, b.stderr)
			}
			if token == first || token == "" {
				t.Fatal("B answered with the expired token")
			}
			if got := idp.Stats().RefreshGrants; got != 1 {
				t.Fatalf("%d refreshes at the OP, want 1", got)
			}
			// The rotated refresh token was saved: the session goes on.
			if code, again, _ := get(b.url); code != http.StatusOK || again != token {
				t.Fatalf("the next call on B: %d, same token %t", code, again == token)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/readyz", nil)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("B /readyz: %v", err)
			}
		})
	}
}

// TestReadyzFollowsTheStore: `bff serve` on a Redis that stops and comes
// back reports itself not ready, with a problem, while Redis is down, and
// ready again once it is back, by itself.
func TestReadyzFollowsTheStore(t *testing.T) {
	redisSrv := testredis.Start(t, testredis.Options{Persist: true})
	f := newServeFixture(t)
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(data), `store: "bolt://`, `store: "redis://`+redisSrv.Addr()+`" # was bolt://`, 1)
	if err := os.WriteFile(f.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := start(t, f.env, "serve", "--config", f.path)
	readyz := func() (int, string) {
		resp, err := http.Get(f.publicURL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz with Redis up: %d %s", code, body)
	}
	redisSrv.Stop()
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Fatalf("/readyz with Redis down: %d %s", code, body)
	}
	if resp, err := http.Get(f.publicURL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %v", err)
	}
	redisSrv.Restart()
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz after Redis came back: %d %s", code, body)
	}
	srv.stop()
}
