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
		return nil, fmt.Errorf("store %s: %s", Redact(raw), want)
	}
	switch scheme {
	case "memory":
		if rest != "" {
			return nil, fmt.Errorf("store %s: memory:// takes nothing after the scheme", Redact(raw))
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

// Redact returns raw fit for a log line: the password of its user info and
// the value of every query parameter whose name mentions a password, a
// secret or a key are replaced by "xxxxx". It does not need raw to be a
// valid URL (a Cluster's or Sentinel's address list is not one to net/url,
// and a password may hold an unescaped "/" or "@"): the user info is
// everything before the last "@" ahead of the query.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "xxxxx" // not a URL this package knows; it may be anything
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, _, _ := strings.Cut(rest[:at], ":")
		rest = user + ":xxxxx" + rest[at:]
	}
	out := scheme + "://" + rest
	if !hasQuery {
		return out
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		name, _, hasValue := strings.Cut(p, "=")
		lower := strings.ToLower(name)
		if hasValue && (strings.Contains(lower, "pass") || strings.Contains(lower, "secret") || strings.Contains(lower, "key")) {
			params[i] = name + "=xxxxx"
		}
	}
	return out + "?" + strings.Join(params, "&")
}
