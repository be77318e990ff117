// Package storetest is the conformance suite for [session.Store]
// implementations. Every store (memory, bolt, Redis, PostgreSQL, ...) must
// pass [Run]:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(tb testing.TB, clock *storetest.Clock) session.Store {
//			return memstore.New(memstore.WithClock(clock.Now))
//		})
//	}
//
// Each subtest gets its own store from the factory and its own fake
// [Clock], and additionally uses keys, issuers, lock names and one-time ids
// unique to it, so stores backed by one shared server can run it too (see
// [SharedBackend]). Time-dependent checks advance the fake clock instead of
// sleeping; a store whose server enforces lock and one-time-id ttls with its
// own clock runs the suite with [RealTimeTTL]. Persistent stores should pass
// [Reopen] so that the suite checks that everything survives a restart.
//
// All session times the suite uses are whole seconds, so stores that keep
// timestamps with microsecond (PostgreSQL) or millisecond precision pass; the
// suite compares times with [time.Time.Equal], so a store may return them in
// any location.
//
// [BenchGet] and [Bench] measure a store; see their documentation.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff/session"
)

// Session lifetimes the suite uses. Checks that a session is still live are
// made at least a minute before its end, so a store whose clock runs a little
// ahead of the fake one (see the storetest tests) still passes.
const (
	absoluteLifetime = 8 * time.Hour
	idleLifetime     = 30 * time.Minute
	// longTTL is the lock and one-time-id ttl of checks that need the entry
	// to stay put for the rest of the subtest.
	longTTL = time.Hour
	// fakeShortTTL is the ttl of expiry checks on the fake clock.
	fakeShortTTL = 10 * time.Second
)

// Run runs the conformance suite against the stores newStore returns. See the
// package documentation and the options for how to adapt it to a store.
func Run(t *testing.T, newStore NewStore, opts ...Option) {
	cfg := newConfig(opts)
	for _, st := range subtests(cfg) {
		t.Run(st.name, func(t *testing.T) {
			st.fn(newHarness(t, newStore, cfg))
		})
	}
}

type subtest struct {
	name string
	fn   func(h *harness)
}

func subtests(cfg config) []subtest {
	tests := []subtest{
		{"CreateGet", testCreateGet},
		{"CreateCopiesData", testCreateCopiesData},
		{"CreateExisting", testCreateExisting},
		{"CreateOverExpired", testCreateOverExpired},
		{"CreateConcurrent", testCreateConcurrent},
		{"GetMissing", testGetMissing},
		{"GetExpired", testGetExpired},
		{"Update", testUpdate},
		{"UpdateIndexes", testUpdateIndexes},
		{"UpdateMissingOrExpired", testUpdateMissingOrExpired},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"Touch", testTouch},
		{"TouchMissingOrExpired", testTouchMissingOrExpired},
		{"Delete", testDelete},
		{"DeleteBySID", testDeleteBySID},
		{"DeleteBySub", testDeleteBySub},
		{"ListBySub", testListBySub},
		{"DeleteExpired", testDeleteExpired},
		{"Lock", testLock},
		{"LockExpiry", testLockExpiry},
		{"LockConcurrent", testLockConcurrent},
		{"SeenJTI", testSeenJTI},
		{"SeenJTIExpiry", testSeenJTIExpiry},
		{"SeenJTIConcurrent", testSeenJTIConcurrent},
		{"ForgetJTI", testForgetJTI},
		{"Close", testClose},
	}
	if cfg.reopen != nil {
		tests = append(tests, subtest{"Reopen", testReopen})
	}
	return tests
}

// harness is one subtest's store, clock and unique names.
type harness struct {
	t        *testing.T
	cfg      config
	ctx      context.Context
	clock    *Clock
	newStore NewStore
	s        session.Store
	closed   bool // the subtest closed s itself

	id string // unique to the subtest, for names in shared backends
	n  int    // counter for unique keys and names
}

func newHarness(t *testing.T, newStore NewStore, cfg config) *harness {
	h := &harness{
		t:        t,
		cfg:      cfg,
		ctx:      t.Context(),
		clock:    NewClock(time.Now().Truncate(time.Second)),
		newStore: newStore,
		id:       strings.ToLower(rand.Text()[:16]),
	}
	h.s = newStore(t, h.clock)
	if h.s == nil {
		t.Fatal("newStore returned a nil store")
	}
	t.Cleanup(func() {
		if h.closed {
			return
		}
		if err := h.s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// iss returns the subtest's issuers: iss(0) is the main one, iss(1), iss(2)
// ... are others. Subtests use iss(0)+"0" as a lookalike of iss(0) that a
// careless prefix index would confuse with it.
func (h *harness) iss(i int) string {
	if i == 0 {
		return "https://op.example/" + h.id
	}
	return fmt.Sprintf("https://op.example/%s/%d", h.id, i)
}

// name returns a lock name or one-time id unique to the subtest.
func (h *harness) name(kind string) string {
	h.n++
	return fmt.Sprintf("storetest/%s/%s/%d", h.id, kind, h.n)
}

func (h *harness) newKey() session.Key {
	return session.KeyOf(h.name("cookie"))
}

// newRecord returns a record for a new session of subject sub at issuer
// iss(0) with OP session sid (possibly empty), created now, absolutely
// expiring in absoluteLifetime and idly in idleLifetime.
func (h *harness) newRecord(sub, sid string) *session.Record {
	now := h.clock.Now()
	return &session.Record{
		Key:           h.newKey(),
		Issuer:        h.iss(0),
		Subject:       sub,
		SID:           sid,
		CreatedAt:     now,
		ExpiresAt:     now.Add(absoluteLifetime),
		IdleExpiresAt: now.Add(idleLifetime),
		Data:          []byte("sealed:" + sub + ":" + sid),
	}
}

// create stores a copy of rec, checks it got version 1, and returns the
// copy, which carries the stored version.
func (h *harness) create(rec *session.Record) *session.Record {
	h.t.Helper()
	rec = cloneRecord(rec)
	if err := h.s.Create(h.ctx, rec); err != nil {
		h.t.Fatalf("Create(%v): %v", rec.Key, err)
	}
	if rec.Version != 1 {
		h.t.Fatalf("Create(%v) set Version %d, want 1", rec.Key, rec.Version)
	}
	return rec
}

func (h *harness) mustGet(key session.Key) *session.Record {
	h.t.Helper()
	r, err := h.s.Get(h.ctx, key)
	if err != nil {
		h.t.Fatalf("Get(%v): %v", key, err)
	}
	if r == nil {
		h.t.Fatalf("Get(%v) returned a nil record and no error", key)
	}
	return r
}

// wantRecord checks that the store holds want under want.Key.
func (h *harness) wantRecord(want *session.Record) {
	h.t.Helper()
	checkRecord(h.t, "Get", h.mustGet(want.Key), want)
}

func (h *harness) wantNotFound(key session.Key) {
	h.t.Helper()
	r, err := h.s.Get(h.ctx, key)
	if !errors.Is(err, session.ErrNotFound) {
		h.t.Fatalf("Get(%v) = %v, %v; want ErrNotFound", key, r, err)
	}
}

// wantErr fails the subtest unless err matches target with errors.Is.
func (h *harness) wantErr(op string, err, target error) {
	h.t.Helper()
	if !errors.Is(err, target) {
		h.t.Fatalf("%s: got error %v, want %v", op, err, target)
	}
}

func (h *harness) noErr(op string, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s: %v", op, err)
	}
}

// deleteBySID calls DeleteBySID and checks that it returned want sessions.
func (h *harness) deleteBySID(iss, sid string, want int) {
	h.t.Helper()
	got, err := h.s.DeleteBySID(h.ctx, iss, sid)
	if err != nil {
		h.t.Fatalf("DeleteBySID(%q, %q): %v", iss, sid, err)
	}
	if len(got) != want {
		h.t.Fatalf("DeleteBySID(%q, %q) returned %d sessions %v, want %d", iss, sid, len(got), keysOf(got), want)
	}
}

// deleteBySub calls DeleteBySub and checks that it returned want sessions.
func (h *harness) deleteBySub(iss, sub string, want int) {
	h.t.Helper()
	got, err := h.s.DeleteBySub(h.ctx, iss, sub)
	if err != nil {
		h.t.Fatalf("DeleteBySub(%q, %q): %v", iss, sub, err)
	}
	if len(got) != want {
		h.t.Fatalf("DeleteBySub(%q, %q) returned %d sessions %v, want %d", iss, sub, len(got), keysOf(got), want)
	}
}

// wantSame checks that got holds exactly the records want, in any order,
// every field equal.
func (h *harness) wantSame(what string, got []*session.Record, want ...*session.Record) {
	h.t.Helper()
	byKey := func(a, b *session.Record) int { return bytes.Compare(a.Key[:], b.Key[:]) }
	got = slices.Clone(got)
	slices.SortFunc(got, byKey)
	want = slices.Clone(want)
	slices.SortFunc(want, byKey)
	if len(got) != len(want) {
		h.t.Fatalf("%s returned %d sessions %v, want %d %v", what, len(got), keysOf(got), len(want), keysOf(want))
	}
	for i := range got {
		checkRecord(h.t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

// wantList checks that ListBySub(iss, sub) returns exactly want, in any order.
func (h *harness) wantList(iss, sub string, want ...*session.Record) {
	h.t.Helper()
	got, err := h.s.ListBySub(h.ctx, iss, sub)
	if err != nil {
		h.t.Fatalf("ListBySub(%q, %q): %v", iss, sub, err)
	}
	h.wantSame(fmt.Sprintf("ListBySub(%q, %q)", iss, sub), got, want...)
}

func (h *harness) lock(name string, ttl time.Duration) session.Lease {
	h.t.Helper()
	l, err := h.s.Lock(h.ctx, name, ttl)
	if err != nil {
		h.t.Fatalf("Lock(%q, %v): %v", name, ttl, err)
	}
	if l == nil {
		h.t.Fatalf("Lock(%q, %v) returned a nil lease and no error", name, ttl)
	}
	return l
}

func (h *harness) wantLockHeld(name string) {
	h.t.Helper()
	_, err := h.s.Lock(h.ctx, name, longTTL)
	h.wantErr(fmt.Sprintf("Lock(%q) of a held lock", name), err, session.ErrLockHeld)
}

func (h *harness) release(l session.Lease) {
	h.t.Helper()
	h.noErr("Release", l.Release(h.ctx))
}

func (h *harness) seen(id string, ttl time.Duration, want bool) {
	h.t.Helper()
	got, err := h.s.SeenJTI(h.ctx, id, ttl)
	if err != nil {
		h.t.Fatalf("SeenJTI(%q, %v): %v", id, ttl, err)
	}
	if got != want {
		h.t.Fatalf("SeenJTI(%q, %v) = %v, want %v", id, ttl, got, want)
	}
}

// shortTTL is the lock and one-time-id ttl of expiry checks, and
// passShortTTL lets it pass: on the fake clock, or in real time with
// RealTimeTTL.
func (h *harness) shortTTL() time.Duration {
	if h.cfg.realTTL > 0 {
		return h.cfg.realTTL
	}
	return fakeShortTTL
}

func (h *harness) passShortTTL() {
	if h.cfg.realTTL > 0 {
		time.Sleep(2 * h.cfg.realTTL)
		return
	}
	h.clock.Advance(fakeShortTTL)
}

// reopen replaces the subtest's store with cfg.reopen's.
func (h *harness) reopen() {
	h.t.Helper()
	s := h.cfg.reopen(h.t, h.clock, h.s)
	if s == nil {
		h.t.Fatal("reopen returned a nil store")
	}
	h.s = s
}

func cloneRecord(r *session.Record) *session.Record {
	c := *r
	c.Data = bytes.Clone(r.Data)
	return &c
}

// checkRecord compares every field of a record.
func checkRecord(t testing.TB, what string, got, want *session.Record) {
	t.Helper()
	var diffs []string
	diff := func(field string, g, w any) {
		diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w))
	}
	if got.Key != want.Key {
		diff("Key", got.Key, want.Key)
	}
	if got.Version != want.Version {
		diff("Version", got.Version, want.Version)
	}
	if got.Issuer != want.Issuer {
		diff("Issuer", got.Issuer, want.Issuer)
	}
	if got.Subject != want.Subject {
		diff("Subject", got.Subject, want.Subject)
	}
	if got.SID != want.SID {
		diff("SID", got.SID, want.SID)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		diff("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		diff("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	}
	if !got.IdleExpiresAt.Equal(want.IdleExpiresAt) {
		diff("IdleExpiresAt", got.IdleExpiresAt, want.IdleExpiresAt)
	}
	if !bytes.Equal(got.Data, want.Data) {
		diff("Data", summarize(got.Data), summarize(want.Data))
	}
	if len(diffs) > 0 {
		t.Fatalf("%s: record %v differs:\n\t%s", what, want.Key, strings.Join(diffs, "\n\t"))
	}
}

func summarize(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:32], len(b))
}

func keysOf(rs []*session.Record) []session.Key {
	keys := make([]session.Key, len(rs))
	for i, r := range rs {
		keys[i] = r.Key
	}
	return keys
}
