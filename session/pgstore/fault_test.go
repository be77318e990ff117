package pgstore

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/storetest"
)

// outageDeadline bounds each call made while the server is down. The calls
// must fail by themselves, long before it; it only keeps a hang from
// hanging the test. It is not a timing threshold: the test asserts what the
// error is, not how fast it came.
const outageDeadline = 30 * time.Second

// While the server is down every method fails, with an error of its own
// rather than ErrNotFound (which would log users out) or the caller's
// deadline; once it is back, the same Store serves every session as it was,
// without being reopened. A crash (no shutdown checkpoint) loses nothing
// committed either.
func TestServerOutage(t *testing.T) {
	srv := testpg.Start(t)
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Second))
	s := mustOpen(t, srv.URL(), WithClock(clock.Now))

	const iss = "https://op.example"
	var recs []*session.Record
	for i := range 5 {
		now := clock.Now()
		rec := &session.Record{
			Key:           session.KeyOf("outage-" + strconv.Itoa(i)),
			Issuer:        iss,
			Subject:       "alice",
			SID:           "sid-" + strconv.Itoa(i),
			CreatedAt:     now,
			ExpiresAt:     now.Add(8 * time.Hour),
			IdleExpiresAt: now.Add(30 * time.Minute),
			Data:          []byte("sealed " + strconv.Itoa(i)),
		}
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	recs[0].Data = []byte("updated")
	if err := s.Update(ctx, recs[0]); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Lock(ctx, "outage-lock", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if seen, err := s.SeenJTI(ctx, "outage-jti", time.Hour); err != nil || seen {
		t.Fatalf("SeenJTI = %v, %v; want false", seen, err)
	}

	for _, outage := range []struct {
		name string
		down func()
	}{{"Stop", srv.Stop}, {"Crash", srv.Crash}} {
		// Not subtests: the server's methods fail the test that started
		// it, and must be called from its goroutine.
		t.Logf("outage by %s", outage.name)
		outage.down()
		wantOutageErrors(t, s, recs[1], lease)
		if _, err := Open(ctx, srv.URL()); err == nil {
			t.Error("Open of a stopped server succeeded")
		}

		srv.Restart()
		// The first call after the restart already works: the pool
		// drops dead connections before handing them out.
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping after restart: %v", err)
		}
		for _, want := range recs {
			got, err := s.Get(ctx, want.Key)
			if err != nil {
				t.Fatalf("Get(%v) after restart: %v", want.Key, err)
			}
			if got.Version != want.Version || string(got.Data) != string(want.Data) ||
				got.SID != want.SID || !got.IdleExpiresAt.Equal(want.IdleExpiresAt) {
				t.Fatalf("Get(%v) after restart = %+v, want %+v", want.Key, got, want)
			}
		}
		if list, err := s.ListBySub(ctx, iss, "alice"); err != nil || len(list) != len(recs) {
			t.Fatalf("ListBySub after restart = %d sessions, %v; want %d", len(list), err, len(recs))
		}
		if _, err := s.Lock(ctx, "outage-lock", time.Hour); !errors.Is(err, session.ErrLockHeld) {
			t.Fatalf("Lock of a lock held across the outage: %v, want ErrLockHeld", err)
		}
		if seen, err := s.SeenJTI(ctx, "outage-jti", time.Hour); err != nil || !seen {
			t.Fatalf("SeenJTI of an id recorded before the outage = %v, %v; want true", seen, err)
		}
		recs[0].Data = []byte("updated after " + outage.name)
		if err := s.Update(ctx, recs[0]); err != nil {
			t.Fatalf("Update after restart: %v", err)
		}
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// wantOutageErrors calls every method of s and checks that each fails by
// itself, with neither ErrNotFound nor the caller's deadline.
func wantOutageErrors(t *testing.T, s *Store, rec *session.Record, lease session.Lease) {
	t.Helper()
	upd := *rec
	calls := []struct {
		op   string
		call func(ctx context.Context) error
	}{
		{"Ping", s.Ping},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, rec.Key); return err }},
		{"Create", func(ctx context.Context) error {
			r := *rec
			r.Key = session.KeyOf("new during the outage")
			return s.Create(ctx, &r)
		}},
		{"Update", func(ctx context.Context) error { return s.Update(ctx, &upd) }},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, rec.Key, rec.IdleExpiresAt) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, session.KeyOf("missing")) }},
		{"DeleteBySID", func(ctx context.Context) error { _, err := s.DeleteBySID(ctx, rec.Issuer, "no-such-sid"); return err }},
		{"DeleteBySub", func(ctx context.Context) error { _, err := s.DeleteBySub(ctx, rec.Issuer, "no-such-sub"); return err }},
		{"ListBySub", func(ctx context.Context) error { _, err := s.ListBySub(ctx, rec.Issuer, rec.Subject); return err }},
		{"Lock", func(ctx context.Context) error { _, err := s.Lock(ctx, "outage-lock-2", time.Minute); return err }},
		{"Release", lease.Release},
		{"SeenJTI", func(ctx context.Context) error { _, err := s.SeenJTI(ctx, "outage-jti-2", time.Minute); return err }},
		{"DeleteExpired", func(ctx context.Context) error { _, err := s.DeleteExpired(ctx); return err }},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), outageDeadline)
		err := c.call(ctx)
		cancel()
		switch {
		case err == nil:
			t.Errorf("%s while the server is down succeeded", c.op)
		case errors.Is(err, session.ErrNotFound):
			t.Errorf("%s while the server is down: %v, which says ErrNotFound", c.op, err)
		case errors.Is(err, context.DeadlineExceeded):
			t.Errorf("%s while the server is down did not fail by itself: %v", c.op, err)
		default:
			t.Logf("%s: %v", c.op, err)
		}
	}
	// The Update did not pretend to apply.
	if upd.Version != rec.Version {
		t.Errorf("failed Update set Version %d, want %d", upd.Version, rec.Version)
	}
}
