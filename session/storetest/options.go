package storetest

import (
	"testing"
	"time"

	"github.com/gobff/bff/session"
)

// NewStore returns a store for one subtest (or one benchmark) of the suite.
//
// The store must judge session expiry, and unless the suite runs with
// [RealTimeTTL] also lock and one-time-id expiry, against clock: pass
// clock.Now as the store's clock.
//
// The suite closes every store it gets from NewStore when the subtest ends,
// so NewStore must not close it itself; other resources (temporary files, a
// database schema, a client) belong to NewStore, which should release them
// with tb.Cleanup. Cleanups run last-in first-out, so they run after the
// suite has closed the store. NewStore reports setup failures with tb.Fatal.
type NewStore func(tb testing.TB, clock *Clock) session.Store

// ReopenStore closes old and returns a new store on the same data, as a
// process restart (or, for a shared store, a new client) would see it. The
// new store must use clock like the old one did.
type ReopenStore func(tb testing.TB, clock *Clock, old session.Store) session.Store

// Option adjusts [Run] to a store's nature.
type Option func(*config)

type config struct {
	realTTL     time.Duration // zero: lock and jti ttls run on the fake clock
	reopen      ReopenStore
	shared      bool
	serverSweep bool
	concurrency int
}

func newConfig(opts []Option) config {
	c := config{concurrency: 50}
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

// RealTimeTTL tells the suite that the store enforces lock and one-time-id
// ttls with a clock of its own (a Redis or PostgreSQL server's) rather than
// the injected [Clock]. The suite then checks their expiry with ttl, a short
// real duration, and sleeps of twice ttl instead of advancing the fake
// clock; ttl <= 0 means 200ms. Session expiry is still judged against the
// injected clock, because a Record carries its own ExpiresAt and
// IdleExpiresAt.
func RealTimeTTL(ttl time.Duration) Option {
	if ttl <= 0 {
		ttl = 200 * time.Millisecond
	}
	return func(c *config) { c.realTTL = ttl }
}

// Reopen enables the Reopen subtest, which checks that sessions, their
// versions and indexes, held locks and recorded one-time ids survive a
// restart. Persistent and shared stores should use it.
func Reopen(fn ReopenStore) Option {
	return func(c *config) { c.reopen = fn }
}

// SharedBackend tells the suite that the stores it gets share one backend
// with other tests that may run at the same time. Every subtest already uses
// keys, issuers, lock names and one-time ids of its own; SharedBackend
// additionally lets DeleteExpired report sessions of other tests in its
// count, so the suite only checks that the count covers the subtest's own.
func SharedBackend() Option {
	return func(c *config) { c.shared = true }
}

// ServerSideExpiry tells the suite that the store's DeleteExpired may be a
// no-op because its server reclaims expired entries itself (the contract
// allows it). The suite then does not check DeleteExpired's count, only
// that it succeeds, leaves live sessions alone and that expired sessions stay
// invisible to every read.
func ServerSideExpiry() Option {
	return func(c *config) { c.serverSweep = true }
}

// Concurrency sets how many goroutines the concurrency subtests race against
// each other (default 50).
func Concurrency(n int) Option {
	return func(c *config) {
		if n > 1 {
			c.concurrency = n
		}
	}
}
