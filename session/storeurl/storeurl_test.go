package storeurl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/internal/testredis"
	"github.com/gobff/bff/session/boltstore"
	"github.com/gobff/bff/session/memstore"
	"github.com/gobff/bff/session/pgstore"
	"github.com/gobff/bff/session/redisstore"
	"github.com/gobff/bff/session/storeurl"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := storeurl.Open(ctx, "memory://")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*memstore.Store); !ok {
		t.Errorf("memory:// opened a %T", s)
	}
	s.Close()

	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "sessions.db")
	s, err = storeurl.Open(ctx, "bolt://"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*boltstore.Store); !ok {
		t.Errorf("bolt:// opened a %T", s)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("bolt file not created: %v", err)
	}

	for _, bad := range []string{"", "memory", "memory://x", "bolt://", "redis-ish://x", "/tmp/x.db"} {
		if _, err := storeurl.Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
		if err := storeurl.Check(bad); err == nil {
			t.Errorf("Check(%q) succeeded", bad)
		}
	}
}

// TestOpenSharedStores opens the shared Redis and PostgreSQL servers by URL.
func TestOpenSharedStores(t *testing.T) {
	ctx := context.Background()
	addr := testredis.Addr(t)
	s, err := storeurl.Open(ctx, "redis://"+addr+"?prefix="+testredis.Prefix(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*redisstore.Store); !ok || s.Ping(ctx) != nil {
		t.Errorf("redis:// opened a %T", s)
	}
	s.Close()

	u := testpg.URL(t)
	s, err = storeurl.Open(ctx, u+"&bff_schema="+testpg.Schema(t, u))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*pgstore.Store); !ok || s.Ping(ctx) != nil {
		t.Errorf("postgres:// opened a %T", s)
	}
	s.Close()
}

func TestCheck(t *testing.T) {
	for _, good := range []string{
		"memory://", "bolt://./data/s.db", "redis://127.0.0.1:6379/0", "rediss://user:pw@cache.example:6380?prefix=app:",
		"redis-cluster://a:7000,b:7001", "redis-sentinel://s1:26379,s2:26379/mymaster",
		"postgres://bff:pw@db.example/bff?sslmode=require&bff_schema=bff", "postgresql://db.example/bff?bff_migrate=false",
	} {
		if err := storeurl.Check(good); err != nil {
			t.Errorf("Check(%q): %v", good, err)
		}
	}
	for _, bad := range []string{
		"redis://127.0.0.1:6379?nonsense=1", "redis-sentinel://s1:26379", "postgres://db.example/bff?bff_migrate=maybe", "mysql://db",
	} {
		if err := storeurl.Check(bad); err == nil {
			t.Errorf("Check(%q) succeeded", bad)
		}
	}
	// Errors do not repeat a password.
	if err := storeurl.Check("redis://user:hunter2@127.0.0.1:6379?nonsense=1"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Check error shows the password: %v", err)
	}
	for _, bad := range []string{"postgres:/u:hunter2@host/db", "redis-ish://u:hunter2@h"} {
		if _, err := storeurl.Open(context.Background(), bad); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", bad, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"memory://", "memory://"},
		{"bolt://./data/s.db", "bolt://./data/s.db"},
		{"redis://:s3cret@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"redis://h:6379/0?password=s3cret&prefix=bff:", "redis://h:6379/0?password=xxxxx&prefix=bff:"},
		{"redis://user:1234/x@host:6379", "redis://user:xxxxx@host:6379"},
		{"redis-sentinel://u:p@s1:26379,s2:26379/m?sentinel_password=s3cret&password=p2", "redis-sentinel://u:xxxxx@s1:26379,s2:26379/m?sentinel_password=xxxxx&password=xxxxx"},
		{"postgres://bff@db/bff?password=s3cret&sslmode=require", "postgres://bff:xxxxx@db/bff?password=xxxxx&sslmode=require"},
		{"postgres://bff:p%40ss@db/bff?sslpassword=s&sslkey=/k.pem", "postgres://bff:xxxxx@db/bff?sslpassword=xxxxx&sslkey=xxxxx"},
		{"s3cret", "xxxxx"},
	} {
		if got := storeurl.Redact(c.raw); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.raw, got, c.want)
		}
	}
}
