package bff_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/boltstore"
)

// sweepWatch records what each DeleteExpired of the store removed.
type sweepWatch struct {
	session.Store
	mu      sync.Mutex
	removed []int
	swept   chan struct{}
}

func (s *sweepWatch) DeleteExpired(ctx context.Context) (int, error) {
	n, err := s.Store.DeleteExpired(ctx)
	s.mu.Lock()
	s.removed = append(s.removed, n)
	s.mu.Unlock()
	select {
	case s.swept <- struct{}{}:
	default:
	}
	return n, err
}

// TestMaintenanceSweepsTheBoltStore: bbolt does not expire anything by
// itself, so RunMaintenance sweeps it at the configured interval: the
// expired session goes (with the used login states and logout-token ids,
// which DeleteExpired removes as the store conformance suite checks), and
// the live session stays.
func TestMaintenanceSweepsTheBoltStore(t *testing.T) {
	var watch *sweepWatch
	var clk *clock
	_, a := newTestOPApp(t, func(c *bff.Config) {
		clk = &clock{now: time.Now().Add(-2 * time.Hour)}
		store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		watch = &sweepWatch{Store: store, swept: make(chan struct{}, 1)}
		c.Session.Store = watch
		c.Session.CleanupInterval = 20 * time.Millisecond
		c.Now = clk.Now
	})
	// A session from two hours ago, idle for longer than the timeout.
	old := &session.Session{Issuer: "https://op.example", Subject: "carol"}
	if err := a.bff.Sessions().Create(context.Background(), httptest.NewRecorder(), old); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	fresh := newBrowser(t, a)
	fresh.Login("/", "", "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.bff.RunMaintenance(ctx, 0)
	for range 2 {
		select {
		case <-watch.swept:
		case <-time.After(10 * time.Second):
			t.Fatal("no sweep within 10s at a 20ms interval")
		}
	}
	watch.mu.Lock()
	first := watch.removed[0]
	watch.mu.Unlock()
	if first != 1 {
		t.Fatalf("the first sweep removed %d sessions, want 1 (the expired one)", first)
	}
	if !strings.Contains(a.logs.String(), `"msg":"removed expired sessions"`) {
		t.Fatal("no log line for the sweep")
	}
	if resp, _ := fresh.User(); resp.StatusCode != 200 {
		t.Fatalf("the live session: %d", resp.StatusCode)
	}
}
