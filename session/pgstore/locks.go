package pgstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/gobff/bff/session"
)

// tokenSize is the length of a lock's fencing token: random, so that no two
// leases, in any process, share one.
const tokenSize = 16

// Lock implements [session.Store.Lock]. The lock is a row of bff_locks that
// expires by the database server's clock, so every instance agrees on when
// it is free. ttl is kept to the microsecond, rounded up.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (session.Lease, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("pgstore: lock %q: ttl %v is not positive", name, ttl)
	}
	token := make([]byte, tokenSize)
	rand.Read(token) // never fails, says crypto/rand
	tag, err := s.pool.Exec(ctx, s.q.lock, name, token, micros(ttl))
	if err != nil {
		return nil, fmt.Errorf("pgstore: lock %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, fmt.Errorf("pgstore: lock %q: %w", name, session.ErrLockHeld)
	}
	return &lease{s: s, name: name, token: token}, nil
}

// lease is a lock row held under a token.
type lease struct {
	s     *Store
	name  string
	token []byte
}

// Release implements [session.Lease.Release]. It deletes the lock row only if
// it still carries the lease's token: a lease that outlived its ttl leaves
// the next holder's lock alone.
func (l *lease) Release(ctx context.Context) error {
	ctx, cancel := l.s.bound(ctx)
	defer cancel()
	if l.s.closed.Load() {
		return ErrClosed
	}
	if _, err := l.s.pool.Exec(ctx, l.s.q.release, l.name, l.token); err != nil {
		return fmt.Errorf("pgstore: release lock %q: %w", l.name, err)
	}
	return nil
}

// SeenJTI implements [session.Store.SeenJTI] with one INSERT that writes a
// row only for an id not seen within its ttl, by the database server's
// clock. A repeated id keeps its original ttl.
func (s *Store) SeenJTI(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return false, ErrClosed
	}
	if ttl <= 0 {
		return false, fmt.Errorf("pgstore: seen jti: ttl %v is not positive", ttl)
	}
	tag, err := s.pool.Exec(ctx, s.q.seenJTI, id, micros(ttl))
	if err != nil {
		return false, fmt.Errorf("pgstore: seen jti: %w", err)
	}
	return tag.RowsAffected() == 0, nil
}

// ForgetJTI implements [session.Store.ForgetJTI] with one DELETE.
func (s *Store) ForgetJTI(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return ErrClosed
	}
	if _, err := s.pool.Exec(ctx, s.q.forgetJTI, id); err != nil {
		return fmt.Errorf("pgstore: forget jti: %w", err)
	}
	return nil
}

// micros returns d in whole microseconds, PostgreSQL's precision, rounded up
// so that a positive ttl never becomes zero.
func micros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if d%time.Microsecond != 0 {
		us++
	}
	return us
}
