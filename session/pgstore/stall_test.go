package pgstore

import (
	"context"
	"errors"

	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/session"
)

// freezer is a TCP proxy that can stop passing bytes without closing
// anything: a server that hangs, or a network that drops packets.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, thaw: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); f.unfreeze() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *freezer) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				f.wait()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
}

func (f *freezer) wait() {
	f.mu.Lock()
	frozen, thaw := f.frozen, f.thaw
	f.mu.Unlock()
	if frozen {
		<-thaw
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		f.frozen, f.thaw = true, make(chan struct{})
	}
}

func (f *freezer) unfreeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thaw)
	}
}

// TestStalledServer: a server that stops answering without closing the
// connection makes every operation fail after the store's own timeout,
// with context.DeadlineExceeded, although the caller gave no deadline; and
// once it answers again, so does the store.
func TestStalledServer(t *testing.T) {
	u := testpg.URL(t)
	schema := testpg.Schema(t, u)
	host := strings.TrimPrefix(u, "postgres://postgres@")
	addr, _, _ := strings.Cut(host, "/")
	f := newFreezer(t, addr)
	proxied := strings.Replace(u, addr, f.ln.Addr().String(), 1)
	s := mustOpen(t, proxied, WithSchema(schema), WithOpTimeout(300*time.Millisecond))
	ctx := context.Background() // no deadline: the store must bound itself
	rec := &session.Record{Key: session.KeyOf("stall"), Issuer: "https://op.example", Subject: "alice",
		CreatedAt: time.Now().Truncate(time.Second), ExpiresAt: time.Now().Add(time.Hour), IdleExpiresAt: time.Now().Add(time.Hour), Data: []byte("x")}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Lock(ctx, "stall-lock", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	f.freeze()
	for _, c := range []struct {
		op string
		fn func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, rec.Key); return err }},
		{"Touch", func() error { return s.Touch(ctx, rec.Key, time.Now().Add(time.Hour)) }},
		{"Release", func() error { return lease.Release(ctx) }},
		{"SeenJTI", func() error { _, err := s.SeenJTI(ctx, "stall-jti", time.Minute); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	} {
		done := make(chan error, 1)
		go func() { done <- c.fn() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s on a stalled server: %v, want context.DeadlineExceeded", c.op, err)
			}
		case <-time.After(outageDeadline):
			t.Fatalf("%s on a stalled server did not return", c.op)
		}
	}
	f.unfreeze()
	deadline := time.Now().Add(outageDeadline)
	for s.Ping(ctx) != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got, err := s.Get(ctx, rec.Key); err != nil || got.Subject != "alice" {
		t.Fatalf("Get after the stall: %v", err)
	}
}
