package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff/session"
)

// DeleteBySID implements [session.Store.DeleteBySID]. Sessions without a
// sid are never matched; expired sessions are removed too but not
// returned.
//
// Should some sessions fail to be deleted (the server went away halfway,
// or one holds data the store cannot decode), it returns the live sessions
// it did delete together with the error: the caller should still revoke
// their tokens.
func (s *Store) DeleteBySID(ctx context.Context, iss, sid string) ([]*session.Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if sid == "" {
		return nil, nil
	}
	return s.deleteIndexed(ctx, bySID, iss, sid)
}

// DeleteBySub implements [session.Store.DeleteBySub], as DeleteBySID does.
func (s *Store) DeleteBySub(ctx context.Context, iss, sub string) ([]*session.Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.deleteIndexed(ctx, bySub, iss, sub)
}

// deleteIndexed reads the members of one index set, deletes each member's
// session with a script that first checks that the session still has
// issuer iss and field kind equal to v, and then takes the deleted
// sessions out of their index sets. Three round trips, whatever the number
// of sessions.
func (s *Store) deleteIndexed(ctx context.Context, kind, iss, v string) ([]*session.Record, error) {
	idx := s.indexKey(kind, iss, v)
	// All members, also those whose score has passed: their sessions have
	// ended by the store's clock but may not yet by Redis's.
	members, err := s.client.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: delete by %s: %w", kind, classify(err))
	}
	var (
		keys   = make([]session.Key, 0, len(members))
		calls  = make([]call, 0, len(members))
		junk   []string // members that cannot name a session
		failed []error
	)
	for _, m := range members {
		key, err := parseMember(m)
		if err != nil {
			junk = append(junk, m)
			failed = append(failed, err)
			continue
		}
		keys = append(keys, key)
		calls = append(calls, call{s.scripts.deleteMatching, s.sessionKey(key), []any{iss, kind, v}})
	}
	nowT := s.now()
	var deleted, live []*session.Record
	for i, cmd := range s.runAll(ctx, calls) {
		vals, err := cmd.Slice()
		if errors.Is(err, redis.Nil) {
			continue // gone, or no longer of this sid or sub
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("session %v: %w", keys[i], classify(err)))
			continue
		}
		rec, found, err := decodeRecord(keys[i], vals)
		if err != nil {
			// Deleted nevertheless: the script does not decode.
			failed = append(failed, err)
			continue
		}
		if !found {
			continue
		}
		deleted = append(deleted, rec)
		if !rec.Expired(nowT) {
			live = append(live, rec)
		}
	}
	s.unindex(ctx, deleted, idx, nowT.UnixMilli(), junk...)
	if len(failed) > 0 {
		return live, fmt.Errorf("redisstore: delete by %s: %d of %d sessions failed: %w",
			kind, len(failed), len(members), failed[0])
	}
	return live, nil
}

// unindex takes deleted sessions out of their sid and sub index sets and,
// if trim is an index set, drops its members that ended at or before now
// and the junk members. It is tidying, not correctness (readers check every member against its
// session), so it ignores errors: whatever it leaves behind expires with
// its set.
//
// It only ever removes members of sessions it saw deleted. Removing a
// member because its session is missing would race with a Create, which
// writes index entries before the session.
func (s *Store) unindex(ctx context.Context, deleted []*session.Record, trim string, now int64, junk ...string) {
	if len(deleted) == 0 && trim == "" {
		return
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, rec := range deleted {
			m := member(rec.Key)
			if rec.Issuer == "" && rec.Subject == "" && rec.SID == "" {
				continue // a malformed session: its indexes are unknown
			}
			p.ZRem(ctx, s.indexKey(bySub, rec.Issuer, rec.Subject), m)
			if rec.SID != "" {
				p.ZRem(ctx, s.indexKey(bySID, rec.Issuer, rec.SID), m)
			}
		}
		if trim != "" {
			p.ZRemRangeByScore(ctx, trim, "-inf", strconv.FormatInt(now, 10))
			for _, m := range junk {
				p.ZRem(ctx, trim, m)
			}
		}
		return nil
	})
}

// ListBySub implements [session.Store.ListBySub]: the members of the sub
// index whose absolute end has not passed, then their sessions in one
// pipeline, each checked against iss and sub and for expiry.
func (s *Store) ListBySub(ctx context.Context, iss, sub string) ([]*session.Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	nowT := s.now()
	members, err := s.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key:     s.indexKey(bySub, iss, sub),
		Start:   "(" + strconv.FormatInt(nowT.UnixMilli(), 10),
		Stop:    "+inf",
		ByScore: true,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list by sub: %w", classify(err))
	}
	if len(members) == 0 {
		return nil, nil
	}
	keys := make([]session.Key, len(members))
	for i, m := range members {
		if keys[i], err = parseMember(m); err != nil {
			return nil, err
		}
	}
	cmds := make([]*redis.SliceCmd, len(keys))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range keys {
			cmds[i] = p.HMGet(ctx, s.sessionKey(key), recordFields[:]...)
		}
		return nil
	})
	var recs []*session.Record
	for i, cmd := range cmds {
		vals, err := cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: list by sub: session %v: %w", keys[i], classify(err))
		}
		rec, found, err := decodeRecord(keys[i], vals)
		if err != nil {
			return nil, err
		}
		if found && rec.Issuer == iss && rec.Subject == sub && !rec.Expired(nowT) {
			recs = append(recs, rec)
		}
	}
	return recs, nil
}
