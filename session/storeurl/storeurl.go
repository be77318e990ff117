// Package storeurl opens a session store named by a URL, as bff's
// configuration file names it (session.store).
package storeurl

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/boltstore"
	"github.com/gobff/bff/session/memstore"
	"github.com/gobff/bff/session/pgstore"
	"github.com/gobff/bff/session/redisstore"
)

// want lists the URL forms, for error messages.
const want = "want memory://, bolt://PATH, redis://, rediss://, redis-cluster://, redis-sentinel:// or postgres://"

// Open returns the store that raw names:
//
//	memory://             in memory, gone when the process ends
//	bolt://PATH           an embedded bbolt file, for one process; bolt://./data/s.db
//	                      is relative to the working directory, bolt:///var/lib/bff/s.db
//	                      absolute
//	redis://HOST:PORT/DB  Redis, shared by many bff instances; also rediss:// (TLS),
//	                      redis-cluster://H1,H2,... and redis-sentinel://S1,S2/MASTER
//	                      (see redisstore.Open), with prefix= for the key prefix
//	postgres://...        PostgreSQL, shared by many bff instances (also
//	                      postgresql://), with bff_schema= and bff_migrate=false
//	                      (see pgstore.Open)
//
// Open connects to a shared store and fails if it cannot reach it.
func Open(ctx context.Context, raw string) (session.Store, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("store %q: %s", raw, want)
	}
	switch scheme {
	case "memory":
		if rest != "" {
			return nil, fmt.Errorf("store %q: memory:// takes nothing after the scheme", raw)
		}
		return memstore.New(), nil
	case "bolt":
		if rest == "" {
			return nil, fmt.Errorf("store %q: bolt:// needs a file path", raw)
		}
		store, err := boltstore.Open(filepath.Clean(rest))
		if err != nil {
			return nil, fmt.Errorf("store %q: %w", raw, err)
		}
		return store, nil
	case "redis", "rediss", "redis-cluster", "rediss-cluster", "redis-sentinel", "rediss-sentinel":
		// The store's errors name the URL with its password masked.
		return redisstore.Open(ctx, raw)
	case "postgres", "postgresql":
		return pgstore.Open(ctx, raw)
	default:
		return nil, fmt.Errorf("store: unknown scheme %q (%s)", scheme, want)
	}
}

// Check reports whether raw names a store Open knows, without opening it.
func Check(raw string) error {
	scheme, rest, ok := strings.Cut(raw, "://")
	switch {
	case !ok:
		return fmt.Errorf("%s", want)
	case scheme == "memory" && rest == "", scheme == "bolt" && rest != "":
		return nil
	case strings.HasPrefix(scheme, "redis"):
		return redisstore.CheckURL(raw)
	case scheme == "postgres" || scheme == "postgresql":
		return pgstore.CheckURL(raw)
	default:
		return fmt.Errorf("%s", want)
	}
}
