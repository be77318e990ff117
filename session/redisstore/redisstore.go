package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff/session"
)

// ErrClosed is returned by every method of a closed Store but Close.
var ErrClosed = errors.New("redisstore: store is closed")

// pipelineAbove is how many Gets must be in flight before more go through
// go-redis's autopipeliner, which batches concurrent commands into one
// write and one read: under load it saves most of the system calls and
// wake-ups of a round trip each; with few requests it would only add the
// hand-off to its flusher.
const pipelineAbove = 8

// Bounds of the autopipelined path. The pipeliner runs a batch on its own
// context, so a Get waits for its answer with WaitContext: at most until
// the caller's deadline, or pipelinedWait when the caller has none (the
// direct path is bounded by the client's read timeout instead). At most
// maxPipelined Gets wait in its queue; more fail at once rather than pile up
// while Redis is stuck.
const (
	pipelinedWait = 2 * time.Second
	maxPipelined  = 10000
)

// DefaultPrefix is the key prefix of a store without [WithPrefix].
const DefaultPrefix = "bff:"

// Option configures a [Store].
type Option func(*Store)

// WithClock makes the store judge session expiry against now instead of
// time.Now. Lock and one-time-id ttls run on the Redis server's clock.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithPrefix sets the prefix of every key the store writes (default
// [DefaultPrefix]), so that several stores, or other applications, can
// share a server or database. A prefix holding a {hash tag} puts all of the
// store's keys in that tag's Redis Cluster slot: correct, but all on one
// node.
func WithPrefix(prefix string) Option {
	return func(s *Store) { s.prefix = prefix }
}

// Store is a [session.Store] on a Redis server, Sentinel-managed primary or
// Cluster. Its methods are safe for concurrent use, also by many processes
// sharing the server.
type Store struct {
	client  redis.UniversalClient
	piped   *redis.AutoPipeliner // for Gets under load, or nil
	gets    atomic.Int64         // Gets in flight
	owned   bool                 // Close closes client: Open made it
	now     func() time.Time
	prefix  string
	scripts scripts
	closed  atomic.Bool
}

var _ session.Store = (*Store)(nil)

// New returns a store on client, which must reach Redis 7.0 or later.
// Closing the store does not close client.
func New(client redis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		client:  client,
		now:     time.Now,
		prefix:  DefaultPrefix,
		scripts: newScripts(),
	}
	for _, opt := range opts {
		opt(s)
	}
	if ap, err := client.AsyncAutoPipelineWithOptions(&redis.AutoPipelineOptions{MaxQueuedCommands: maxPipelined}); err == nil {
		s.piped = ap
	}
	return s
}

// Client returns the store's Redis client, for tests and tools that look
// at the store's keys. Closing it breaks the store.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Prefix returns the prefix of the store's keys.
func (s *Store) Prefix() string { return s.prefix }

// Get implements [session.Store.Get] with one HMGET.
func (s *Store) Get(ctx context.Context, key session.Key) (*session.Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var vals []any
	var err error
	if n := s.gets.Add(1); n > pipelineAbove && s.piped != nil {
		vals, err = s.pipelinedHMGet(ctx, s.sessionKey(key))
	} else {
		vals, err = s.client.HMGet(ctx, s.sessionKey(key), recordFields[:]...).Result()
	}
	s.gets.Add(-1)
	if err != nil {
		return nil, fmt.Errorf("redisstore: get %v: %w", key, classify(err))
	}
	rec, found, err := decodeRecord(key, vals)
	if err != nil {
		return nil, err
	}
	if !found || rec.Expired(s.now()) {
		return nil, fmt.Errorf("redisstore: get %v: %w", key, session.ErrNotFound)
	}
	return rec, nil
}

// pipelinedHMGet is Get's HMGET through the autopipeliner, waiting for its
// batch no longer than the caller's deadline or pipelinedWait.
func (s *Store) pipelinedHMGet(ctx context.Context, key string) ([]any, error) {
	args := make([]any, 0, 2+len(recordFields))
	args = append(args, "hmget", key)
	for _, f := range recordFields {
		args = append(args, f)
	}
	cmd := redis.NewSliceCmd(ctx, args...)
	future := s.piped.Submit(ctx, cmd)
	wctx, cancel := context.WithTimeout(ctx, pipelinedWait)
	defer cancel()
	if err := future.WaitContext(wctx); err != nil {
		// After a context error the batch may still be filling cmd in:
		// it must not be read.
		return nil, err
	}
	return cmd.Val(), nil
}

// Create implements [session.Store.Create]. It adds the session to its
// indexes first, then stores it in one script that replaces an expired
// session under the same key.
func (s *Store) Create(ctx context.Context, rec *session.Record) error {
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.now().UnixMilli()
	if err := s.index(ctx, rec, now); err != nil {
		return fmt.Errorf("redisstore: create %v: %w", rec.Key, err)
	}
	n, err := s.scripts.create.Run(ctx, s.client, []string{s.sessionKey(rec.Key)},
		now, rec.Issuer, rec.Subject, rec.SID,
		millis(rec.CreatedAt), millis(rec.ExpiresAt), millis(rec.IdleExpiresAt),
		rec.Data, millis(end(rec))).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: create %v: %w", rec.Key, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("redisstore: create %v: %w", rec.Key, session.ErrExists)
	}
	rec.Version = 1
	return nil
}

// Update implements [session.Store.Update]. It adds the session to the
// indexes of its new fields first (entries of fields it no longer has stay
// behind, ignored, until they expire), then compares and sets in one
// script.
func (s *Store) Update(ctx context.Context, rec *session.Record) error {
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.now().UnixMilli()
	if err := s.index(ctx, rec, now); err != nil {
		return fmt.Errorf("redisstore: update %v: %w", rec.Key, err)
	}
	res, err := s.scripts.update.Run(ctx, s.client, []string{s.sessionKey(rec.Key)},
		now, strconv.FormatUint(rec.Version, 10), rec.Issuer, rec.Subject, rec.SID,
		millis(rec.ExpiresAt), millis(rec.IdleExpiresAt), rec.Data, millis(end(rec))).Slice()
	if err != nil {
		return fmt.Errorf("redisstore: update %v: %w", rec.Key, classify(err))
	}
	status, arg, ok := updateResult(res)
	switch {
	case !ok:
		return fmt.Errorf("redisstore: update %v: unexpected script reply %v", rec.Key, res)
	case status == 0:
		return fmt.Errorf("redisstore: update %v: %w", rec.Key, session.ErrNotFound)
	case status == 2:
		return fmt.Errorf("redisstore: update %v at version %d, stored version %v: %w",
			rec.Key, rec.Version, arg, session.ErrConflict)
	}
	v, ok := arg.(int64)
	if !ok || v <= 0 {
		return fmt.Errorf("redisstore: update %v: unexpected script reply %v", rec.Key, res)
	}
	rec.Version = uint64(v)
	return nil
}

// updateResult splits the update script's reply {status[, arg]}.
func updateResult(res []any) (status int64, arg any, ok bool) {
	if len(res) == 0 || len(res) > 2 {
		return 0, nil, false
	}
	status, ok = res[0].(int64)
	if len(res) == 2 {
		arg = res[1]
	}
	return status, arg, ok && (status == 0 || len(res) == 2)
}

// index adds rec to its sub index and, if it has a sid, to its sid index,
// in one pipeline. now trims the sets of members whose end has passed.
func (s *Store) index(ctx context.Context, rec *session.Record, now int64) error {
	m, score := member(rec.Key), millis(rec.ExpiresAt)
	calls := make([]call, 1, 2)
	calls[0] = call{s.scripts.indexAdd, s.indexKey(bySub, rec.Issuer, rec.Subject), []any{m, score, now}}
	if rec.SID != "" {
		calls = append(calls, call{s.scripts.indexAdd, s.indexKey(bySID, rec.Issuer, rec.SID), []any{m, score, now}})
	}
	for _, cmd := range s.runAll(ctx, calls) {
		if err := cmd.Err(); err != nil {
			return fmt.Errorf("index: %w", classify(err))
		}
	}
	return nil
}

// Touch implements [session.Store.Touch] in one script, which moves the
// server-side expiry too.
func (s *Store) Touch(ctx context.Context, key session.Key, idleExpiresAt time.Time) error {
	if s.closed.Load() {
		return ErrClosed
	}
	n, err := s.scripts.touch.Run(ctx, s.client, []string{s.sessionKey(key)},
		s.now().UnixMilli(), millis(idleExpiresAt)).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: touch %v: %w", key, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("redisstore: touch %v: %w", key, session.ErrNotFound)
	}
	return nil
}

// Delete implements [session.Store.Delete]. It deletes whatever is stored
// under the session's key, even data it cannot decode, then takes the
// session out of its indexes; should that second step fail, the entries
// stay behind, ignored, until they expire.
func (s *Store) Delete(ctx context.Context, key session.Key) error {
	if s.closed.Load() {
		return ErrClosed
	}
	fields, err := s.scripts.delete.Run(ctx, s.client, []string{s.sessionKey(key)}).Slice()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redisstore: delete %v: %w", key, classify(err))
	}
	var iss, sub, sid string
	if len(fields) == 3 {
		iss, _ = fields[0].(string)
		sub, _ = fields[1].(string)
		sid, _ = fields[2].(string)
	}
	s.unindex(ctx, []*session.Record{{Key: key, Issuer: iss, Subject: sub, SID: sid}}, "", 0)
	return nil
}

// DeleteExpired implements [session.Store.DeleteExpired]. There is nothing
// to sweep: Redis drops sessions at their end, locks and one-time ids at
// their ttl, and index sets when their last member ends, and the members
// of ended sessions are trimmed whenever their set is written to. It only
// checks that the server is there, so that a maintenance loop notices an
// outage, and reports 0.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if err := s.Ping(ctx); err != nil {
		return 0, err
	}
	return 0, nil
}

// Ping implements [session.Store.Ping] with a PING (for a cluster, to one
// of its nodes).
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close implements [session.Store.Close]. It closes the client if [Open]
// made it, and not one passed to [New]. Closing a closed store is a no-op.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.owned {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}
