// Package memstore is an in-memory [session.Store] for tests and throwaway
// runs. Its sessions, locks and one-time ids live as long as the process.
//
// Get, on the path of every proxied request, takes a read lock and hands out
// the stored *session.Record itself without allocating: records are
// immutable once stored, and Update and Touch replace them rather than
// modify them, so a record a reader holds never changes under it. As the
// contract says, callers must not modify records they get.
//
// Expired entries are reclaimed by DeleteExpired (and by Create, Lock and
// SeenJTI reusing their key); call it now and then.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gobff/bff/session"
)

// ErrClosed is returned by every method of a closed Store but Close.
var ErrClosed = errors.New("memstore: store is closed")

// Option configures a [Store].
type Option func(*Store)

// WithClock makes the store judge expiry against now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// Store is an in-memory [session.Store]. Its zero value is not usable; call
// [New].
type Store struct {
	now func() time.Time

	mu       sync.RWMutex
	closed   bool
	sessions map[session.Key]*session.Record // immutable records
	bySID    map[indexKey]keySet             // (Issuer, SID), SID != ""
	bySub    map[indexKey]keySet             // (Issuer, Subject)
	locks    map[string]lockEntry
	jtis     map[string]time.Time // id -> end of its ttl
	tokens   uint64               // last lease token handed out
}

type indexKey struct{ iss, v string }

type keySet map[session.Key]struct{}

type lockEntry struct {
	token   uint64
	expires time.Time
}

var _ session.Store = (*Store)(nil)

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		now:      time.Now,
		sessions: make(map[session.Key]*session.Record),
		bySID:    make(map[indexKey]keySet),
		bySub:    make(map[indexKey]keySet),
		locks:    make(map[string]lockEntry),
		jtis:     make(map[string]time.Time),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Get implements [session.Store.Get]. It does not allocate when it finds
// the session.
func (s *Store) Get(_ context.Context, key session.Key) (*session.Record, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	rec := s.sessions[key]
	s.mu.RUnlock()
	if rec == nil || rec.Expired(s.now()) {
		return nil, fmt.Errorf("memstore: get %v: %w", key, session.ErrNotFound)
	}
	return rec, nil
}

// Create implements [session.Store.Create]. The store keeps a copy of rec
// and of its Data.
func (s *Store) Create(_ context.Context, rec *session.Record) error {
	stored := *rec
	stored.Version = 1
	stored.Data = bytes.Clone(rec.Data)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if old := s.sessions[rec.Key]; old != nil {
		if !old.Expired(s.now()) {
			return fmt.Errorf("memstore: create %v: %w", rec.Key, session.ErrExists)
		}
		s.remove(old)
	}
	s.add(&stored)
	rec.Version = 1
	return nil
}

// Update implements [session.Store.Update]. CreatedAt stays as created.
func (s *Store) Update(_ context.Context, rec *session.Record) error {
	stored := *rec
	stored.Data = bytes.Clone(rec.Data)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old, err := s.live(rec.Key, "update")
	if err != nil {
		return err
	}
	if old.Version != rec.Version {
		return fmt.Errorf("memstore: update %v at version %d, stored version %d: %w",
			rec.Key, rec.Version, old.Version, session.ErrConflict)
	}
	stored.Version = old.Version + 1
	stored.CreatedAt = old.CreatedAt
	s.remove(old)
	s.add(&stored)
	rec.Version = stored.Version
	return nil
}

// Touch implements [session.Store.Touch].
func (s *Store) Touch(_ context.Context, key session.Key, idleExpiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old, err := s.live(key, "touch")
	if err != nil {
		return err
	}
	touched := *old // shares the immutable Data
	touched.IdleExpiresAt = idleExpiresAt
	if touched.IdleExpiresAt.After(touched.ExpiresAt) {
		touched.IdleExpiresAt = touched.ExpiresAt
	}
	s.sessions[key] = &touched // indexes point at the key and stay valid
	return nil
}

// Delete implements [session.Store.Delete].
func (s *Store) Delete(_ context.Context, key session.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if old := s.sessions[key]; old != nil {
		s.remove(old)
	}
	return nil
}

// DeleteBySID implements [session.Store.DeleteBySID]. Sessions without a
// sid are never matched; expired sessions are removed too but not returned.
func (s *Store) DeleteBySID(_ context.Context, iss, sid string) ([]*session.Record, error) {
	if sid == "" {
		return nil, nil
	}
	return s.deleteIndexed(s.bySID, indexKey{iss, sid})
}

// DeleteBySub implements [session.Store.DeleteBySub]. Expired sessions are
// removed too but not returned.
func (s *Store) DeleteBySub(_ context.Context, iss, sub string) ([]*session.Record, error) {
	return s.deleteIndexed(s.bySub, indexKey{iss, sub})
}

func (s *Store) deleteIndexed(index map[indexKey]keySet, ik indexKey) ([]*session.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	now := s.now()
	var live []*session.Record
	for key := range index[ik] { // remove may delete from the set: allowed while ranging
		rec := s.sessions[key]
		if !rec.Expired(now) {
			live = append(live, rec)
		}
		s.remove(rec)
	}
	return live, nil
}

// ListBySub implements [session.Store.ListBySub]. The records are the
// store's own immutable ones; callers must not modify them.
func (s *Store) ListBySub(_ context.Context, iss, sub string) ([]*session.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	now := s.now()
	var recs []*session.Record
	for key := range s.bySub[indexKey{iss, sub}] {
		if rec := s.sessions[key]; !rec.Expired(now) {
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

// Lock implements [session.Store.Lock]. ttl must be positive.
func (s *Store) Lock(_ context.Context, name string, ttl time.Duration) (session.Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("memstore: lock %q: ttl %v is not positive", name, ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	now := s.now()
	if l, ok := s.locks[name]; ok && now.Before(l.expires) {
		return nil, fmt.Errorf("memstore: lock %q: %w", name, session.ErrLockHeld)
	}
	s.tokens++
	s.locks[name] = lockEntry{token: s.tokens, expires: now.Add(ttl)}
	return &lease{s: s, name: name, token: s.tokens}, nil
}

// lease is a lock held under a token no other lease of the store has.
type lease struct {
	s     *Store
	name  string
	token uint64
}

// Release implements [session.Lease.Release]. Releasing a lease that no
// longer holds its lock is a no-op.
func (l *lease) Release(context.Context) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.closed {
		return ErrClosed
	}
	if cur, ok := l.s.locks[l.name]; ok && cur.token == l.token {
		delete(l.s.locks, l.name)
	}
	return nil
}

// SeenJTI implements [session.Store.SeenJTI]. A repeated id keeps its
// original ttl. ttl must be positive.
func (s *Store) SeenJTI(_ context.Context, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("memstore: seen jti: ttl %v is not positive", ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	now := s.now()
	if end, ok := s.jtis[id]; ok && now.Before(end) {
		return true, nil
	}
	s.jtis[id] = now.Add(ttl)
	return false, nil
}

// ForgetJTI implements [session.Store.ForgetJTI].
func (s *Store) ForgetJTI(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	delete(s.jtis, id)
	return nil
}

// DeleteExpired implements [session.Store.DeleteExpired]. It scans every
// entry under the write lock.
func (s *Store) DeleteExpired(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	now := s.now()
	n := 0
	for _, rec := range s.sessions {
		if rec.Expired(now) {
			s.remove(rec)
			n++
		}
	}
	for name, l := range s.locks {
		if !now.Before(l.expires) {
			delete(s.locks, name)
		}
	}
	for id, end := range s.jtis {
		if !now.Before(end) {
			delete(s.jtis, id)
		}
	}
	return n, nil
}

// Ping implements [session.Store.Ping]: it fails only once the store is
// closed.
func (s *Store) Ping(context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Close implements [session.Store.Close]: it drops everything. Closing a
// closed store is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.sessions, s.bySID, s.bySub, s.locks, s.jtis = nil, nil, nil, nil, nil
	return nil
}

// live returns the live session under key or an error wrapping
// session.ErrNotFound. The caller holds s.mu.
func (s *Store) live(key session.Key, op string) (*session.Record, error) {
	rec := s.sessions[key]
	if rec == nil || rec.Expired(s.now()) {
		return nil, fmt.Errorf("memstore: %s %v: %w", op, key, session.ErrNotFound)
	}
	return rec, nil
}

// add stores rec and indexes it. The caller holds s.mu for writing.
func (s *Store) add(rec *session.Record) {
	s.sessions[rec.Key] = rec
	if rec.SID != "" {
		addKey(s.bySID, indexKey{rec.Issuer, rec.SID}, rec.Key)
	}
	addKey(s.bySub, indexKey{rec.Issuer, rec.Subject}, rec.Key)
}

// remove deletes rec, the stored record of its key, and its index entries.
// The caller holds s.mu for writing.
func (s *Store) remove(rec *session.Record) {
	delete(s.sessions, rec.Key)
	if rec.SID != "" {
		removeKey(s.bySID, indexKey{rec.Issuer, rec.SID}, rec.Key)
	}
	removeKey(s.bySub, indexKey{rec.Issuer, rec.Subject}, rec.Key)
}

func addKey(index map[indexKey]keySet, ik indexKey, key session.Key) {
	set := index[ik]
	if set == nil {
		set = make(keySet)
		index[ik] = set
	}
	set[key] = struct{}{}
}

func removeKey(index map[indexKey]keySet, ik indexKey, key session.Key) {
	set := index[ik]
	delete(set, key)
	if len(set) == 0 {
		delete(index, ik)
	}
}
