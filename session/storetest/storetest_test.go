package storetest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
	"github.com/gobff/bff/session/storetest"
)

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := storetest.NewClock(start)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			c.Advance(time.Second)
			_ = c.Now()
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

// The suite's real-time path, on a store whose clock is the fake clock plus
// the real time elapsed since the store was made, as a store that takes
// session times from the fake clock and ttls from a server clock would see
// them.
func TestRealTimeTTL(t *testing.T) {
	storetest.Run(t, func(_ testing.TB, clock *storetest.Clock) session.Store {
		start := time.Now()
		return memstore.New(memstore.WithClock(func() time.Time {
			return clock.Now().Add(time.Since(start))
		}))
	}, storetest.RealTimeTTL(20*time.Millisecond))
}

// The relaxed options still run every subtest.
func TestRelaxedOptions(t *testing.T) {
	newStore := func(_ testing.TB, clock *storetest.Clock) session.Store {
		return memstore.New(memstore.WithClock(clock.Now))
	}
	t.Run("SharedBackend", func(t *testing.T) {
		storetest.Run(t, newStore, storetest.SharedBackend(), storetest.Concurrency(8))
	})
	t.Run("ServerSideExpiry", func(t *testing.T) {
		storetest.Run(t, newStore, storetest.ServerSideExpiry())
	})
}
