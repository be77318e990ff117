package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gobff/bff/session"
)

// recordFormat is the first byte of every encoded record. Decoders reject
// formats they do not know, so a later format can be introduced next to
// this one (decode both, write the new one).
const recordFormat = 1

// Format 1 of a stored record, the value under its key in the sessions
// bucket (the Key itself is the bucket key and is not repeated):
//
//	byte     format (1)
//	uvarint  Version
//	uvarint  len(Issuer), uvarint len(Subject), uvarint len(SID)
//	bytes    Issuer, Subject, SID, back to back
//	3 times  varint unix seconds, uvarint nanoseconds:
//	         CreatedAt, ExpiresAt, IdleExpiresAt
//	bytes    Data, the rest of the value
//
// The strings are contiguous so that decoding converts them to one string
// and slices it, one allocation for all three. Times keep their instant (to
// the nanosecond, over time.Time's whole range) but not their location;
// they decode in UTC.

var errCorrupt = errors.New("boltstore: corrupt record")

// appendRecord appends the encoding of r to dst.
func appendRecord(dst []byte, r *session.Record) []byte {
	dst = append(dst, recordFormat)
	dst = binary.AppendUvarint(dst, r.Version)
	dst = binary.AppendUvarint(dst, uint64(len(r.Issuer)))
	dst = binary.AppendUvarint(dst, uint64(len(r.Subject)))
	dst = binary.AppendUvarint(dst, uint64(len(r.SID)))
	dst = append(dst, r.Issuer...)
	dst = append(dst, r.Subject...)
	dst = append(dst, r.SID...)
	dst = appendTime(dst, r.CreatedAt)
	dst = appendTime(dst, r.ExpiresAt)
	dst = appendTime(dst, r.IdleExpiresAt)
	return append(dst, r.Data...)
}

// encodedSize is an upper bound of len(appendRecord(nil, r)).
func encodedSize(r *session.Record) int {
	return 1 + 4*binary.MaxVarintLen64 + len(r.Issuer) + len(r.Subject) + len(r.SID) +
		3*(binary.MaxVarintLen64+binary.MaxVarintLen32) + len(r.Data)
}

func encodeRecord(r *session.Record) []byte {
	return appendRecord(make([]byte, 0, encodedSize(r)), r)
}

// decodeRecord decodes the record stored under key. It copies everything it
// keeps out of b, which may be bolt's memory-mapped page.
func decodeRecord(key session.Key, b []byte) (*session.Record, error) {
	d := decoder{b: b}
	if format := d.byte(); format != recordFormat {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("%w: unknown format %d", errCorrupt, format)
	}
	r := &session.Record{Key: key}
	r.Version = d.uvarint()
	nIss, nSub, nSID := d.length(), d.length(), d.length()
	strs := d.bytes(nIss + nSub + nSID)
	r.CreatedAt = d.time()
	r.ExpiresAt = d.time()
	r.IdleExpiresAt = d.time()
	if d.err != nil {
		return nil, d.err
	}
	all := string(strs)
	r.Issuer = all[:nIss]
	r.Subject = all[nIss : nIss+nSub]
	r.SID = all[nIss+nSub:]
	if len(d.b) > 0 {
		r.Data = append([]byte(nil), d.b...)
	}
	return r, nil
}

// decoder reads a record; its first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("format")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// length reads a string length no longer than the rest of the record.
func (d *decoder) length() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail("length")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail("length")
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.fail("time")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// Sortable times, the prefix of expiry index keys and the tail of lock and
// one-time-id values: 8 bytes big-endian unix seconds with the sign bit
// flipped, then 4 bytes big-endian nanoseconds, so that byte order is time
// order over time.Time's whole range.
const sortableTimeLen = 12

func appendSortableTime(dst []byte, t time.Time) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

func parseSortableTime(b []byte) (time.Time, bool) {
	if len(b) != sortableTimeLen {
		return time.Time{}, false
	}
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	nsec := binary.BigEndian.Uint32(b[8:])
	if nsec >= uint32(time.Second) {
		return time.Time{}, false
	}
	return time.Unix(sec, int64(nsec)).UTC(), true
}

// indexKey returns the key of a sid or sub index entry: the uvarint-length-
// prefixed issuer and value, then the 32-byte session key. The prefix
// without the session key is the same for every session of (iss, v), and no
// other pair's prefix starts with it, whatever bytes iss and v contain.
func indexKey(iss, v string, key session.Key) []byte {
	return append(indexPrefix(iss, v, len(key)), key[:]...)
}

func indexPrefix(iss, v string, extra int) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(iss)+len(v)+extra)
	b = binary.AppendUvarint(b, uint64(len(iss)))
	b = append(b, iss...)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// expiryKey returns the key of a session's expiry index entry: the sortable
// time at which it expires (the earlier of its absolute and idle ends), then
// the session key.
func expiryKey(r *session.Record) []byte {
	b := make([]byte, 0, sortableTimeLen+len(r.Key))
	b = appendSortableTime(b, expiry(r))
	return append(b, r.Key[:]...)
}

// expiry is when r expires: r.Expired(t) is !t.Before(expiry(r)).
func expiry(r *session.Record) time.Time {
	if r.IdleExpiresAt.Before(r.ExpiresAt) {
		return r.IdleExpiresAt
	}
	return r.ExpiresAt
}

// Values of the locks bucket: 8 bytes big-endian lease token, then the
// sortable end of the lock's ttl. Values of the one-time-id bucket: the
// sortable end of the id's ttl.
const lockValueLen = 8 + sortableTimeLen

func encodeLock(token uint64, expires time.Time) []byte {
	b := make([]byte, 0, lockValueLen)
	b = binary.BigEndian.AppendUint64(b, token)
	return appendSortableTime(b, expires)
}

func decodeLock(b []byte) (token uint64, expires time.Time, ok bool) {
	if len(b) != lockValueLen {
		return 0, time.Time{}, false
	}
	expires, ok = parseSortableTime(b[8:])
	return binary.BigEndian.Uint64(b), expires, ok
}
