package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobff/bff/session"
)

// A held lock cannot be taken again until released; names are independent;
// Release is idempotent.
func testLock(h *harness) {
	name, other := h.name("lock"), h.name("lock")
	l := h.lock(name, longTTL)
	h.wantLockHeld(name)
	h.wantLockHeld(name)
	lo := h.lock(other, longTTL)
	h.release(l)
	h.release(l) // releasing twice is a no-op
	l2 := h.lock(name, longTTL)
	h.wantLockHeld(name)
	h.wantLockHeld(other)
	h.release(l) // l no longer holds the lock: l2 keeps it
	h.wantLockHeld(name)
	h.release(l2)
	h.release(lo)
	h.release(h.lock(other, longTTL))
}

// A lock is free once its ttl has passed, and the expired lease's Release
// leaves the next holder's lock alone.
func testLockExpiry(h *harness) {
	name := h.name("lock")
	stale := h.lock(name, h.shortTTL())
	if h.cfg.realTTL == 0 {
		h.clock.Advance(fakeShortTTL - time.Second)
		h.wantLockHeld(name)
		h.clock.Advance(time.Second) // exactly at the ttl
	} else {
		h.passShortTTL()
	}
	holder := h.lock(name, longTTL)
	h.release(stale)
	h.wantLockHeld(name)
	h.release(holder)
	h.release(h.lock(name, longTTL))
}

// Of many concurrent Locks of one name exactly one succeeds.
func testLockConcurrent(h *harness) {
	name := h.name("lock")
	var (
		wg   sync.WaitGroup
		wins atomic.Int32
	)
	for range h.cfg.concurrency {
		wg.Go(func() {
			_, err := h.s.Lock(h.ctx, name, longTTL)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, session.ErrLockHeld):
				h.t.Errorf("concurrent Lock: %v, want nil or ErrLockHeld", err)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		h.t.Fatalf("%d of %d concurrent Locks succeeded, want 1", n, h.cfg.concurrency)
	}
}

// SeenJTI reports false the first time, then true; ids are independent.
func testSeenJTI(h *harness) {
	id, other := h.name("jti"), h.name("jti")
	h.seen(id, longTTL, false)
	h.seen(id, longTTL, true)
	h.seen(id, longTTL, true)
	h.seen(other, longTTL, false)
	h.seen(other, longTTL, true)
}

// SeenJTI forgets an id once its ttl has passed.
func testSeenJTIExpiry(h *harness) {
	if h.cfg.realTTL == 0 {
		// Whether a repeated SeenJTI extends the ttl is left open, so each
		// id is probed once after its first recording.
		before, at := h.name("jti"), h.name("jti")
		h.seen(before, fakeShortTTL, false)
		h.seen(at, fakeShortTTL, false)
		h.clock.Advance(fakeShortTTL - time.Second)
		h.seen(before, fakeShortTTL, true)
		h.clock.Advance(time.Second) // exactly at the ttl
		h.seen(at, longTTL, false)
		h.seen(at, longTTL, true)
		return
	}
	id := h.name("jti")
	h.seen(id, h.shortTTL(), false)
	h.passShortTTL()
	h.seen(id, longTTL, false) // forgotten, and recorded anew for long
	h.seen(id, longTTL, true)
}

// ForgetJTI makes an id unseen again, and no other; forgetting an unknown
// id is not an error.
func testForgetJTI(h *harness) {
	id, other := h.name("jti"), h.name("jti")
	h.seen(id, longTTL, false)
	h.seen(other, longTTL, false)
	h.noErr("ForgetJTI", h.s.ForgetJTI(h.ctx, id))
	h.seen(id, longTTL, false)
	h.seen(id, longTTL, true)
	h.seen(other, longTTL, true)
	h.noErr("ForgetJTI of an unknown id", h.s.ForgetJTI(h.ctx, h.name("jti")))
}

// Of many concurrent SeenJTIs of one id exactly one reports false.
func testSeenJTIConcurrent(h *harness) {
	id := h.name("jti")
	var (
		wg    sync.WaitGroup
		fresh atomic.Int32
	)
	for range h.cfg.concurrency {
		wg.Go(func() {
			seen, err := h.s.SeenJTI(h.ctx, id, longTTL)
			if err != nil {
				h.t.Errorf("concurrent SeenJTI: %v", err)
				return
			}
			if !seen {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if n := fresh.Load(); n != 1 {
		h.t.Fatalf("%d of %d concurrent SeenJTIs of one id reported it unseen, want 1", n, h.cfg.concurrency)
	}
}
