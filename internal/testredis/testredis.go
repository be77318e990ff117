// Package testredis gives tests real Redis servers: the machine's shared
// server ([Addr], with a [Prefix] per test), private throwaway servers that
// can be stopped and restarted ([Start]), private clusters
// ([StartCluster]) and Sentinels ([StartSentinel]). No mocks: Redis
// semantics (Lua, expiry, cluster slots, failover) are what the tests are
// about.
//
// When what a test needs is missing (no server at the shared address, no
// redis-server binary), the test is skipped with a message saying what is
// missing, so that a laptop without Redis still runs the rest. CI sets
// BFF_REQUIRE_SERVICES=1, and then a missing service fails the test: a
// skip there would hide the tests that matter.
//
// The package talks to servers with [Do], a minimal RESP client, so that it
// depends on nothing but the standard library and the redis-server and
// redis-cli binaries.
package testredis

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Environment variables the package reads.
const (
	// EnvAddr overrides the address of the shared server, DefaultAddr.
	EnvAddr = "BFF_TEST_REDIS_ADDR"
	// EnvRequire, set to 1, turns skips for missing services into failures.
	EnvRequire = "BFF_REQUIRE_SERVICES"
)

// DefaultAddr is where the shared Redis server listens on development and
// CI machines.
const DefaultAddr = "127.0.0.1:6379"

// Addr returns the address of the shared Redis server ($BFF_TEST_REDIS_ADDR,
// default DefaultAddr) after checking that it answers PING. The server is
// shared with other tests and processes: use keys under a [Prefix] of the
// test's own.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		addr = DefaultAddr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := ping(ctx, addr); err != nil {
		missing(t, "no Redis server answers at %s (set %s to use another): %v", addr, EnvAddr, err)
	}
	return addr
}

// Prefix returns a key prefix unique to this test run, "bfftest:RANDOM:",
// and deletes every key under it from the server at addr when the test
// ends, so that tests on a shared server neither see nor leave behind each
// other's keys.
func Prefix(t testing.TB, addr string) string {
	t.Helper()
	prefix := "bfftest:" + strings.ToLower(rand.Text()[:12]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := DeletePrefix(ctx, addr, prefix); err != nil {
			t.Errorf("testredis: deleting keys %s*: %v", prefix, err)
		}
	})
	return prefix
}

// DeletePrefix deletes every key that starts with prefix from the server at
// addr (SCAN and UNLINK; prefix must hold no glob characters) and returns
// how many it deleted.
func DeletePrefix(ctx context.Context, addr, prefix string) (int, error) {
	if strings.ContainsAny(prefix, `*?[]\`) {
		return 0, fmt.Errorf("prefix %q holds glob characters", prefix)
	}
	n := 0
	cursor := "0"
	for {
		reply, err := Do(ctx, addr, "SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			return n, err
		}
		page, ok := reply.([]any)
		if !ok || len(page) != 2 {
			return n, fmt.Errorf("unexpected SCAN reply %v", reply)
		}
		cursor, _ = page[0].(string)
		keys, _ := page[1].([]any)
		if len(keys) > 0 {
			args := []string{"UNLINK"}
			for _, k := range keys {
				s, _ := k.(string)
				args = append(args, s)
			}
			if _, err := Do(ctx, addr, args...); err != nil {
				return n, err
			}
			n += len(keys)
		}
		if cursor == "0" || cursor == "" {
			return n, nil
		}
	}
}

// missing skips the test, or fails it if EnvRequire is 1.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "testredis: " + fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s (%s=1: services are required)", msg, EnvRequire)
	}
	t.Skip(msg)
}
