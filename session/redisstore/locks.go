package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff/session"
)

// Lock implements [session.Store.Lock] with SET NX PX under a random token,
// so that Release frees only its own lock. The ttl runs on the server's
// clock. ttl must be positive; it is rounded up to whole milliseconds.
//
// SET also has GET: should the client resend the command because the reply
// was lost (go-redis retries), the lock it finds holds this very token and
// is ours rather than held by someone else.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (session.Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("redisstore: lock %q: ttl %v is not positive", name, ttl)
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	token := rand.Text()
	key := s.lockKey(name)
	held, err := s.setNX(ctx, key, token, ttl)
	if err != nil {
		return nil, fmt.Errorf("redisstore: lock %q: %w", name, classify(err))
	}
	if held {
		return nil, fmt.Errorf("redisstore: lock %q: %w", name, session.ErrLockHeld)
	}
	return &lease{s: s, key: key, token: token}, nil
}

// lease is a lock held under a token no other lease has.
type lease struct {
	s     *Store
	key   string
	token string
}

// Release implements [session.Lease.Release] with a compare-and-delete
// script. Releasing a lease that no longer holds its lock is a no-op.
func (l *lease) Release(ctx context.Context) error {
	if l.s.closed.Load() {
		return ErrClosed
	}
	if err := l.s.scripts.release.Run(ctx, l.s.client, []string{l.key}, l.token).Err(); err != nil {
		return fmt.Errorf("redisstore: release %q: %w", l.key, classify(err))
	}
	return nil
}

// SeenJTI implements [session.Store.SeenJTI] with SET NX PX, atomic on the
// server: of concurrent callers exactly one sets the key. The ttl runs on
// the server's clock and a repeated id keeps its original ttl. ttl must be
// positive; it is rounded up to whole milliseconds. As in Lock, a random
// token tells a resent command from another caller.
func (s *Store) SeenJTI(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("redisstore: seen jti: ttl %v is not positive", ttl)
	}
	if s.closed.Load() {
		return false, ErrClosed
	}
	seen, err := s.setNX(ctx, s.jtiKey(id), rand.Text(), ttl)
	if err != nil {
		return false, fmt.Errorf("redisstore: seen jti: %w", classify(err))
	}
	return seen, nil
}

// ForgetJTI implements [session.Store.ForgetJTI] with one DEL.
func (s *Store) ForgetJTI(ctx context.Context, id string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.client.Del(ctx, s.jtiKey(id)).Err(); err != nil {
		return fmt.Errorf("redisstore: forget jti: %w", classify(err))
	}
	return nil
}

// setNX sets key to token for ttl unless it exists and reports whether it
// existed with another value than token.
func (s *Store) setNX(ctx context.Context, key, token string, ttl time.Duration) (taken bool, err error) {
	ms := ttl.Milliseconds()
	if time.Duration(ms)*time.Millisecond < ttl {
		ms++
	}
	old, err := s.client.Do(ctx, "set", key, token, "px", ms, "nx", "get").Text()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return old != token, nil
}
