// Package pgstore is a [session.Store] in PostgreSQL, for bff deployments of
// several instances that share sessions. It uses a pgx connection pool.
//
// The store keeps three tables in its schema (public unless configured):
//
//	bff_sessions  key (SHA-256 of the cookie), version, iss, sub, sid,
//	              created_at, expires_at, idle_expires_at, data (sealed)
//	bff_locks     name, token (random fencing token), expires_at
//	bff_jti       id, expires_at
//
// and bff_schema_migrations, the migrations applied. The migrations are
// embedded; [New] applies pending ones at start-up unless told not to (see
// [Migrate]).
//
// Every operation is one SQL statement, so it is atomic without an explicit
// transaction and costs one round trip: Create is an INSERT that takes over
// only an expired row, Update a compare-and-set UPDATE on the version,
// DeleteBySID and DeleteBySub a DELETE ... RETURNING on an index. Only a
// failed Update reads once more, to tell a version conflict from a session
// that is gone, and DeleteExpired works through a backlog in batches.
//
// Session expiry is judged against the store's clock ([WithClock]), passed
// to every statement as a parameter, because a record carries its own ends.
// Locks and one-time ids expire by the server's clock (now()), the one clock
// all instances share. Times are kept to the microsecond.
//
// Issuers, subjects, sids, lock names and one-time ids are PostgreSQL text:
// one that holds a NUL byte, or (in a UTF8 database) is not valid UTF-8,
// is refused with an error rather than stored altered.
//
// When the server is unreachable every method fails with the pool's error
// (never [session.ErrNotFound]) as soon as the connection attempt fails,
// and the store recovers by itself when the server is back: the pool checks
// idle connections before use and dials new ones. A connection attempt is
// bounded by the connect timeout ([Open] sets one); a statement on a
// connection that silently stopped answering is bounded only by the
// caller's context.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gobff/bff/session"
)

// ErrClosed is returned by every method of a closed Store but Close.
var ErrClosed = errors.New("pgstore: store is closed")

// Store is a [session.Store] in PostgreSQL. Its methods are safe for
// concurrent use, and any number of Stores, in any number of processes,
// may share one schema.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool // Open made the pool, so Close closes it
	now      func() time.Time
	schema   string
	q        queries
	// opTimeout bounds an operation without a deadline of its own.
	opTimeout time.Duration
	closed    atomic.Bool
}

var _ session.Store = (*Store)(nil)

// New returns a store on pool. It applies pending migrations first, or with
// [WithMigrate] false only checks that there are none. Close does not close
// pool: it is the caller's.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	return newStore(ctx, pool, false, newOptions(opts))
}

func newStore(ctx context.Context, pool *pgxpool.Pool, ownsPool bool, o options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: nil pool")
	}
	if o.now == nil {
		return nil, errors.New("pgstore: nil clock")
	}
	if err := checkSchemaName(o.schema); err != nil {
		return nil, err
	}
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	if o.migrate {
		err = migrate(ctx, pool, o.schema, ms)
	} else {
		err = checkMigrated(ctx, pool, o.schema, ms)
	}
	if err != nil {
		return nil, err
	}
	return &Store{
		pool:      pool,
		ownsPool:  ownsPool,
		now:       o.now,
		schema:    o.schema,
		q:         newQueries(o.schema),
		opTimeout: o.opTimeout,
	}, nil
}

// bound gives ctx the store's operation timeout when it has no deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || s.opTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.opTimeout)
}

// Schema returns the name of the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Ping implements [session.Store.Ping]: a round trip on a pooled
// connection.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}

// Close implements [session.Store.Close]. It closes the pool if [Open] made
// it, waiting for statements in flight; a pool passed to [New] stays open.
// Closing a closed store is a no-op.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.ownsPool {
		s.pool.Close()
	}
	return nil
}
