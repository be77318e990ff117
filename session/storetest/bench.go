package storetest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gobff/bff/session"
)

// benchSessions is how many sessions the benchmarks preload, and
// benchDataSize the size of each one's Data, about a sealed ID, access and
// refresh token.
const (
	benchSessions = 1024
	benchDataSize = 2048
)

// BenchGet measures Get of live sessions, the store call on the path of every
// proxied API request. A store package wires it up as
//
//	func BenchmarkGet(b *testing.B) { storetest.BenchGet(b, newStore) }
//
// and runs it with go test -run=^$ -bench=Get -benchmem. It reports
// allocations; an in-memory store should make none.
func BenchGet(b *testing.B, newStore NewStore) {
	s, keys := benchStore(b, newStore)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchGetParallel is BenchGet from GOMAXPROCS goroutines at once.
func BenchGetParallel(b *testing.B, newStore NewStore) {
	s, keys := benchStore(b, newStore)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// Bench measures the store's main operations as sub-benchmarks: Get,
// GetParallel, Create, Update, Touch, SeenJTI and Lock (with Release).
//
//	func BenchmarkStore(b *testing.B) { storetest.Bench(b, newStore) }
func Bench(b *testing.B, newStore NewStore) {
	b.Run("Get", func(b *testing.B) { BenchGet(b, newStore) })
	b.Run("GetParallel", func(b *testing.B) { BenchGetParallel(b, newStore) })
	b.Run("Create", func(b *testing.B) {
		s, _ := benchStore(b, newStore)
		ctx := b.Context()
		rec := benchRecord(time.Now(), 0)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			rec.Key = session.KeyOf("bench-create-" + strconv.Itoa(i))
			if err := s.Create(ctx, rec); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Update", func(b *testing.B) {
		s, keys := benchStore(b, newStore)
		ctx := b.Context()
		rec, err := s.Get(ctx, keys[0])
		if err != nil {
			b.Fatal(err)
		}
		upd := *rec
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Update(ctx, &upd); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Touch", func(b *testing.B) {
		s, keys := benchStore(b, newStore)
		ctx := b.Context()
		idle := time.Now().Add(time.Hour)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := s.Touch(ctx, keys[i%len(keys)], idle); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("SeenJTI", func(b *testing.B) {
		s, _ := benchStore(b, newStore)
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.SeenJTI(ctx, "bench-jti-"+strconv.Itoa(i), time.Hour); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Lock", func(b *testing.B) {
		s, _ := benchStore(b, newStore)
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			l, err := s.Lock(ctx, "bench-lock", time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchStore returns a store preloaded with benchSessions live sessions and
// their keys. The store's clock is real time, which the sessions outlive.
func benchStore(b *testing.B, newStore NewStore) (session.Store, []session.Key) {
	b.Helper()
	clock := NewClock(time.Now())
	s := newStore(b, clock)
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	ctx := b.Context()
	keys := make([]session.Key, benchSessions)
	for i := range keys {
		rec := benchRecord(clock.Now(), i)
		if err := s.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
		keys[i] = rec.Key
	}
	return s, keys
}

func benchRecord(now time.Time, i int) *session.Record {
	data := make([]byte, benchDataSize)
	for j := range data {
		data[j] = byte(i + j)
	}
	return &session.Record{
		Key:           session.KeyOf(fmt.Sprintf("bench-session-%d", i)),
		Issuer:        "https://op.example",
		Subject:       fmt.Sprintf("user-%d", i%100),
		SID:           fmt.Sprintf("op-session-%d", i),
		CreatedAt:     now,
		ExpiresAt:     now.Add(24 * time.Hour),
		IdleExpiresAt: now.Add(12 * time.Hour),
		Data:          data,
	}
}
