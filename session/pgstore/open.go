package pgstore

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultConnectTimeout bounds each connection attempt of a pool [Open]
// makes when the URL sets no connect_timeout (or sets 0), so that requests
// fail within seconds, not after the operating system's TCP timeout, while
// the server is unreachable.
const DefaultConnectTimeout = 5 * time.Second

// URL query parameters of Open's own. They are removed before pgx parses the
// URL: the server rejects runtime parameters it does not know.
const (
	paramSchema  = "bff_schema"
	paramMigrate = "bff_migrate"
)

// Open connects to the database that connString names and returns a store
// on a pool of its own, which Close closes. connString is a postgres:// or
// postgresql:// URL, with any of libpq's and pgx's parameters (sslmode,
// pool_max_conns, ...) and two of Open's own:
//
//	bff_schema=NAME    the schema, as WithSchema
//	bff_migrate=false  check the schema, do not migrate it, as WithMigrate
//
// The URL's parameters take precedence over opts, since the URL is the
// operator's configuration. Open fails if the server is unreachable, with
// the connection error.
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	clean, urlOpts, err := splitURL(connString)
	if err != nil {
		return nil, err
	}
	cfg, err := poolConfig(clean)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	s, err := newStore(ctx, pool, true, newOptions(append(opts, urlOpts...)))
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// poolConfig parses a URL without Open's own parameters.
func poolConfig(connString string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's message shows the URL with its password masked.
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

// splitURL checks that raw is a PostgreSQL URL and takes Open's parameters
// out of its query. It leaves the rest of raw byte for byte as it was, so
// that pgx sees what the operator wrote (including multi-host lists that
// net/url would not round-trip). Errors never quote raw, which may hold a
// password.
func splitURL(raw string) (string, []Option, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return "", nil, fmt.Errorf("pgstore: open: want a postgres:// or postgresql:// URL")
	}
	if scheme != "postgres" && scheme != "postgresql" {
		return "", nil, fmt.Errorf("pgstore: open: URL scheme %q, want postgres or postgresql", scheme)
	}
	base, query, hasQuery := strings.Cut(raw, "?")
	if !hasQuery {
		return raw, nil, nil
	}
	var (
		kept []string
		opts []Option
		seen = map[string]bool{}
	)
	for part := range strings.SplitSeq(query, "&") {
		rawName, rawValue, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return "", nil, fmt.Errorf("pgstore: open: URL query: %w", err)
		}
		if name != paramSchema && name != paramMigrate {
			kept = append(kept, part)
			continue
		}
		if seen[name] {
			return "", nil, fmt.Errorf("pgstore: open: URL parameter %s given twice", name)
		}
		seen[name] = true
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return "", nil, fmt.Errorf("pgstore: open: URL parameter %s: %w", name, err)
		}
		switch name {
		case paramSchema:
			if err := checkSchemaName(value); err != nil {
				return "", nil, fmt.Errorf("pgstore: open: URL parameter %s: %w", name, err)
			}
			opts = append(opts, WithSchema(value))
		case paramMigrate:
			migrate, err := strconv.ParseBool(value)
			if err != nil {
				return "", nil, fmt.Errorf("pgstore: open: URL parameter %s=%q: want true or false", name, value)
			}
			opts = append(opts, WithMigrate(migrate))
		}
	}
	if len(kept) == 0 {
		return base, opts, nil
	}
	return base + "?" + strings.Join(kept, "&"), opts, nil
}

// CheckURL reports whether connString is a URL that [Open] accepts,
// without connecting.
func CheckURL(connString string) error {
	clean, _, err := splitURL(connString)
	if err != nil {
		return err
	}
	_, err = poolConfig(clean)
	return err
}
