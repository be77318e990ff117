// Package storeurl opens a session store named by a URL, as bff's
// configuration file names it: memory:// or bolt://PATH.
package storeurl

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/boltstore"
	"github.com/gobff/bff/session/memstore"
)

// Open returns the store that raw names:
//
//	memory://             in memory, gone when the process ends
//	bolt://PATH           an embedded bbolt file; bolt://./data/s.db is relative
//	                      to the working directory, bolt:///var/lib/bff/s.db absolute
func Open(ctx context.Context, raw string) (session.Store, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("store %q: want memory:// or bolt://PATH", raw)
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
	default:
		return nil, fmt.Errorf("store %q: unknown scheme %q (want memory or bolt)", raw, scheme)
	}
}

// Check reports whether raw names a store Open knows, without opening it.
func Check(raw string) error {
	scheme, rest, ok := strings.Cut(raw, "://")
	switch {
	case !ok:
		return fmt.Errorf("%q: want memory:// or bolt://PATH", raw)
	case scheme == "memory" && rest == "", scheme == "bolt" && rest != "":
		return nil
	default:
		return fmt.Errorf("%q: want memory:// or bolt://PATH", raw)
	}
}
