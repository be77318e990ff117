package storeurl_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gobff/bff/session/boltstore"
	"github.com/gobff/bff/session/memstore"
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
