package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff/session"
)

// sampleData is a sealed-payload stand-in holding every byte value.
func sampleData() []byte {
	b := make([]byte, 4096+7)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// Create then Get returns every field as stored, with Version 1 whatever
// Version the caller passed.
func testCreateGet(h *harness) {
	odd := time.FixedZone("UTC+5:30", 5*3600+1800)
	now := h.clock.Now()
	rec := &session.Record{
		Key:           h.newKey(),
		Version:       42, // ignored: the store assigns versions
		Issuer:        h.iss(0),
		Subject:       "alice|Ünïcödé:sub/with spaces",
		SID:           "op-session-1",
		CreatedAt:     now.In(odd),
		ExpiresAt:     now.Add(absoluteLifetime),
		IdleExpiresAt: now.Add(idleLifetime).UTC(),
		Data:          sampleData(),
	}
	want := cloneRecord(rec)
	want.Version = 1
	h.noErr("Create", h.s.Create(h.ctx, rec))
	if rec.Version != 1 {
		h.t.Fatalf("Create set rec.Version = %d, want 1", rec.Version)
	}
	h.wantRecord(want)
	h.wantRecord(want) // reading does not change anything

	// A session without an OP session id, with a tiny payload.
	bare := h.newRecord("bob", "")
	bare.Data = []byte{0}
	bare = h.create(bare)
	h.wantRecord(bare)
}

// The store keeps its own copy of Data: callers may reuse their buffers.
func testCreateCopiesData(h *harness) {
	rec := h.newRecord("alice", "sid-1")
	buf := []byte("original payload")
	rec.Data = buf
	h.noErr("Create", h.s.Create(h.ctx, rec))
	copy(buf, "XXXXXXXX")
	want := cloneRecord(rec)
	want.Data = []byte("original payload")
	h.wantRecord(want)

	upd := cloneRecord(want)
	buf = []byte("updated payload")
	upd.Data = buf
	h.noErr("Update", h.s.Update(h.ctx, upd))
	copy(buf, "YYYYYYYY")
	want.Version = 2
	want.Data = []byte("updated payload")
	h.wantRecord(want)
}

// Create never overwrites a live session.
func testCreateExisting(h *harness) {
	rec := h.create(h.newRecord("alice", "sid-1"))
	dup := h.newRecord("mallory", "sid-2")
	dup.Key = rec.Key
	dup.Data = []byte("other")
	err := h.s.Create(h.ctx, dup)
	h.wantErr("Create over a live session", err, session.ErrExists)
	h.wantRecord(rec)
	h.wantList(h.iss(0), "alice", rec)
	h.wantList(h.iss(0), "mallory")
	h.deleteBySID(h.iss(0), "sid-2", 0)
}

// Create replaces a session that has expired, and the old session's index
// entries do not leak into the new one's.
func testCreateOverExpired(h *harness) {
	for _, mode := range []string{"absolute", "idle"} {
		h.t.Run(mode, func(t *testing.T) {
			h := newHarness(t, h.newStore, h.cfg)
			old := h.newRecord("old-sub", "old-sid")
			if mode == "absolute" {
				old.ExpiresAt = old.CreatedAt.Add(10 * time.Minute)
				old.IdleExpiresAt = old.CreatedAt.Add(20 * time.Minute)
			} else {
				old.IdleExpiresAt = old.CreatedAt.Add(10 * time.Minute)
			}
			old = h.create(old)
			h.clock.Advance(10 * time.Minute)

			rec := h.newRecord("new-sub", "new-sid")
			rec.Key = old.Key
			rec = h.create(rec)
			h.wantRecord(rec)
			h.wantList(h.iss(0), "old-sub")
			h.wantList(h.iss(0), "new-sub", rec)
			h.deleteBySID(h.iss(0), "old-sid", 0)
			h.deleteBySub(h.iss(0), "old-sub", 0)
			h.wantRecord(rec)
		})
	}
}

// Of many concurrent Creates of one key exactly one succeeds.
func testCreateConcurrent(h *harness) {
	key := h.newKey()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		winner *session.Record
		wins   int
	)
	for i := range h.cfg.concurrency {
		rec := h.newRecord("sub-"+strconv.Itoa(i), "")
		rec.Key = key
		wg.Go(func() {
			err := h.s.Create(h.ctx, rec)
			switch {
			case err == nil:
				mu.Lock()
				wins++
				winner = rec
				mu.Unlock()
			case !errors.Is(err, session.ErrExists):
				h.t.Errorf("concurrent Create: %v, want nil or ErrExists", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		h.t.Fatalf("%d of %d concurrent Creates of one key succeeded, want 1", wins, h.cfg.concurrency)
	}
	h.wantRecord(winner)
}

func testGetMissing(h *harness) {
	h.wantNotFound(h.newKey())
	h.wantNotFound(session.Key{})
}

// Get reports a session as not found from its absolute or idle end on.
func testGetExpired(h *harness) {
	abs := h.newRecord("alice", "sid-abs")
	abs.ExpiresAt = abs.CreatedAt.Add(time.Hour)
	abs.IdleExpiresAt = abs.CreatedAt.Add(2 * time.Hour)
	abs = h.create(abs)

	idle := h.create(h.newRecord("alice", "sid-idle")) // idle end at 30m

	h.clock.Advance(idleLifetime - time.Minute)
	h.wantRecord(abs)
	h.wantRecord(idle)
	h.clock.Advance(time.Minute) // exactly IdleExpiresAt
	h.wantNotFound(idle.Key)
	h.wantRecord(abs)
	h.wantList(h.iss(0), "alice", abs)

	h.clock.Advance(29 * time.Minute)
	h.wantRecord(abs)
	h.clock.Advance(time.Minute) // exactly ExpiresAt
	h.wantNotFound(abs.Key)
	h.wantList(h.iss(0), "alice")
	h.clock.Advance(time.Hour)
	h.wantNotFound(abs.Key)
	h.wantNotFound(idle.Key)
}

// Update is a compare-and-set on Version that replaces the indexed fields,
// expiries and Data (but not CreatedAt) and bumps the version.
func testUpdate(h *harness) {
	rec := h.create(h.newRecord("alice", "sid-1"))
	got := h.mustGet(rec.Key)

	upd := cloneRecord(got)
	upd.Data = []byte("rotated refresh token")
	upd.ExpiresAt = upd.ExpiresAt.Add(time.Hour)
	upd.IdleExpiresAt = upd.IdleExpiresAt.Add(10 * time.Minute)
	upd.CreatedAt = upd.CreatedAt.Add(-time.Hour) // not one of Update's fields
	h.noErr("Update", h.s.Update(h.ctx, upd))
	if upd.Version != 2 {
		h.t.Fatalf("Update set Version %d, want 2", upd.Version)
	}
	want := cloneRecord(upd)
	want.CreatedAt = rec.CreatedAt
	h.wantRecord(want)

	// A writer that read version 1 lost the race.
	stale := cloneRecord(got)
	stale.Data = []byte("stale")
	err := h.s.Update(h.ctx, stale)
	h.wantErr("Update with a stale version", err, session.ErrConflict)
	if stale.Version != 1 {
		h.t.Fatalf("failed Update changed rec.Version to %d, want 1", stale.Version)
	}
	future := cloneRecord(want)
	future.Version = 7
	err = h.s.Update(h.ctx, future)
	h.wantErr("Update with a future version", err, session.ErrConflict)
	h.wantRecord(want)

	// Versions keep counting.
	upd.Data = []byte("third")
	h.noErr("Update", h.s.Update(h.ctx, upd))
	if upd.Version != 3 {
		h.t.Fatalf("second Update set Version %d, want 3", upd.Version)
	}
	want.Data, want.Version = upd.Data, 3
	h.wantRecord(want)
}

// The sid and sub indexes follow an Update of Issuer, Subject and SID.
func testUpdateIndexes(h *harness) {
	rec := h.create(h.newRecord("alice", "sid-1"))
	other := h.create(h.newRecord("alice", "sid-1"))

	upd := cloneRecord(rec)
	upd.Subject, upd.SID = "bob", "sid-2"
	h.noErr("Update", h.s.Update(h.ctx, upd))
	h.wantList(h.iss(0), "alice", other)
	h.wantList(h.iss(0), "bob", upd)

	// Dropping the sid takes the session out of the sid index.
	upd.SID = ""
	h.noErr("Update", h.s.Update(h.ctx, upd))
	h.deleteBySID(h.iss(0), "sid-2", 0)
	h.deleteBySID(h.iss(0), "", 0)
	h.wantRecord(upd)

	// Moving to another issuer moves both index entries.
	upd.Issuer, upd.SID = h.iss(1), "sid-1"
	h.noErr("Update", h.s.Update(h.ctx, upd))
	h.wantList(h.iss(0), "bob")
	h.wantList(h.iss(1), "bob", upd)
	h.deleteBySID(h.iss(0), "sid-1", 1) // other, not upd
	h.wantRecord(upd)
	h.wantNotFound(other.Key)
	h.deleteBySID(h.iss(1), "sid-1", 1)
	h.wantNotFound(upd.Key)
}

// Update of a missing or expired session fails with ErrNotFound, whatever
// the version, and does not resurrect it.
func testUpdateMissingOrExpired(h *harness) {
	missing := h.newRecord("alice", "sid-1")
	missing.Version = 1
	h.wantErr("Update of a missing session", h.s.Update(h.ctx, missing), session.ErrNotFound)
	missing.Version = 5
	h.wantErr("Update of a missing session", h.s.Update(h.ctx, missing), session.ErrNotFound)
	h.wantNotFound(missing.Key)

	rec := h.create(h.newRecord("alice", "sid-1"))
	h.clock.Advance(idleLifetime)
	upd := cloneRecord(rec)
	upd.IdleExpiresAt = h.clock.Now().Add(idleLifetime)
	h.wantErr("Update of an expired session", h.s.Update(h.ctx, upd), session.ErrNotFound)
	upd.Version = 9
	h.wantErr("Update of an expired session with a wrong version", h.s.Update(h.ctx, upd), session.ErrNotFound)
	h.wantNotFound(rec.Key)
	h.wantList(h.iss(0), "alice")

	h.noErr("Delete", h.s.Delete(h.ctx, rec.Key))
	upd.Version = 1
	h.wantErr("Update of a deleted session", h.s.Update(h.ctx, upd), session.ErrNotFound)
}

// Concurrent read-modify-write cycles that retry on ErrConflict lose no
// update.
func testUpdateConcurrent(h *harness) {
	rec := h.newRecord("alice", "sid-1")
	rec.Data = []byte("0")
	rec = h.create(rec)

	var wg sync.WaitGroup
	for range h.cfg.concurrency {
		wg.Go(func() {
			for {
				cur, err := h.s.Get(h.ctx, rec.Key)
				if err != nil {
					h.t.Errorf("Get: %v", err)
					return
				}
				n, err := strconv.Atoi(string(cur.Data))
				if err != nil {
					h.t.Errorf("counter %q: %v", cur.Data, err)
					return
				}
				upd := *cur // records from Get are read-only: update a copy
				upd.Data = []byte(strconv.Itoa(n + 1))
				err = h.s.Update(h.ctx, &upd)
				if errors.Is(err, session.ErrConflict) {
					continue
				}
				if err != nil {
					h.t.Errorf("Update: %v", err)
				}
				return
			}
		})
	}
	wg.Wait()
	if h.t.Failed() {
		return
	}
	got := h.mustGet(rec.Key)
	if want := strconv.Itoa(h.cfg.concurrency); string(got.Data) != want {
		h.t.Fatalf("counter after %d concurrent increments = %s, want %s (lost updates)",
			h.cfg.concurrency, got.Data, want)
	}
	if want := uint64(h.cfg.concurrency) + 1; got.Version != want {
		h.t.Fatalf("Version after %d Updates = %d, want %d", h.cfg.concurrency, got.Version, want)
	}
}

// Touch moves the idle end, never past the absolute end, and changes
// nothing else: not the version, not the data.
func testTouch(h *harness) {
	rec := h.create(h.newRecord("alice", "sid-1"))
	h.clock.Advance(20 * time.Minute)
	idle := h.clock.Now().Add(idleLifetime)
	h.noErr("Touch", h.s.Touch(h.ctx, rec.Key, idle))
	want := cloneRecord(rec)
	want.IdleExpiresAt = idle
	h.wantRecord(want)

	// Alive past the old idle end, gone at the new one.
	h.clock.Advance(idleLifetime - time.Minute)
	h.wantRecord(want)
	h.wantList(h.iss(0), "alice", want)

	// Never past ExpiresAt.
	h.noErr("Touch", h.s.Touch(h.ctx, rec.Key, rec.ExpiresAt.Add(24*time.Hour)))
	want.IdleExpiresAt = rec.ExpiresAt
	h.wantRecord(want)

	// The version did not change: an Update based on the pre-Touch read
	// succeeds.
	upd := cloneRecord(rec)
	upd.Data = []byte("after touch")
	upd.ExpiresAt = rec.ExpiresAt.Add(time.Hour)
	upd.IdleExpiresAt = h.clock.Now().Add(idleLifetime)
	h.noErr("Update after Touch", h.s.Update(h.ctx, upd))
	if upd.Version != 2 {
		h.t.Fatalf("Update after Touch set Version %d, want 2", upd.Version)
	}

	// Touch follows the last Update's absolute end.
	h.noErr("Touch", h.s.Touch(h.ctx, rec.Key, h.clock.Now().Add(absoluteLifetime+time.Hour)))
	want = cloneRecord(upd)
	want.IdleExpiresAt = upd.ExpiresAt
	h.wantRecord(want)
	h.clock.Advance(upd.ExpiresAt.Sub(h.clock.Now()) - time.Minute)
	h.wantRecord(want)
	h.clock.Advance(time.Minute)
	h.wantNotFound(rec.Key)
}

// Touch of a missing or expired session fails with ErrNotFound and does not
// resurrect it.
func testTouchMissingOrExpired(h *harness) {
	key := h.newKey()
	h.wantErr("Touch of a missing session", h.s.Touch(h.ctx, key, h.clock.Now().Add(time.Hour)), session.ErrNotFound)
	h.wantNotFound(key)

	rec := h.create(h.newRecord("alice", "sid-1"))
	h.clock.Advance(idleLifetime)
	err := h.s.Touch(h.ctx, rec.Key, h.clock.Now().Add(idleLifetime))
	h.wantErr("Touch of an idle-expired session", err, session.ErrNotFound)
	h.wantNotFound(rec.Key)
	h.wantList(h.iss(0), "alice")

	abs := h.newRecord("bob", "")
	abs.ExpiresAt = h.clock.Now().Add(10 * time.Minute)
	abs = h.create(abs)
	h.clock.Advance(10 * time.Minute)
	err = h.s.Touch(h.ctx, abs.Key, h.clock.Now().Add(idleLifetime))
	h.wantErr("Touch of an expired session", err, session.ErrNotFound)
	h.wantNotFound(abs.Key)
}

// Delete removes one session and its index entries; deleting a missing
// session is not an error.
func testDelete(h *harness) {
	a := h.create(h.newRecord("alice", "sid-1"))
	b := h.create(h.newRecord("alice", "sid-1"))
	h.noErr("Delete", h.s.Delete(h.ctx, a.Key))
	h.wantNotFound(a.Key)
	h.wantRecord(b)
	h.wantList(h.iss(0), "alice", b)
	h.noErr("Delete of a deleted session", h.s.Delete(h.ctx, a.Key))
	h.noErr("Delete of a missing session", h.s.Delete(h.ctx, h.newKey()))
	h.deleteBySID(h.iss(0), "sid-1", 1)
	h.wantNotFound(b.Key)

	// A new session under a deleted key starts over at version 1.
	c := h.newRecord("carol", "")
	c.Key = a.Key
	h.wantRecord(h.create(c))
}

// DeleteBySID removes exactly the live sessions of one OP session at one
// issuer.
func testDeleteBySID(h *harness) {
	iss, iss1, lookalike := h.iss(0), h.iss(1), h.iss(0)+"0"
	target := []*session.Record{
		h.create(h.newRecord("alice", "s1")),
		h.create(h.newRecord("alice", "s1")), // a second session of the same OP session
		h.create(h.newRecord("bob", "s1")),
	}
	keep := []*session.Record{
		h.create(h.newRecord("alice", "s10")),
		h.create(h.newRecord("alice", "s")),
		h.create(h.newRecord("alice", "")),
		h.create(h.newRecord("s1", "")),
	}
	for _, other := range []string{iss1, lookalike} {
		r := h.newRecord("alice", "s1")
		r.Issuer = other
		keep = append(keep, h.create(r))
	}
	expired := h.newRecord("carol", "s1")
	expired.IdleExpiresAt = expired.CreatedAt.Add(time.Minute)
	expired = h.create(expired)
	h.clock.Advance(time.Minute)

	deleted, err := h.s.DeleteBySID(h.ctx, iss, "s1")
	h.noErr("DeleteBySID", err)
	h.wantSame("DeleteBySID", deleted, target...) // with their Data, for revocation
	for _, r := range target {
		h.wantNotFound(r.Key)
	}
	h.wantNotFound(expired.Key)
	for _, r := range keep {
		h.wantRecord(r)
	}
	h.wantList(iss, "alice", keep[0], keep[1], keep[2])
	h.deleteBySID(iss, "s1", 0)
	h.deleteBySID(iss, "", 0) // sessions without sid are not one OP session
	h.deleteBySID(iss, "unknown", 0)
	h.deleteBySID("https://unknown.example", "s1", 0)
	for _, r := range keep {
		h.wantRecord(r)
	}
	h.deleteBySID(iss1, "s1", 1)
	h.deleteBySID(lookalike, "s1", 1)
	h.deleteBySID(iss, "s10", 1)
}

// DeleteBySub removes exactly the live sessions of one subject at one
// issuer, and their sid index entries.
func testDeleteBySub(h *harness) {
	iss, iss1, lookalike := h.iss(0), h.iss(1), h.iss(0)+"0"
	target := []*session.Record{
		h.create(h.newRecord("alice", "s1")),
		h.create(h.newRecord("alice", "s2")),
		h.create(h.newRecord("alice", "")),
	}
	keep := []*session.Record{
		h.create(h.newRecord("alice0", "s1")),
		h.create(h.newRecord("alic", "s3")),
		h.create(h.newRecord("bob", "s1")),
	}
	for _, other := range []string{iss1, lookalike} {
		r := h.newRecord("alice", "s1")
		r.Issuer = other
		keep = append(keep, h.create(r))
	}
	expired := h.newRecord("alice", "s4")
	expired.IdleExpiresAt = expired.CreatedAt.Add(time.Minute)
	expired = h.create(expired)
	h.clock.Advance(time.Minute)

	deleted, err := h.s.DeleteBySub(h.ctx, iss, "alice")
	h.noErr("DeleteBySub", err)
	h.wantSame("DeleteBySub", deleted, target...)
	for _, r := range target {
		h.wantNotFound(r.Key)
	}
	h.wantNotFound(expired.Key)
	for _, r := range keep {
		h.wantRecord(r)
	}
	h.wantList(iss, "alice")
	h.deleteBySub(iss, "alice", 0)
	h.deleteBySub(iss, "unknown", 0)
	h.deleteBySID(iss, "s2", 0) // the sid index forgot the deleted sessions
	h.deleteBySID(iss, "s1", 2) // alice0's and bob's
	h.deleteBySub(iss1, "alice", 1)
	h.deleteBySub(lookalike, "alice", 1)
}

// ListBySub returns the live sessions of one subject at one issuer.
func testListBySub(h *harness) {
	iss := h.iss(0)
	a1 := h.newRecord("alice", "s1")
	a1.Data = sampleData()
	a1 = h.create(a1)
	a2 := h.create(h.newRecord("alice", ""))
	expired := h.newRecord("alice", "s2")
	expired.IdleExpiresAt = expired.CreatedAt.Add(time.Minute)
	expired = h.create(expired)
	h.create(h.newRecord("alice0", "s1"))
	h.create(h.newRecord("bob", "s1"))
	other := h.newRecord("alice", "s1")
	other.Issuer = h.iss(1)
	other = h.create(other)

	h.wantList(iss, "alice", a1, a2, expired)
	h.clock.Advance(time.Minute)
	h.wantList(iss, "alice", a1, a2)
	h.wantList(h.iss(1), "alice", other)
	h.wantList(iss, "nobody")
	h.wantList("https://unknown.example", "alice")

	upd := cloneRecord(a2)
	upd.Data = []byte("updated")
	h.noErr("Update", h.s.Update(h.ctx, upd))
	h.wantList(iss, "alice", a1, upd)
}

// DeleteExpired removes expired sessions together with their index entries
// and reports how many, and reclaims expired locks and one-time ids without
// disturbing live ones.
func testDeleteExpired(h *harness) {
	lockShort, lockLong := h.name("lock"), h.name("lock")
	h.lock(lockShort, h.shortTTL())
	h.lock(lockLong, longTTL)
	jtiShort, jtiLong := h.name("jti"), h.name("jti")
	h.seen(jtiShort, h.shortTTL(), false)
	h.seen(jtiLong, longTTL, false)
	h.passShortTTL()

	iss := h.iss(0)
	live := h.create(h.newRecord("alice", "s1"))
	liveBare := h.create(h.newRecord("bob", ""))
	var expired []*session.Record
	for _, mode := range []string{"absolute", "idle", "shortened"} {
		r := h.newRecord("alice", "s-"+mode)
		switch mode {
		case "absolute": // ends exactly when DeleteExpired runs
			r.ExpiresAt = r.CreatedAt.Add(10 * time.Minute)
		case "idle":
			r.IdleExpiresAt = r.CreatedAt.Add(10*time.Minute - time.Second)
		}
		r = h.create(r)
		if mode == "shortened" { // an Update moves the end earlier
			r.IdleExpiresAt = r.CreatedAt.Add(5 * time.Minute)
			h.noErr("Update", h.s.Update(h.ctx, r))
		}
		expired = append(expired, r)
	}
	// Sessions whose first end passes but that were extended in time.
	touched := h.newRecord("alice", "s1")
	touched.IdleExpiresAt = touched.CreatedAt.Add(10 * time.Minute)
	touched = h.create(touched)
	h.noErr("Touch", h.s.Touch(h.ctx, touched.Key, touched.CreatedAt.Add(idleLifetime)))
	touched.IdleExpiresAt = touched.CreatedAt.Add(idleLifetime)
	updated := h.newRecord("carol", "s3")
	updated.IdleExpiresAt = updated.CreatedAt.Add(10 * time.Minute)
	updated = h.create(updated)
	updated.IdleExpiresAt = updated.CreatedAt.Add(idleLifetime)
	h.noErr("Update", h.s.Update(h.ctx, updated))

	h.clock.Advance(10 * time.Minute)

	n, err := h.s.DeleteExpired(h.ctx)
	h.noErr("DeleteExpired", err)
	switch {
	case h.cfg.serverSweep:
	case h.cfg.shared:
		if n < len(expired) {
			h.t.Fatalf("DeleteExpired = %d, want at least %d", n, len(expired))
		}
	default:
		if n != len(expired) {
			h.t.Fatalf("DeleteExpired = %d, want %d", n, len(expired))
		}
	}
	for _, r := range expired {
		h.wantNotFound(r.Key)
	}
	for _, r := range []*session.Record{live, liveBare, touched, updated} {
		h.wantRecord(r)
	}
	h.wantList(iss, "alice", live, touched)
	for _, mode := range []string{"absolute", "idle", "shortened"} {
		h.deleteBySID(iss, "s-"+mode, 0)
	}
	if !h.cfg.serverSweep && !h.cfg.shared {
		n, err = h.s.DeleteExpired(h.ctx)
		h.noErr("DeleteExpired", err)
		if n != 0 {
			h.t.Fatalf("second DeleteExpired = %d, want 0", n)
		}
	}

	h.release(h.lock(lockShort, longTTL))
	h.wantLockHeld(lockLong)
	h.seen(jtiShort, longTTL, false)
	h.seen(jtiLong, longTTL, true)

	// A reclaimed key can be used again.
	r := h.newRecord("dave", "")
	r.Key = expired[0].Key
	h.wantRecord(h.create(r))
	h.deleteBySID(iss, "s1", 2)
}

// Ping succeeds on an open store and fails on a closed one.
func testClose(h *harness) {
	h.create(h.newRecord("alice", "s1"))
	h.noErr("Ping", h.s.Ping(h.ctx))
	h.closed = true
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	if err := h.s.Ping(h.ctx); err == nil {
		h.t.Fatal("Ping of a closed store succeeded")
	}
}

// Sessions with their versions and indexes, held locks and recorded
// one-time ids survive a restart, and expiry goes on by the clock.
func testReopen(h *harness) {
	iss := h.iss(0)
	a := h.newRecord("alice", "s1")
	a.Data = sampleData()
	a = h.create(a)
	a.Data = []byte("updated before restart")
	h.noErr("Update", h.s.Update(h.ctx, a))
	b := h.create(h.newRecord("alice", ""))
	c := h.create(h.newRecord("bob", "s1"))
	h.clock.Advance(10 * time.Minute)
	c.IdleExpiresAt = h.clock.Now().Add(idleLifetime)
	h.noErr("Touch", h.s.Touch(h.ctx, c.Key, c.IdleExpiresAt))
	lockName, jti := h.name("lock"), h.name("jti")
	h.lock(lockName, longTTL)
	h.seen(jti, longTTL, false)

	h.reopen()

	h.wantRecord(a)
	h.wantRecord(b)
	h.wantRecord(c)
	h.wantList(iss, "alice", a, b)
	h.wantLockHeld(lockName)
	h.seen(jti, longTTL, true)

	stale := cloneRecord(a)
	stale.Version = 1
	h.wantErr("Update with a pre-restart stale version", h.s.Update(h.ctx, stale), session.ErrConflict)
	a.Data = []byte("updated after restart")
	a.IdleExpiresAt = h.clock.Now().Add(idleLifetime)
	h.noErr("Update", h.s.Update(h.ctx, a))
	if a.Version != 3 {
		h.t.Fatalf("Update after restart set Version %d, want 3", a.Version)
	}
	h.wantRecord(a)

	// b's idle end passes; c was touched and lives on.
	h.clock.Advance(idleLifetime - 10*time.Minute)
	h.wantNotFound(b.Key)
	h.wantRecord(c)
	h.wantList(iss, "alice", a)
	h.deleteBySID(iss, "s1", 2)
	h.wantNotFound(a.Key)
	h.wantNotFound(c.Key)
}
