package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gobff/bff/session"
)

// deleteBatch bounds the rows one DeleteExpired statement removes, to keep
// its transaction, its locks and its WAL burst short.
const deleteBatch = 1000

// Get implements [session.Store.Get]: one SELECT by primary key.
func (s *Store) Get(ctx context.Context, key session.Key) (*session.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rec, err := scanRecord(s.pool.QueryRow(ctx, s.q.get, key[:], s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: get %v: %w", key, session.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get %v: %w", key, err)
	}
	return rec, nil
}

// Create implements [session.Store.Create]. It takes over the row of an
// expired session under the same key.
func (s *Store) Create(ctx context.Context, rec *session.Record) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return ErrClosed
	}
	tag, err := s.pool.Exec(ctx, s.q.create, rec.Key[:], rec.Issuer, rec.Subject, rec.SID,
		rec.CreatedAt, rec.ExpiresAt, rec.IdleExpiresAt, notNull(rec.Data), s.now())
	if err != nil {
		return fmt.Errorf("pgstore: create %v: %w", rec.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: create %v: %w", rec.Key, session.ErrExists)
	}
	rec.Version = 1
	return nil
}

// Update implements [session.Store.Update]. CreatedAt stays as created.
func (s *Store) Update(ctx context.Context, rec *session.Record) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.now()
	// Stored versions are positive int64s; a version beyond them matches
	// no row, as does -1.
	version := int64(-1)
	if rec.Version <= math.MaxInt64 {
		version = int64(rec.Version)
	}
	var newVersion int64
	err := s.pool.QueryRow(ctx, s.q.update, rec.Key[:], version, rec.Issuer, rec.Subject, rec.SID,
		rec.ExpiresAt, rec.IdleExpiresAt, notNull(rec.Data), now).Scan(&newVersion)
	if err == nil {
		rec.Version = uint64(newVersion) // positive: the table's CHECK says so
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: update %v: %w", rec.Key, err)
	}
	// No live row had the version when the UPDATE ran. The row as it is
	// now says why: a live row is a later writer's (ErrConflict: re-read
	// and retry); no live row means the session is gone. The read sees the
	// same state as the UPDATE or a later one, so either answer is what a
	// re-read would confirm, and neither passes a failed Update for done.
	var stored int64
	err = s.pool.QueryRow(ctx, s.q.version, rec.Key[:], now).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("pgstore: update %v: %w", rec.Key, session.ErrNotFound)
	case err != nil:
		return fmt.Errorf("pgstore: update %v: %w", rec.Key, err)
	}
	return fmt.Errorf("pgstore: update %v at version %d, stored version %d: %w",
		rec.Key, rec.Version, stored, session.ErrConflict)
}

// Touch implements [session.Store.Touch].
func (s *Store) Touch(ctx context.Context, key session.Key, idleExpiresAt time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return ErrClosed
	}
	tag, err := s.pool.Exec(ctx, s.q.touch, key[:], idleExpiresAt, s.now())
	if err != nil {
		return fmt.Errorf("pgstore: touch %v: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: touch %v: %w", key, session.ErrNotFound)
	}
	return nil
}

// Delete implements [session.Store.Delete].
func (s *Store) Delete(ctx context.Context, key session.Key) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return ErrClosed
	}
	if _, err := s.pool.Exec(ctx, s.q.delete, key[:]); err != nil {
		return fmt.Errorf("pgstore: delete %v: %w", key, err)
	}
	return nil
}

// DeleteBySID implements [session.Store.DeleteBySID]: one DELETE on the
// (iss, sid) index. Sessions without a sid are never matched, so an empty
// sid returns at once. Should a deleted row be unreadable (see
// scanRecord), the DELETE stands and DeleteBySID reports the error.
func (s *Store) DeleteBySID(ctx context.Context, iss, sid string) ([]*session.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if sid == "" {
		return nil, nil
	}
	recs, err := s.queryRecords(ctx, s.q.deleteBySID, iss, sid, s.now())
	if err != nil {
		return nil, fmt.Errorf("pgstore: delete by sid: %w", err)
	}
	return recs, nil
}

// DeleteBySub implements [session.Store.DeleteBySub]: one DELETE on the
// (iss, sub) index.
func (s *Store) DeleteBySub(ctx context.Context, iss, sub string) ([]*session.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	recs, err := s.queryRecords(ctx, s.q.deleteBySub, iss, sub, s.now())
	if err != nil {
		return nil, fmt.Errorf("pgstore: delete by sub: %w", err)
	}
	return recs, nil
}

// ListBySub implements [session.Store.ListBySub].
func (s *Store) ListBySub(ctx context.Context, iss, sub string) ([]*session.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	recs, err := s.queryRecords(ctx, s.q.listBySub, iss, sub, s.now())
	if err != nil {
		return nil, fmt.Errorf("pgstore: list by sub: %w", err)
	}
	return recs, nil
}

// DeleteExpired implements [session.Store.DeleteExpired]. It deletes in
// batches of at most deleteBatch rows, each its own statement, so a large
// backlog neither holds locks for long nor stalls the requests of other
// instances; sessions by the store's clock, locks and one-time ids by the
// server's.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.deleteBatches(ctx, s.q.deleteExpiredSessions, s.now())
	if err != nil {
		return n, fmt.Errorf("pgstore: delete expired sessions: %w", err)
	}
	if _, err := s.deleteBatches(ctx, s.q.deleteExpiredLocks); err != nil {
		return n, fmt.Errorf("pgstore: delete expired locks: %w", err)
	}
	if _, err := s.deleteBatches(ctx, s.q.deleteExpiredJTI); err != nil {
		return n, fmt.Errorf("pgstore: delete expired one-time ids: %w", err)
	}
	return n, nil
}

// deleteBatches runs sql, whose last parameter is the batch size, until a
// batch comes back short, and returns the rows deleted.
func (s *Store) deleteBatches(ctx context.Context, sql string, args ...any) (int, error) {
	args = append(args, deleteBatch)
	total := 0
	for {
		bctx, cancel := s.bound(ctx)
		tag, err := s.pool.Exec(bctx, sql, args...)
		cancel()
		if err != nil {
			return total, err
		}
		n := int(tag.RowsAffected())
		total += n
		if n < deleteBatch {
			return total, nil
		}
	}
}

// queryRecords runs sql, which selects recordColumns, and decodes every row.
func (s *Store) queryRecords(ctx context.Context, sql string, args ...any) ([]*session.Record, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var recs []*session.Record
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return recs, nil
}

// scanRecord reads one row of recordColumns. A row that breaks the table's
// constraints (someone edited it by hand, or dropped a CHECK) is an error,
// never a panic or a garbled record.
func scanRecord(row pgx.Row) (*session.Record, error) {
	var (
		key     []byte
		version int64
		rec     session.Record
	)
	err := row.Scan(&key, &version, &rec.Issuer, &rec.Subject, &rec.SID,
		&rec.CreatedAt, &rec.ExpiresAt, &rec.IdleExpiresAt, &rec.Data)
	if err != nil {
		return nil, err
	}
	if len(key) != len(rec.Key) {
		// Like session.Key.String, show no more of a key than a prefix.
		return nil, fmt.Errorf("malformed session row: key %x... has %d bytes, want %d",
			key[:min(len(key), 4)], len(key), len(rec.Key))
	}
	copy(rec.Key[:], key)
	if version <= 0 {
		return nil, fmt.Errorf("malformed session row %v: version %d is not positive", rec.Key, version)
	}
	rec.Version = uint64(version)
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	return &rec, nil
}

// notNull keeps a nil payload from becoming SQL NULL: it is stored as an
// empty one.
func notNull(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
