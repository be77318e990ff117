package bff_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/internal/testbrowser"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
)

// clock is a settable clock for session expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// app is a BFF under test behind an httptest server, with its logs captured.
type app struct {
	t      *testing.T
	bff    *bff.BFF
	server *httptest.Server
	logs   *testbrowser.Logs
	store  session.Store
	clock  *clock
	local  *http.ServeMux
	cfg    bff.Config // as given to bff.New
}

// newApp starts a BFF for a client of the OP at issuer. edit may change the
// configuration before New.
func newApp(t *testing.T, issuer, clientID, clientSecret string, edit ...func(*bff.Config)) *app {
	t.Helper()
	a := &app{t: t, logs: &testbrowser.Logs{}, clock: &clock{now: time.Now()}}
	a.server = httptest.NewUnstartedServer(nil)
	publicURL := "http://" + a.server.Listener.Addr().String()
	a.store = memstore.New(memstore.WithClock(a.clock.Now))
	key := make([]byte, session.KeySize)
	rand.Read(key)
	cfg := bff.Config{
		PublicURL: publicURL,
		OIDC: bff.OIDCConfig{
			Issuer:       issuer,
			ClientID:     clientID,
			ClientSecret: clientSecret,
		},
		Session: bff.SessionConfig{Store: a.store},
		Keys:    [][]byte{key},
		Logger:  slog.New(slog.NewJSONHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&cfg)
	}
	a.store = cfg.Session.Store // an edit may have put another store in
	if cfg.Now == nil {
		// Sessions follow the test clock; token checks stay on real time
		// unless a test sets Now itself.
		cfg.Now = a.clock.Now
	}
	b, err := bff.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.bff, a.cfg = b, cfg
	// Local handlers of the app under /local/ (and /api/me); everything
	// else goes to the BFF directly, with no ServeMux cleaning paths first.
	a.local = http.NewServeMux()
	a.local.Handle("/api/me", b.ProtectAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := bff.UserFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"sub":"`+u.Subject+`"}`)
	})))
	a.server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/me" || strings.HasPrefix(r.URL.Path, "/local/") {
			a.local.ServeHTTP(w, r)
			return
		}
		b.ServeHTTP(w, r)
	})
	a.server.Start()
	t.Cleanup(a.server.Close)
	return a
}

func (a *app) url(path string) string { return a.server.URL + path }

// browser is a testbrowser.Browser for app a.
type browser struct {
	*testbrowser.Browser
	app *app
}

func newBrowser(t *testing.T, a *app) *browser {
	return &browser{Browser: testbrowser.New(t, a.server.URL), app: a}
}

func follow(t *testing.T, resp *http.Response) string {
	t.Helper()
	return testbrowser.Follow(t, resp)
}
