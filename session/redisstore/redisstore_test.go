package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobff/bff/internal/testredis"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/redisstore"
	"github.com/gobff/bff/session/storetest"
)

// TestConformance and TestConformanceCluster, in consistency_test.go, run
// the conformance suite.

// sharedStores returns a NewStore that opens stores on the shared server,
// each under a fresh prefix below one that is deleted when tb ends.
func sharedStores(tb testing.TB) storetest.NewStore {
	addr := testredis.Addr(tb)
	base := testredis.Prefix(tb, addr)
	var n atomic.Int64
	return func(tb testing.TB, clock *storetest.Clock) session.Store {
		prefix := base + strconv.FormatInt(n.Add(1), 10) + ":"
		return open(tb, "redis://"+addr+"?prefix="+url.QueryEscape(prefix), clock)
	}
}

func open(tb testing.TB, rawURL string, clock *storetest.Clock) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.Open(tb.Context(), rawURL, redisstore.WithClock(clock.Now))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func BenchmarkGet(b *testing.B) { storetest.BenchGet(b, sharedStores(b)) }

func BenchmarkStore(b *testing.B) { storetest.Bench(b, sharedStores(b)) }

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

// second returns the error of a call's two results.
func second[T any](_ T, err error) error { return err }

func sameRecord(t *testing.T, got, want *session.Record) {
	t.Helper()
	if got.Key != want.Key || got.Version != want.Version || got.Issuer != want.Issuer ||
		got.Subject != want.Subject || got.SID != want.SID || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.IdleExpiresAt.Equal(want.IdleExpiresAt) ||
		string(got.Data) != string(want.Data) {
		t.Fatalf("got record %+v, want %+v", got, want)
	}
}

// While Redis is down every method fails, promptly and with an error that
// is not ErrNotFound (which would log users out); when it is back, the
// same store works again with every session intact.
func TestOutage(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{Persist: true})
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Second))
	s := open(t, "redis://"+srv.Addr(), clock)
	defer s.Close()

	recs := []*session.Record{
		record("a", clock.Now(), "alice", "sid-1"),
		record("b", clock.Now(), "alice", ""),
		record("c", clock.Now(), "bob", "sid-2"),
	}
	for _, r := range recs {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	recs[0].Data = []byte("updated before the outage")
	if err := s.Update(ctx, recs[0]); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Lock(ctx, "refresh/a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if seen, err := s.SeenJTI(ctx, "jti-1", time.Hour); err != nil || seen {
		t.Fatalf("SeenJTI = %v, %v", seen, err)
	}

	srv.Stop()
	const iss = "https://op.example"
	for _, c := range []struct {
		op string
		fn func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { return second(s.Get(ctx, recs[1].Key)) }},
		{"Create", func(ctx context.Context) error { return s.Create(ctx, record("d", clock.Now(), "carol", "")) }},
		{"Update", func(ctx context.Context) error { u := *recs[1]; return s.Update(ctx, &u) }},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, recs[1].Key, clock.Now().Add(time.Hour)) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, recs[1].Key) }},
		{"DeleteBySID", func(ctx context.Context) error { return second(s.DeleteBySID(ctx, iss, "sid-1")) }},
		{"DeleteBySub", func(ctx context.Context) error { return second(s.DeleteBySub(ctx, iss, "alice")) }},
		{"ListBySub", func(ctx context.Context) error { return second(s.ListBySub(ctx, iss, "alice")) }},
		{"Lock", func(ctx context.Context) error { return second(s.Lock(ctx, "refresh/b", time.Minute)) }},
		{"Release", func(ctx context.Context) error { return lease.Release(ctx) }},
		{"SeenJTI", func(ctx context.Context) error { return second(s.SeenJTI(ctx, "jti-2", time.Hour)) }},
		{"DeleteExpired", func(ctx context.Context) error { return second(s.DeleteExpired(ctx)) }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	} {
		// The deadline only keeps a hanging call from hanging the test;
		// the store must give up by itself long before.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.fn(ctx)
		switch {
		case err == nil:
			t.Errorf("%s with Redis down succeeded", c.op)
		case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrConflict),
			errors.Is(err, session.ErrExists), errors.Is(err, session.ErrLockHeld):
			t.Errorf("%s with Redis down: %v, want an error that is none of the session errors", c.op, err)
		case ctx.Err() != nil:
			t.Errorf("%s with Redis down did not give up by itself: %v", c.op, err)
		}
		cancel()
	}

	srv.Restart()
	// go-redis reconnects by itself, within about a second.
	deadline := time.Now().Add(30 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store still failing after Redis restarted: %v", s.Ping(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range recs {
		got, err := s.Get(ctx, want.Key)
		if err != nil {
			t.Fatalf("Get(%v) after the restart: %v", want.Key, err)
		}
		sameRecord(t, got, want)
	}
	recs[0].Data = []byte("updated after the outage")
	if err := s.Update(ctx, recs[0]); err != nil || recs[0].Version != 3 {
		t.Fatalf("Update after the restart: version %d, %v; want 3", recs[0].Version, err)
	}
	if _, err := s.Lock(ctx, "refresh/a", time.Minute); !errors.Is(err, session.ErrLockHeld) {
		t.Fatalf("Lock of a lock held across the restart: %v, want ErrLockHeld", err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if seen, err := s.SeenJTI(ctx, "jti-1", time.Hour); err != nil || !seen {
		t.Fatalf("SeenJTI of an id recorded before the restart = %v, %v; want true", seen, err)
	}
	if list, err := s.ListBySub(ctx, "https://op.example", "alice"); err != nil || len(list) != 2 {
		t.Fatalf("ListBySub after the restart = %d sessions, %v; want 2", len(list), err)
	}
	if del, err := s.DeleteBySID(ctx, "https://op.example", "sid-2"); err != nil || len(del) != 1 {
		t.Fatalf("DeleteBySID after the restart = %d sessions, %v; want 1", len(del), err)
	}
}

// A server that accepts connections but answers nothing, stuck or behind a
// partition, makes calls fail after the store's own timeouts, or the
// caller's deadline if that is earlier, rather than hang; when the server
// answers again, so does the store.
func TestUnresponsive(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for timeouts")
	}
	srv := testredis.Start(t, testredis.Options{})
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Second))
	s := open(t, "redis://"+srv.Addr(), clock)
	defer s.Close()
	rec := record("a", clock.Now(), "alice", "sid-1")
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	// Idempotent calls only: what clients sent runs when the server
	// resumes.
	for _, c := range []struct {
		op string
		fn func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { return second(s.Get(ctx, rec.Key)) }},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, rec.Key, clock.Now().Add(time.Hour)) }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	} {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.fn(ctx)
		if err == nil || errors.Is(err, session.ErrNotFound) || ctx.Err() != nil {
			t.Errorf("%s of an unresponsive server: %v; want an error, not ErrNotFound, before the test's deadline", c.op, err)
		}
		cancel()
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := s.Get(short, rec.Key)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get with a short deadline: %v, want context.DeadlineExceeded", err)
	}

	srv.Resume()
	deadline := time.Now().Add(30 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store still failing after Redis resumed: %v", s.Ping(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := s.Get(ctx, rec.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || string(got.Data) != string(rec.Data) {
		t.Fatalf("after resuming: %+v", got)
	}
}

// Open fails at once, naming the address, when nothing listens there, and
// never shows the password.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // now nothing listens there
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, "redis://user:s3cret@"+addr+"/0?prefix=x:")
	if err == nil {
		s.Close()
		t.Fatal("Open of an address nobody listens on succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, addr) || strings.Contains(msg, "s3cret") || ctx.Err() != nil {
		t.Fatalf("Open: %v; want the address, no password, and no wait for the test's deadline", err)
	}
	t.Logf("Open: %v", err)
}

// Redis itself drops a session at its end, here its idle end, with no
// sweep: the store's clock decides what reads see, the server's clock when
// the memory is freed.
func TestServerExpiry(t *testing.T) {
	newStore := sharedStores(t)
	clock := storetest.NewClock(time.Now())
	s := newStore(t, clock).(*redisstore.Store)
	defer s.Close()
	ctx := t.Context()
	rec := record("short", clock.Now(), "alice", "sid-1")
	rec.IdleExpiresAt = time.Now().Add(200 * time.Millisecond)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	n := 0
	iter := s.Client().Scan(ctx, 0, s.Prefix()+"s:*", 100).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil || n != 0 {
		t.Fatalf("%d session keys left after their end, %v; want 0", n, err)
	}
	if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpired = %d, %v; want 0, nil", n, err)
	}
}

// The sid and sub indexes cannot confuse one (issuer, value) pair with
// another, whatever bytes they hold, NUL and braces included.
func TestIndexKeysUnambiguous(t *testing.T) {
	newStore := sharedStores(t)
	clock := storetest.NewClock(time.Now())
	s := newStore(t, clock)
	defer s.Close()
	ctx := t.Context()
	pairs := [][2]string{{"a", "b\x00c"}, {"a\x00b", "c"}, {"a\x00b\x00c", ""}, {"a", "b"}, {"a", "b\x00"}, {"{a", "}b"}, {"{a}", "b"}}
	for i, p := range pairs {
		r := record(strconv.Itoa(i), clock.Now(), p[1], p[1])
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

// A store made by New leaves the client open when closed.
func TestNewDoesNotCloseClient(t *testing.T) {
	newStore := sharedStores(t)
	opened := newStore(t, storetest.NewClock(time.Now())).(*redisstore.Store)
	defer opened.Close()
	s := redisstore.New(opened.Client(), redisstore.WithPrefix(opened.Prefix()))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, redisstore.ErrClosed) {
		t.Fatalf("Ping of a closed store: %v, want ErrClosed", err)
	}
	if err := opened.Ping(t.Context()); err != nil {
		t.Fatalf("closing a store from New closed its client: %v", err)
	}
}

// concurrentGets runs a Get of each key at once, enough of them to take
// the autopipeliner's path, each with the deadline given, and returns what
// they got.
func concurrentGets(ctx context.Context, s *redisstore.Store, keys []session.Key, deadline time.Duration) ([]*session.Record, []error) {
	recs, errs := make([]*session.Record, len(keys)), make([]error, len(keys))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, key := range keys {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			recs[i], errs[i] = s.Get(ctx, key)
			if errs[i] != nil && ctx.Err() != nil {
				errs[i] = fmt.Errorf("the caller's deadline passed: %w", errs[i])
			}
		})
	}
	close(start)
	wg.Wait()
	return recs, errs
}

// TestPipelinedGets: Gets under load (more in flight than the store sends
// one by one) go through go-redis's autopipeliner; each still gets its own
// session, and while Redis is down or stuck, each fails by itself with an
// error that is not ErrNotFound.
func TestPipelinedGets(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{Persist: true})
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Second))
	s := open(t, "redis://"+srv.Addr(), clock)
	defer s.Close()
	var recs []*session.Record
	for i := range 64 {
		r := record(fmt.Sprint("k", i), clock.Now(), fmt.Sprint("user", i), "")
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	var wg sync.WaitGroup
	for _, want := range recs {
		for range 8 {
			wg.Go(func() {
				got, err := s.Get(ctx, want.Key)
				if err != nil {
					t.Errorf("Get under load: %v", err)
					return
				}
				if got.Key != want.Key || got.Subject != want.Subject || string(got.Data) != string(want.Data) {
					t.Errorf("Get of %v returned the session of %s", want.Key, got.Subject)
				}
			})
		}
	}
	wg.Wait()

	keys := make([]session.Key, len(recs))
	for i, r := range recs {
		keys[i] = r.Key
	}
	wantAll := func(when string) {
		t.Helper()
		got, errs := concurrentGets(ctx, s, keys, 30*time.Second)
		for i, err := range errs {
			if err != nil || got[i].Key != recs[i].Key || got[i].Subject != recs[i].Subject {
				t.Fatalf("a Get %s: %v (a reply for the wrong Get?)", when, err)
			}
		}
	}
	for _, fault := range []struct {
		name        string
		down, again func()
	}{
		{"stopped", srv.Stop, srv.Restart},
		{"stuck", srv.Pause, srv.Resume},
	} {
		fault.down()
		// Without a deadline of their own, each Get gives up by itself.
		_, errs := concurrentGets(ctx, s, keys, 30*time.Second)
		for _, err := range errs {
			if err == nil || errors.Is(err, session.ErrNotFound) || strings.Contains(err.Error(), "the caller's deadline passed") {
				t.Fatalf("a Get with Redis %s: %v; want an error of its own, not ErrNotFound", fault.name, err)
			}
		}
		if fault.name == "stuck" {
			// With a deadline, each Get keeps it, pipelined or not: the
			// error is the deadline's, not a later i/o timeout or an
			// answer after Redis resumed.
			_, errs := concurrentGets(ctx, s, keys, 200*time.Millisecond)
			for _, err := range errs {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("a Get with a 200ms deadline and Redis stuck: %v, want context.DeadlineExceeded", err)
				}
			}
		}
		fault.again()
		deadline := time.Now().Add(30 * time.Second)
		for s.Ping(ctx) != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		wantAll("after Redis was " + fault.name)
	}
}
