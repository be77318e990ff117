package boltstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/boltstore"
	"github.com/gobff/bff/session/storetest"
)

func open(tb testing.TB, path string, clock *storetest.Clock) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(path, boltstore.WithClock(clock.Now))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newStore(tb testing.TB, clock *storetest.Clock) session.Store {
	return open(tb, filepath.Join(tb.TempDir(), "sessions.db"), clock)
}

// TestConformance, in consistency_test.go, runs the conformance suite.

func BenchmarkGet(b *testing.B) { storetest.BenchGet(b, newStore) }

func BenchmarkStore(b *testing.B) { storetest.Bench(b, newStore) }

func record(key string, now time.Time, sub, sid string) *session.Record {
	return &session.Record{
		Key:           session.KeyOf(key),
		Issuer:        "https://op.example",
		Subject:       sub,
		SID:           sid,
		CreatedAt:     now,
		ExpiresAt:     now.Add(8 * time.Hour),
		IdleExpiresAt: now.Add(30 * time.Minute),
		Data:          []byte("sealed " + key),
	}
}

// Sessions, versions and indexes survive closing and reopening the file.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sessions.db")
	clock := storetest.NewClock(time.Now())
	s := open(t, path, clock)
	a := record("a", clock.Now(), "alice", "sid-1")
	b := record("b", clock.Now(), "alice", "")
	for _, r := range []*session.Record{a, b} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	a.Data = []byte("v2")
	if err := s.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, clock)
	defer s.Close()
	for _, want := range []*session.Record{a, b} {
		got, err := s.Get(ctx, want.Key)
		if err != nil {
			t.Fatalf("Get(%v) after reopen: %v", want.Key, err)
		}
		if got.Version != want.Version || string(got.Data) != string(want.Data) ||
			got.Subject != want.Subject || got.SID != want.SID || !got.IdleExpiresAt.Equal(want.IdleExpiresAt) {
			t.Fatalf("after reopen got %+v, want %+v", got, want)
		}
	}
	list, err := s.ListBySub(ctx, "https://op.example", "alice")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListBySub after reopen = %d sessions, %v; want 2", len(list), err)
	}
	if del, err := s.DeleteBySID(ctx, "https://op.example", "sid-1"); err != nil || len(del) != 1 {
		t.Fatalf("DeleteBySID after reopen = %d sessions, %v; want 1", len(del), err)
	}
	clock.Advance(time.Hour)
	if n, err := s.DeleteExpired(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpired after reopen = %d, %v; want 1", n, err)
	}
}

// A second Open of a file in use fails after the timeout instead of hanging.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := boltstore.Open(path, boltstore.WithOpenTimeout(100*time.Millisecond))
	if err == nil {
		s2.Close()
		t.Fatal("second Open of an open file succeeded")
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	t.Logf("second Open: %v", err)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s3, err := boltstore.Open(path, boltstore.WithOpenTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

// Open creates the file's directory (0700) and the file (0600).
func TestOpenCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "bff")
	path := filepath.Join(dir, "sessions.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		path string
		perm os.FileMode
	}{{dir, 0o700}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.perm {
			t.Errorf("%s has mode %v, want %v", c.path, got, c.perm)
		}
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
}

// The sid and sub indexes cannot confuse one (issuer, value) pair with
// another, whatever bytes they hold, NUL included.
func TestIndexKeysUnambiguous(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now())
	s := newStore(t, clock)
	defer s.Close()
	pairs := [][2]string{{"a", "b\x00c"}, {"a\x00b", "c"}, {"a\x00b\x00c", ""}, {"a", "b"}, {"a", "b\x00"}}
	for i, p := range pairs {
		r := record(string(rune('k'+i)), clock.Now(), p[1], p[1])
		r.Issuer = p[0]
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pairs {
		want := 1
		if p[1] == "" {
			want = 0 // no sid
		}
		list, err := s.ListBySub(ctx, p[0], p[1])
		if err != nil || len(list) != 1 {
			t.Fatalf("ListBySub(%q, %q) = %d sessions, %v; want 1", p[0], p[1], len(list), err)
		}
		if del, err := s.DeleteBySID(ctx, p[0], p[1]); err != nil || len(del) != want {
			t.Fatalf("DeleteBySID(%q, %q) = %d sessions, %v; want %d", p[0], p[1], len(del), err, want)
		}
	}
}
