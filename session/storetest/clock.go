package storetest

import (
	"sync"
	"time"
)

// Clock is a fake clock for the stores under test. The suite hands one to
// every store it creates (pass [Clock.Now] as the store's clock) and moves it
// with [Clock.Advance] to expire sessions, locks and one-time identifiers
// without sleeping. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start until advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's current time. It does not allocate, so stores can
// call it on hot paths measured by allocation benchmarks.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward if d is negative) and returns
// the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}
