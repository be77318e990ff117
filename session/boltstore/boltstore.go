// Package boltstore is a persistent [session.Store] in one bbolt file, the
// default store of a single-node bff: sessions survive restarts, and the
// file is locked so that only one process uses it at a time.
//
// The file holds these buckets:
//
//	sessions  session key -> encoded record (see encoding.go, format 1)
//	sid       len|iss len|sid session-key -> empty   (sessions with a sid)
//	sub       len|iss len|sub session-key -> empty
//	expiry    sortable expiry time, session key -> empty
//	locks     lock name -> lease token, sortable end of ttl
//	jti       one-time id -> sortable end of ttl
//	meta      "format" -> 1
//
// Index lookups (DeleteBySID, DeleteBySub, ListBySub) are prefix scans of
// sid and sub, and DeleteExpired walks the expiry index up to now instead of
// every session. A session's expiry index entry is keyed by the earlier of
// its absolute and idle ends, so Touch moves it.
//
// Every write is one bbolt read-write transaction, committed with an fsync;
// bbolt runs them one at a time. Reads run concurrently with each other and
// with the writer.
package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gobff/bff/session"
)

// ErrLocked is returned by [Open] when another process (or another Store in
// this one) has the file open and did not let go within the open timeout.
var ErrLocked = errors.New("boltstore: database file is in use")

// DefaultOpenTimeout is how long Open waits for the file lock by default.
const DefaultOpenTimeout = time.Second

// dbFormat is the layout of buckets described in the package documentation.
const dbFormat = 1

// Bucket names and meta keys. Read-only.
var (
	bucketSessions = []byte("sessions")
	bucketSID      = []byte("sid")
	bucketSub      = []byte("sub")
	bucketExpiry   = []byte("expiry")
	bucketLocks    = []byte("locks")
	bucketJTI      = []byte("jti")
	bucketMeta     = []byte("meta")
	metaFormat     = []byte("format")
)

// deleteBatch bounds the sessions one DeleteExpired transaction removes, to
// keep write transactions short.
const deleteBatch = 1000

// Option configures [Open].
type Option func(*options)

type options struct {
	now     func() time.Time
	timeout time.Duration
}

// WithClock makes the store judge expiry against now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithOpenTimeout sets how long Open waits for another process to let go of
// the file before failing with [ErrLocked] (default [DefaultOpenTimeout]).
// Zero waits forever.
func WithOpenTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// Store is a [session.Store] in a bbolt file. Its methods are safe for
// concurrent use.
type Store struct {
	db  *bolt.DB
	now func() time.Time
}

var _ session.Store = (*Store)(nil)

// Open opens the store in the file at path, creating the file (mode 0600)
// and its directory (mode 0700) if missing. It fails with [ErrLocked] if
// another process keeps the file open for longer than the open timeout.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, timeout: DefaultOpenTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s: another process holds it, gave up after %v: %w",
			ErrLocked, path, o.timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return &Store{db: db, now: o.now}, nil
}

func initBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketSessions, bucketSID, bucketSub, bucketExpiry, bucketLocks, bucketJTI, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(metaFormat); {
	case v == nil:
		return meta.Put(metaFormat, []byte{dbFormat})
	case len(v) != 1 || v[0] != dbFormat:
		return fmt.Errorf("unsupported database format %v, want %d", v, dbFormat)
	}
	return nil
}

// Path returns the path of the store's file.
func (s *Store) Path() string { return s.db.Path() }

// Get implements [session.Store.Get]. It allocates the record, one string
// holding its Issuer, Subject and SID, and its Data.
func (s *Store) Get(ctx context.Context, key session.Key) (*session.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("boltstore: get: %w", err)
	}
	defer tx.Rollback()
	rec, err := s.live(tx, key, "get")
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Create implements [session.Store.Create]. The store keeps a copy of rec.
func (s *Store) Create(ctx context.Context, rec *session.Record) error {
	stored := *rec
	stored.Version = 1
	err := s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		old, err := load(tx, rec.Key)
		if err != nil {
			return false, err
		}
		if old != nil {
			if !old.Expired(s.now()) {
				return false, fmt.Errorf("boltstore: create %v: %w", rec.Key, session.ErrExists)
			}
			if err := remove(tx, old); err != nil {
				return false, err
			}
		}
		return true, put(tx, &stored)
	})
	if err != nil {
		return err
	}
	rec.Version = 1
	return nil
}

// Update implements [session.Store.Update]. CreatedAt stays as created.
func (s *Store) Update(ctx context.Context, rec *session.Record) error {
	stored := *rec
	err := s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		old, err := s.live(tx, rec.Key, "update")
		if err != nil {
			return false, err
		}
		if old.Version != rec.Version {
			return false, fmt.Errorf("boltstore: update %v at version %d, stored version %d: %w",
				rec.Key, rec.Version, old.Version, session.ErrConflict)
		}
		stored.Version = old.Version + 1
		stored.CreatedAt = old.CreatedAt
		if err := remove(tx, old); err != nil {
			return false, err
		}
		return true, put(tx, &stored)
	})
	if err != nil {
		return err
	}
	rec.Version = stored.Version
	return nil
}

// Touch implements [session.Store.Touch].
func (s *Store) Touch(ctx context.Context, key session.Key, idleExpiresAt time.Time) error {
	return s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		rec, err := s.live(tx, key, "touch")
		if err != nil {
			return false, err
		}
		oldExpiry := expiryKey(rec)
		rec.IdleExpiresAt = idleExpiresAt
		if rec.IdleExpiresAt.After(rec.ExpiresAt) {
			rec.IdleExpiresAt = rec.ExpiresAt
		}
		if err := tx.Bucket(bucketExpiry).Delete(oldExpiry); err != nil {
			return false, err
		}
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(rec), nil); err != nil {
			return false, err
		}
		return true, tx.Bucket(bucketSessions).Put(key[:], encodeRecord(rec))
	})
}

// Delete implements [session.Store.Delete].
func (s *Store) Delete(ctx context.Context, key session.Key) error {
	return s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		rec, err := load(tx, key)
		if rec == nil || err != nil {
			return false, err
		}
		return true, remove(tx, rec)
	})
}

// DeleteBySID implements [session.Store.DeleteBySID]. Sessions without a
// sid are never matched; expired sessions are removed too but not returned.
func (s *Store) DeleteBySID(ctx context.Context, iss, sid string) ([]*session.Record, error) {
	if sid == "" {
		return nil, nil
	}
	return s.deleteIndexed(ctx, bucketSID, iss, sid)
}

// DeleteBySub implements [session.Store.DeleteBySub]. Expired sessions are
// removed too but not returned.
func (s *Store) DeleteBySub(ctx context.Context, iss, sub string) ([]*session.Record, error) {
	return s.deleteIndexed(ctx, bucketSub, iss, sub)
}

func (s *Store) deleteIndexed(ctx context.Context, index []byte, iss, v string) ([]*session.Record, error) {
	var live []*session.Record
	err := s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		live = nil
		keys := scanIndex(tx.Bucket(index), iss, v)
		now := s.now()
		for _, key := range keys {
			rec, err := load(tx, key)
			if err != nil {
				return false, err
			}
			if rec == nil { // cannot happen: indexes follow the sessions
				continue
			}
			if !rec.Expired(now) {
				live = append(live, rec)
			}
			if err := remove(tx, rec); err != nil {
				return false, err
			}
		}
		return len(keys) > 0, nil
	})
	if err != nil {
		return nil, err
	}
	return live, nil
}

// ListBySub implements [session.Store.ListBySub].
func (s *Store) ListBySub(ctx context.Context, iss, sub string) ([]*session.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var recs []*session.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		now := s.now()
		for _, key := range scanIndex(tx.Bucket(bucketSub), iss, sub) {
			rec, err := load(tx, key)
			if err != nil {
				return err
			}
			if rec != nil && !rec.Expired(now) {
				recs = append(recs, rec)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: list by sub: %w", err)
	}
	return recs, nil
}

// Lock implements [session.Store.Lock]. ttl must be positive. Lease tokens
// come from the locks bucket's sequence, so they stay unique across
// restarts.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (session.Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("boltstore: lock %q: ttl %v is not positive", name, ttl)
	}
	var token uint64
	err := s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		b := tx.Bucket(bucketLocks)
		now := s.now()
		if _, expires, ok := decodeLock(b.Get([]byte(name))); ok && now.Before(expires) {
			return false, fmt.Errorf("boltstore: lock %q: %w", name, session.ErrLockHeld)
		}
		var err error
		if token, err = b.NextSequence(); err != nil {
			return false, err
		}
		return true, b.Put([]byte(name), encodeLock(token, now.Add(ttl)))
	})
	if err != nil {
		return nil, err
	}
	return &lease{s: s, name: name, token: token}, nil
}

type lease struct {
	s     *Store
	name  string
	token uint64
}

// Release implements [session.Lease.Release]. Releasing a lease that no
// longer holds its lock is a no-op.
func (l *lease) Release(ctx context.Context) error {
	return l.s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		b := tx.Bucket(bucketLocks)
		if token, _, ok := decodeLock(b.Get([]byte(l.name))); !ok || token != l.token {
			return false, nil
		}
		return true, b.Delete([]byte(l.name))
	})
}

// SeenJTI implements [session.Store.SeenJTI]. A repeated id keeps its
// original ttl. ttl must be positive.
func (s *Store) SeenJTI(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("boltstore: seen jti: ttl %v is not positive", ttl)
	}
	seen := false
	err := s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		b := tx.Bucket(bucketJTI)
		now := s.now()
		if end, ok := parseSortableTime(b.Get([]byte(id))); ok && now.Before(end) {
			seen = true
			return false, nil
		}
		seen = false
		return true, b.Put([]byte(id), appendSortableTime(nil, now.Add(ttl)))
	})
	return seen, err
}

// ForgetJTI implements [session.Store.ForgetJTI].
func (s *Store) ForgetJTI(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		b := tx.Bucket(bucketJTI)
		if b.Get([]byte(id)) == nil {
			return false, nil
		}
		return true, b.Delete([]byte(id))
	})
}

// DeleteExpired implements [session.Store.DeleteExpired]. It walks the
// expiry index up to now in transactions of at most deleteBatch sessions,
// then sweeps expired locks and one-time ids.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	now := s.now()
	limit := appendSortableTime(nil, now)
	total := 0
	for {
		removed, visited := 0, 0
		err := s.write(ctx, func(tx *bolt.Tx) (bool, error) {
			removed = 0
			var entries [][]byte
			c := tx.Bucket(bucketExpiry).Cursor()
			for k, _ := c.First(); k != nil && len(entries) < deleteBatch; k, _ = c.Next() {
				if bytes.Compare(k[:sortableTimeLen], limit) > 0 {
					break
				}
				entries = append(entries, bytes.Clone(k))
			}
			visited = len(entries)
			for _, entry := range entries {
				n, err := s.expire(tx, entry, now)
				if err != nil {
					return false, err
				}
				removed += n
			}
			return visited > 0, nil
		})
		total += removed
		if err != nil {
			return total, err
		}
		if visited < deleteBatch {
			break
		}
	}
	err := s.write(ctx, func(tx *bolt.Tx) (bool, error) {
		nl, err := sweep(tx.Bucket(bucketLocks), now, func(v []byte) (time.Time, bool) {
			_, expires, ok := decodeLock(v)
			return expires, ok
		})
		if err != nil {
			return false, err
		}
		nj, err := sweep(tx.Bucket(bucketJTI), now, parseSortableTime)
		return nl+nj > 0, err
	})
	return total, err
}

// expire removes the session of an expiry index entry that is due at now
// and reports whether it removed one. It repairs rather than trusts an
// entry that does not match its session.
func (s *Store) expire(tx *bolt.Tx, entry []byte, now time.Time) (int, error) {
	if err := tx.Bucket(bucketExpiry).Delete(entry); err != nil {
		return 0, err
	}
	if len(entry) != sortableTimeLen+len(session.Key{}) {
		return 0, nil
	}
	rec, err := load(tx, session.Key(entry[sortableTimeLen:]))
	if rec == nil || err != nil {
		return 0, err
	}
	if !rec.Expired(now) {
		return 0, tx.Bucket(bucketExpiry).Put(expiryKey(rec), nil)
	}
	return 1, remove(tx, rec)
}

// sweep deletes the entries of b that end at or before now, and those it
// cannot parse.
func sweep(b *bolt.Bucket, now time.Time, end func([]byte) (time.Time, bool)) (int, error) {
	var expired [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if t, ok := end(v); !ok || !now.Before(t) {
			expired = append(expired, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}

// Ping implements [session.Store.Ping]: a read transaction, which fails
// once the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return fmt.Errorf("boltstore: ping: %w", err)
	}
	return tx.Rollback()
}

// Close implements [session.Store.Close]. Closing a closed store is a no-op.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// write runs fn in a read-write transaction and commits it if fn reports a
// change; otherwise, and on error, it rolls back (a bbolt commit writes and
// syncs even when nothing changed).
func (s *Store) write(ctx context.Context, fn func(tx *bolt.Tx) (changed bool, err error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	defer tx.Rollback()
	changed, err := fn(tx)
	if err != nil || !changed {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("boltstore: commit: %w", err)
	}
	return nil
}

// live returns the live session under key, or an error wrapping
// session.ErrNotFound.
func (s *Store) live(tx *bolt.Tx, key session.Key, op string) (*session.Record, error) {
	rec, err := load(tx, key)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Expired(s.now()) {
		return nil, fmt.Errorf("boltstore: %s %v: %w", op, key, session.ErrNotFound)
	}
	return rec, nil
}

// load returns the session under key, expired or not, or nil.
func load(tx *bolt.Tx, key session.Key) (*session.Record, error) {
	v := tx.Bucket(bucketSessions).Get(key[:])
	if v == nil {
		return nil, nil
	}
	rec, err := decodeRecord(key, v)
	if err != nil {
		return nil, fmt.Errorf("boltstore: session %v: %w", key, err)
	}
	return rec, nil
}

// put stores rec (encoded, so rec.Data is copied) and its index entries.
func put(tx *bolt.Tx, rec *session.Record) error {
	if err := tx.Bucket(bucketSessions).Put(rec.Key[:], encodeRecord(rec)); err != nil {
		return err
	}
	if rec.SID != "" {
		if err := tx.Bucket(bucketSID).Put(indexKey(rec.Issuer, rec.SID, rec.Key), nil); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketSub).Put(indexKey(rec.Issuer, rec.Subject, rec.Key), nil); err != nil {
		return err
	}
	return tx.Bucket(bucketExpiry).Put(expiryKey(rec), nil)
}

// remove deletes rec, the stored session of its key, and its index entries.
func remove(tx *bolt.Tx, rec *session.Record) error {
	if err := tx.Bucket(bucketSessions).Delete(rec.Key[:]); err != nil {
		return err
	}
	if rec.SID != "" {
		if err := tx.Bucket(bucketSID).Delete(indexKey(rec.Issuer, rec.SID, rec.Key)); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketSub).Delete(indexKey(rec.Issuer, rec.Subject, rec.Key)); err != nil {
		return err
	}
	return tx.Bucket(bucketExpiry).Delete(expiryKey(rec))
}

// scanIndex returns the session keys of index entries for (iss, v).
func scanIndex(b *bolt.Bucket, iss, v string) []session.Key {
	prefix := indexPrefix(iss, v, 0)
	var keys []session.Key
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+len(session.Key{}) {
			keys = append(keys, session.Key(k[len(prefix):]))
		}
	}
	return keys
}
