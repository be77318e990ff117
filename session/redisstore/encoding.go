package redisstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff/session"
)

// ErrMalformed is wrapped by the errors of operations that found a stored
// session, or an index entry, they cannot decode: written by something else
// than this package, or damaged. It is never mistaken for
// session.ErrNotFound.
var ErrMalformed = errors.New("redisstore: malformed stored data")

// classify wraps ErrMalformed around the errors with which Redis reports
// malformed data: a script's refusal of a session it cannot read, and
// WRONGTYPE for a key of another type than the store writes there.
// (HasErrorPrefix looks past the "ERR " of the scripts' error replies.)
func classify(err error) error {
	if redis.HasErrorPrefix(err, "WRONGTYPE") || redis.HasErrorPrefix(err, "malformed session record") {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return err
}

// recordFields are the fields of a session hash, in the order in which Get
// and the deleteMatching script read them and decodeRecord decodes them.
// Times are Unix milliseconds in decimal, the unit of PEXPIREAT and one
// that Lua's double-precision numbers hold exactly. Read-only.
var recordFields = [...]string{
	"version", // decimal, 1 after Create, incremented by each Update
	"iss",
	"sub",
	"sid", // empty when the session has no OP session id
	"created",
	"expires",
	"idle",
	"data",
}

const (
	fieldVersion = iota
	fieldIss
	fieldSub
	fieldSID
	fieldCreated
	fieldExpires
	fieldIdle
	fieldData
	numFields
)

// sessionKey returns the Redis key of a session's hash. The hex key in
// braces is the key's hash tag, so that a Redis Cluster places everything
// of one session in one slot.
func (s *Store) sessionKey(key session.Key) string {
	var buf [2 * len(session.Key{})]byte
	hex.Encode(buf[:], key[:])
	return s.prefix + "s:{" + string(buf[:]) + "}"
}

// member returns the index member naming key: its hex form.
func member(key session.Key) string {
	return hex.EncodeToString(key[:])
}

// parseMember is the inverse of member.
func parseMember(m string) (session.Key, error) {
	var key session.Key
	if len(m) != 2*len(key) {
		return key, fmt.Errorf("%w: index member %q is not a session key", ErrMalformed, m)
	}
	if _, err := hex.Decode(key[:], []byte(m)); err != nil {
		return key, fmt.Errorf("%w: index member %q is not a session key", ErrMalformed, m)
	}
	return key, nil
}

// Index kinds, the word in an index key and the record field it indexes.
const (
	bySID = "sid"
	bySub = "sub"
)

// indexKey returns the key of the sorted set that indexes the sessions of
// issuer iss whose field kind (sid or sub) is v. The pair is hashed, length
// prefixed, so that no two pairs share a set (an issuer "https://op" with
// subject "0x" and "https://op0" with "x" do not), whatever bytes they
// hold, and so that the key is short and its hash tag spreads index sets
// over a cluster's slots. A hash collision would only put two pairs in one
// set: every reader checks each member against the session's own fields.
func (s *Store) indexKey(kind, iss, v string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(iss)))])
	h.Write([]byte(iss))
	h.Write([]byte(v))
	var sum [sha256.Size]byte
	return s.prefix + kind + ":{" + hex.EncodeToString(h.Sum(sum[:0])[:16]) + "}"
}

func (s *Store) lockKey(name string) string { return s.prefix + "lock:" + name }

func (s *Store) jtiKey(id string) string { return s.prefix + "jti:" + id }

// millis returns t as the decimal Unix milliseconds stored for it.
func millis(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// end returns the instant rec stops being live: the earlier of its absolute
// and idle ends, when Redis is to drop it.
func end(rec *session.Record) time.Time {
	if rec.IdleExpiresAt.Before(rec.ExpiresAt) {
		return rec.IdleExpiresAt
	}
	return rec.ExpiresAt
}

// decodeRecord decodes the fields of the session hash under key, read in
// the order of recordFields. It reports found false, and no error, when
// every field is missing: no such session.
func decodeRecord(key session.Key, vals []any) (rec *session.Record, found bool, err error) {
	if len(vals) != numFields {
		return nil, false, fmt.Errorf("%w: session %v: %d fields, want %d", ErrMalformed, key, len(vals), numFields)
	}
	var strs [numFields]string
	missing := 0
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			strs[i] = v
		case nil:
			missing++
		default:
			return nil, false, fmt.Errorf("%w: session %v: field %s is a %T", ErrMalformed, key, recordFields[i], v)
		}
	}
	if missing == numFields {
		return nil, false, nil
	}
	if missing > 0 {
		return nil, false, fmt.Errorf("%w: session %v: %d of %d fields missing", ErrMalformed, key, missing, numFields)
	}
	version, err := strconv.ParseUint(strs[fieldVersion], 10, 64)
	if err != nil || version == 0 {
		return nil, false, fmt.Errorf("%w: session %v: version %q", ErrMalformed, key, strs[fieldVersion])
	}
	var times [3]time.Time
	for i, f := range []int{fieldCreated, fieldExpires, fieldIdle} {
		ms, err := strconv.ParseInt(strs[f], 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("%w: session %v: %s %q", ErrMalformed, key, recordFields[f], strs[f])
		}
		times[i] = time.UnixMilli(ms)
	}
	return &session.Record{
		Key:           key,
		Version:       version,
		Issuer:        strs[fieldIss],
		Subject:       strs[fieldSub],
		SID:           strs[fieldSID],
		CreatedAt:     times[0],
		ExpiresAt:     times[1],
		IdleExpiresAt: times[2],
		Data:          []byte(strs[fieldData]),
	}, true, nil
}
