package pgstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/storetest"
)

// Tests run against the machine's shared PostgreSQL server (see
// internal/testpg), each in a schema of its own, except the outage test,
// which starts a private server it can stop.

// mustOpen opens a store with Open, closing it when tb ends unless the test
// closed it.
func mustOpen(tb testing.TB, url string, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newPool returns a pool on url, closed when tb ends.
func newPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(tb.Context(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// conn returns a plain connection on url, for looking at the tables behind
// the store's back.
func conn(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// withParam adds a query parameter, name=value, to url.
func withParam(url, param string) string {
	if strings.Contains(url, "?") {
		return url + "&" + param
	}
	return url + "?" + param
}

// sessionStore is the conformance suite's factory: a store in a fresh
// schema of the shared server. Each subtest having a schema of its own, the
// suite needs no SharedBackend: DeleteExpired counts only the subtest's
// sessions.
func sessionStore(url string) storetest.NewStore {
	return func(tb testing.TB, clock *storetest.Clock) session.Store {
		schema := testpg.Schema(tb, url) // dropped after the suite closed the store
		s, err := Open(tb.Context(), url, WithSchema(schema), WithClock(clock.Now))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
}

// TestConformance runs the conformance suite. Locks and one-time ids expire
// by the server's clock, hence RealTimeTTL; Reopen makes a new pool on the
// same schema, as another bff instance (or a restarted one) would.
func TestConformance(t *testing.T) {
	url := testpg.URL(t)
	reopen := func(tb testing.TB, clock *storetest.Clock, old session.Store) session.Store {
		schema := old.(*Store).Schema()
		if err := old.Close(); err != nil {
			tb.Fatal(err)
		}
		s, err := Open(tb.Context(), url, WithSchema(schema), WithClock(clock.Now), WithMigrate(false))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	storetest.Run(t, sessionStore(url),
		storetest.RealTimeTTL(100*time.Millisecond),
		storetest.Reopen(reopen))
}

// The statements work over the simple query protocol too, which poolers
// such as PgBouncer in transaction mode call for (pgx's
// default_query_exec_mode=simple_protocol). A short run of the suite
// checks that every statement's parameters are typed without a prepare.
func TestSimpleProtocol(t *testing.T) {
	url := testpg.URL(t)
	storetest.Run(t, sessionStore(withParam(url, "default_query_exec_mode=simple_protocol")),
		storetest.RealTimeTTL(100*time.Millisecond),
		storetest.Concurrency(8))
}

func BenchmarkGet(b *testing.B) { storetest.BenchGet(b, sessionStore(testpg.URL(b))) }

func BenchmarkStore(b *testing.B) { storetest.Bench(b, sessionStore(testpg.URL(b))) }

// New leaves the caller's pool open on Close, and a closed store refuses
// everything.
func TestNewKeepsPool(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	pool := newPool(t, url)
	ctx := t.Context()
	s, err := New(ctx, pool, WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec := &session.Record{
		Key: session.KeyOf("k"), Issuer: "https://op.example", Subject: "alice",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Minute),
	} // nil Data is stored as empty
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.Key)
	if err != nil || got.Data == nil || len(got.Data) != 0 {
		t.Fatalf("Get of a session created with nil Data = %+v, %v; want empty non-nil Data", got, err)
	}
	lease, err := s.Lock(ctx, "l", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pool after the store's Close: %v", err)
	}
	calls := map[string]error{
		"Ping":    s.Ping(ctx),
		"Create":  s.Create(ctx, rec),
		"Update":  s.Update(ctx, rec),
		"Touch":   s.Touch(ctx, rec.Key, now),
		"Delete":  s.Delete(ctx, rec.Key),
		"Release": lease.Release(ctx),
	}
	_, calls["Get"] = s.Get(ctx, rec.Key)
	_, calls["DeleteBySID"] = s.DeleteBySID(ctx, "https://op.example", "")
	_, calls["DeleteBySub"] = s.DeleteBySub(ctx, "https://op.example", "alice")
	_, calls["ListBySub"] = s.ListBySub(ctx, "https://op.example", "alice")
	_, calls["Lock"] = s.Lock(ctx, "m", time.Minute)
	_, calls["SeenJTI"] = s.SeenJTI(ctx, "j", time.Minute)
	_, calls["DeleteExpired"] = s.DeleteExpired(ctx)
	for op, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", op, err)
		}
	}
}

// A ttl is kept to the microsecond, rounded up, so that no positive ttl
// vanishes.
func TestMicros(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{{time.Nanosecond, 1}, {time.Microsecond, 1}, {time.Microsecond + 1, 2}, {time.Hour, 3600e6}} {
		if got := micros(c.d); got != c.want {
			t.Errorf("micros(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

// Lock and SeenJTI refuse a ttl that is not positive.
func TestNonPositiveTTL(t *testing.T) {
	url := testpg.URL(t)
	s := mustOpen(t, url, WithSchema(testpg.Schema(t, url)))
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Lock(t.Context(), "l", ttl); err == nil {
			t.Errorf("Lock with ttl %v succeeded", ttl)
		}
		if _, err := s.SeenJTI(t.Context(), "j", ttl); err == nil {
			t.Errorf("SeenJTI with ttl %v succeeded", ttl)
		}
	}
}

// Strings PostgreSQL's text cannot hold are refused, not altered: a
// session, lock or id stored under another name than asked would be a bug
// waiting to happen.
func TestTextRefused(t *testing.T) {
	url := testpg.URL(t)
	s := mustOpen(t, url, WithSchema(testpg.Schema(t, url)))
	ctx := t.Context()
	bad := []string{"a\x00b"}
	var encoding string
	if err := s.pool.QueryRow(ctx, "SHOW server_encoding").Scan(&encoding); err != nil {
		t.Fatal(err)
	}
	if encoding == "UTF8" {
		bad = append(bad, "\xff")
	}
	now := time.Now()
	for _, str := range bad {
		rec := &session.Record{
			Key: session.KeyOf(str), Issuer: "https://op.example", Subject: str,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour),
		}
		if err := s.Create(ctx, rec); err == nil {
			t.Errorf("Create with subject %q succeeded", str)
		}
		if _, err := s.Lock(ctx, str, time.Minute); err == nil {
			t.Errorf("Lock %q succeeded", str)
		}
		if _, err := s.SeenJTI(ctx, str, time.Minute); err == nil {
			t.Errorf("SeenJTI %q succeeded", str)
		}
	}
}

// DeleteExpired goes through a backlog larger than one batch, and leaves
// live sessions alone.
func TestDeleteExpiredBatches(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	s := mustOpen(t, url, WithSchema(schema))
	ctx := t.Context()
	const expired, live = 2*deleteBatch + 500, 10
	_, err := conn(t, url).Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "bff_sessions"}.Sanitize()+`
		SELECT sha256(i::text::bytea), 1, 'https://op.example', 'sub', '', now() - interval '2 hours',
			CASE WHEN i <= $1::int THEN now() - interval '1 hour' ELSE now() + interval '1 hour' END,
			now() + interval '1 hour', ''
		FROM generate_series(1, $1::int + $2::int) i`, expired, live)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(ctx); err != nil || n != expired {
		t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, expired)
	}
	if list, err := s.ListBySub(ctx, "https://op.example", "sub"); err != nil || len(list) != live {
		t.Fatalf("ListBySub after DeleteExpired = %d sessions, %v; want %d", len(list), err, live)
	}
	if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
		t.Fatalf("second DeleteExpired = %d, %v; want 0", n, err)
	}
}
