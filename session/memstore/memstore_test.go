package memstore_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
	"github.com/gobff/bff/session/storetest"
)

func newStore(_ testing.TB, clock *storetest.Clock) session.Store {
	return memstore.New(memstore.WithClock(clock.Now))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

func BenchmarkGet(b *testing.B) { storetest.BenchGet(b, newStore) }

func BenchmarkStore(b *testing.B) { storetest.Bench(b, newStore) }

func testRecord(now time.Time) *session.Record {
	return &session.Record{
		Key:           session.KeyOf("cookie"),
		Issuer:        "https://op.example",
		Subject:       "alice",
		SID:           "sid-1",
		CreatedAt:     now,
		ExpiresAt:     now.Add(time.Hour),
		IdleExpiresAt: now.Add(time.Minute),
		Data:          []byte("v1"),
	}
}

// Get of a live session must not allocate: it is on every request's path.
func TestGetDoesNotAllocate(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	defer s.Close()
	rec := testRecord(time.Now())
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Get(ctx, rec.Key); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Get allocates %v times per call, want 0", allocs)
	}
}

// Records handed out are never modified afterwards: Update and Touch replace
// them.
func TestRecordsAreImmutable(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now())
	s := memstore.New(memstore.WithClock(clock.Now))
	defer s.Close()
	if err := s.Create(ctx, testRecord(clock.Now())); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, session.KeyOf("cookie"))
	if err != nil {
		t.Fatal(err)
	}
	snapshot := *got

	upd := *got
	upd.Data = []byte("v2")
	if err := s.Update(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, got.Key, clock.Now().Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got.Version != snapshot.Version || !bytes.Equal(got.Data, []byte("v1")) ||
		!got.IdleExpiresAt.Equal(snapshot.IdleExpiresAt) {
		t.Fatalf("record handed out before Update/Touch changed to %+v", got)
	}
}

func TestClosed(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(ctx, session.KeyOf("x")); !errors.Is(err, memstore.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if err := s.Create(ctx, testRecord(time.Now())); !errors.Is(err, memstore.ErrClosed) {
		t.Fatalf("Create after Close: %v, want ErrClosed", err)
	}
}
