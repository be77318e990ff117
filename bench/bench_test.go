package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/internal/testredis"
)

// TestRunSmoke runs the load benchmark briefly, so that it keeps working:
// every target must answer every request, through a real login.
func TestRunSmoke(t *testing.T) {
	results, err := Run(context.Background(), Options{Duration: 400 * time.Millisecond, Slice: 200 * time.Millisecond, Conns: 4, DataDir: t.TempDir(), Logf: t.Logf,
		Stores: []string{"memory", "bolt", "redis", "postgres"}, RedisAddr: testredis.Addr(t), PostgresURL: testpg.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 6 {
		t.Fatalf("%d results, want 6", len(results))
	}
	for _, r := range results {
		if r.RPS <= 0 || r.Errors != 0 {
			t.Errorf("%s: %.0f req/s, %d errors", r.Target, r.RPS, r.Errors)
		}
	}
	var out bytes.Buffer
	Print(&out, results, time.Second, time.Second, 4)
	if !strings.Contains(out.String(), "bff, bolt store") || !strings.Contains(out.String(), "bff, redis store") || !strings.Contains(out.String(), "bff, postgres store") {
		t.Fatalf("table:\n%s", out.String())
	}
}
