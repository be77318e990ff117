package redisstore

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff/internal/testredis"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/storetest"
)

// TestConformance runs the conformance suite against the shared Redis
// server and, after every subtest, checks the invariants the interface
// hides (see checkConsistent).
func TestConformance(t *testing.T) {
	addr := testredis.Addr(t)
	b := &backend{
		url:    "redis://" + addr,
		prefix: testredis.Prefix(t, addr),
		client: func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: addr}) },
	}
	storetest.Run(t, b.newStore,
		storetest.SharedBackend(),
		storetest.RealTimeTTL(100*time.Millisecond),
		storetest.ServerSideExpiry(),
		storetest.Reopen(b.reopen))
}

// TestConformanceCluster runs the suite against a private three-node Redis
// Cluster, where a script or transaction touching keys of two hash slots
// fails with CROSSSLOT.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	addrs := testredis.StartCluster(t, 3)
	b := &backend{
		url:    "redis-cluster://" + strings.Join(addrs, ","),
		prefix: "bfftest:",
		client: func() redis.UniversalClient { return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}) },
	}
	storetest.Run(t, b.newStore,
		storetest.RealTimeTTL(100*time.Millisecond),
		storetest.ServerSideExpiry(),
		storetest.Reopen(b.reopen))
}

// TestConformanceSentinel runs the suite through a Redis Sentinel, with a
// password on the primary: a check of the redis-sentinel:// URL form.
func TestConformanceSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a primary and a Sentinel")
	}
	primary := testredis.Start(t, testredis.Options{Args: []string{"--requirepass", "pw"}})
	sentinel := testredis.StartSentinel(t, "primary", primary.Addr(), "pw")
	b := &backend{
		url:    "redis-sentinel://:pw@" + sentinel + "/primary",
		prefix: "bfftest:",
		client: func() redis.UniversalClient {
			return redis.NewFailoverClient(&redis.FailoverOptions{
				MasterName: "primary", SentinelAddrs: []string{sentinel}, Password: "pw",
			})
		},
	}
	storetest.Run(t, b.newStore,
		storetest.RealTimeTTL(100*time.Millisecond),
		storetest.ServerSideExpiry(),
		storetest.Reopen(b.reopen),
		storetest.Concurrency(20))
}

// backend makes the suite's stores, each under a prefix of its own below
// the run's prefix, so that a subtest's consistency check sees its keys
// only.
type backend struct {
	url    string
	prefix string
	client func() redis.UniversalClient // for the checks, as the store's is closed by then
	n      atomic.Int64
}

func (b *backend) newStore(tb testing.TB, clock *storetest.Clock) session.Store {
	prefix := b.prefix + strconv.FormatInt(b.n.Add(1), 10) + ":"
	check := b.client()
	tb.Cleanup(func() { check.Close() })
	// Cleanups run last-in first-out: this one after the suite has closed
	// the store, and before check is closed.
	tb.Cleanup(func() { checkConsistent(tb, check, prefix, clock.Now()) })
	return b.open(tb, prefix, clock)
}

func (b *backend) reopen(tb testing.TB, clock *storetest.Clock, old session.Store) session.Store {
	prefix := old.(*Store).Prefix()
	if err := old.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.open(tb, prefix, clock)
}

func (b *backend) open(tb testing.TB, prefix string, clock *storetest.Clock) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), b.url+"?prefix="+url.QueryEscape(prefix), WithClock(clock.Now))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// checkConsistent checks what the package documentation promises about the
// keys under prefix at now, the subtest's last clock reading:
//
//   - every session is in the sub index and, if it has a sid, in the sid
//     index of its current fields, with a score no earlier than its
//     absolute end, unless that end has passed (then the entries may have
//     been trimmed);
//   - every session expires on the server exactly at its end;
//   - every index set expires, no earlier than its latest member.
func checkConsistent(tb testing.TB, c redis.UniversalClient, prefix string, now time.Time) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := New(c, WithPrefix(prefix))
	keys, err := scanKeys(ctx, c, prefix+"s:*")
	if err != nil {
		tb.Errorf("consistency check: %v", err)
		return
	}
	for _, key := range keys {
		m := strings.TrimSuffix(strings.TrimPrefix(key, prefix+"s:{"), "}")
		k, err := parseMember(m)
		if err != nil {
			tb.Errorf("consistency check: session key %q: %v", key, err)
			continue
		}
		vals, err := c.HMGet(ctx, key, recordFields[:]...).Result()
		if err != nil {
			tb.Errorf("consistency check: %v", err)
			continue
		}
		rec, found, err := decodeRecord(k, vals)
		if err != nil || !found {
			tb.Errorf("consistency check: session %s: found %v, %v", key, found, err)
			continue
		}
		if got, want := c.PExpireTime(ctx, key).Val(), time.Duration(end(rec).UnixMilli())*time.Millisecond; got != want {
			tb.Errorf("consistency check: session %v expires on the server at %v, want %v", k, got, want)
		}
		if !rec.ExpiresAt.After(now) {
			continue
		}
		idxs := []string{s.indexKey(bySub, rec.Issuer, rec.Subject)}
		if rec.SID != "" {
			idxs = append(idxs, s.indexKey(bySID, rec.Issuer, rec.SID))
		}
		for _, idx := range idxs {
			score, err := c.ZScore(ctx, idx, m).Result()
			if err != nil {
				tb.Errorf("consistency check: session %v (sub %q, sid %q) not in index %s: %v", k, rec.Subject, rec.SID, idx, err)
				continue
			}
			if int64(score) < rec.ExpiresAt.UnixMilli() {
				tb.Errorf("consistency check: session %v has score %v in %s, before its end %v", k, score, idx, rec.ExpiresAt.UnixMilli())
			}
		}
	}
	for _, kind := range []string{bySub, bySID} {
		idxs, err := scanKeys(ctx, c, prefix+kind+":*")
		if err != nil {
			tb.Errorf("consistency check: %v", err)
			return
		}
		for _, idx := range idxs {
			last, err := c.ZRangeWithScores(ctx, idx, -1, -1).Result()
			if err != nil || len(last) != 1 {
				tb.Errorf("consistency check: index %s: %v %v", idx, last, err)
				continue
			}
			exp := c.PExpireTime(ctx, idx).Val()
			if exp < 0 || exp < time.Duration(last[0].Score)*time.Millisecond {
				tb.Errorf("consistency check: index %s expires at %v, before its last member's end %v", idx, exp, last[0].Score)
			}
		}
	}
}

// scanKeys returns the keys matching pattern, on every primary of a
// cluster.
func scanKeys(ctx context.Context, c redis.UniversalClient, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		return keys, c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return keys, scan(ctx, c)
	default:
		return nil, fmt.Errorf("cannot scan a %T", c)
	}
}
