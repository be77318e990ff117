package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"
)

// Key identifies a session in a [Store]: the SHA-256 digest of the session
// cookie's value. The cookie value itself never reaches a store, so a dump of
// the store cannot be replayed as a cookie.
type Key [32]byte

// KeyOf returns the store key of a session cookie value.
func KeyOf(cookieValue string) Key {
	// A plain []byte(cookieValue) allocates for strings over 32 bytes; a
	// stack buffer keeps this allocation-free on every request.
	var buf [64]byte
	return Key(sha256.Sum256(append(buf[:0], cookieValue...)))
}

// String returns a short, non-reversible prefix of the key for log lines. It
// is enough to correlate log lines of one session and useless to an attacker.
func (k Key) String() string {
	return hex.EncodeToString(k[:4])
}

// Handle returns a public name of the session for the user's list of
// sessions: derived from the key by a one-way function, so that it names
// the session without being usable as (or leading to) its cookie or store
// key.
func (k Key) Handle() string {
	var buf [len("bff-session-handle\x00") + len(Key{})]byte
	sum := sha256.Sum256(append(append(buf[:0], "bff-session-handle\x00"...), k[:]...))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Record is what a [Store] keeps for one session. Everything a store must
// index or expire on is in the clear; everything else (claims and tokens) is
// in Data, sealed by a [KeyRing] before it reaches the store, so a store
// never sees a token.
//
// A Record returned by a Store is owned by the caller only until the next call
// that modifies the same session; callers must not modify it. Stores may hand
// out the same immutable Record to many readers.
type Record struct {
	Key Key
	// Version is assigned by the store: 1 after Create, incremented by each
	// successful Update. Update is a compare-and-set on it.
	Version uint64

	Issuer  string // iss of the ID token
	Subject string // sub of the ID token
	SID     string // sid of the ID token (the OP's session), may be empty

	CreatedAt time.Time
	// ExpiresAt is the absolute end of the session. Stores report the record
	// as not found from then on and may delete it.
	ExpiresAt time.Time
	// IdleExpiresAt is the sliding end of the session, moved forward by Touch.
	// Stores report the record as not found from then on and may delete it.
	IdleExpiresAt time.Time

	// Data is the sealed payload, opaque to the store.
	Data []byte
}

// Expired reports whether the record has passed its absolute or idle end.
func (r *Record) Expired(now time.Time) bool {
	return !now.Before(r.ExpiresAt) || !now.Before(r.IdleExpiresAt)
}

// Errors a Store returns. Stores wrap them with context; test with errors.Is.
var (
	// ErrNotFound: no such session, or it has expired.
	ErrNotFound = errors.New("session: not found")
	// ErrExists: Create found a live session under the same key.
	ErrExists = errors.New("session: already exists")
	// ErrConflict: Update's version did not match the stored one; another
	// writer got there first. Re-read and retry.
	ErrConflict = errors.New("session: version conflict")
	// ErrLockHeld: Lock found the lock held by someone else.
	ErrLockHeld = errors.New("session: lock held")
)

// Store keeps sessions, locks and one-time identifiers. Implementations must
// be safe for concurrent use by many goroutines and, for shared stores
// (Redis, PostgreSQL), by many processes. Every implementation must pass the
// conformance suite in package storetest.
//
// Expiry is judged against the store's clock. Read operations never return an
// expired record; DeleteExpired reclaims space and may be a no-op for stores
// whose server expires keys itself.
type Store interface {
	// Get returns the live session under key, or ErrNotFound.
	Get(ctx context.Context, key Key) (*Record, error)

	// Create stores a new session. It fails with ErrExists if a live session
	// has the same key. On success rec.Version is 1.
	Create(ctx context.Context, rec *Record) error

	// Update replaces the session's indexed fields, expiries and Data if the
	// stored version equals rec.Version, and then sets rec.Version to the new
	// version. CreatedAt is kept as stored. Records from Get may be shared:
	// copy one (upd := *rec) before changing it for Update. It fails with ErrConflict on a version mismatch and ErrNotFound
	// when the session is gone. This is what keeps a rotated refresh token
	// from being lost when two requests refresh at once.
	Update(ctx context.Context, rec *Record) error

	// Touch moves the session's idle expiry to idleExpiresAt (never past
	// ExpiresAt) without changing its version or data. ErrNotFound when gone.
	Touch(ctx context.Context, key Key, idleExpiresAt time.Time) error

	// Delete removes the session. Deleting a missing session is not an error.
	Delete(ctx context.Context, key Key) error

	// DeleteBySID removes every session of issuer iss with OP session id sid
	// and returns the live ones it removed, in any order (OpenID Back-Channel
	// Logout 1.0, section 2.7, by sid), so that the caller can revoke their
	// refresh tokens. Expired sessions are removed too but not returned. An
	// empty sid matches nothing. The lookup is indexed, never a scan. A
	// store that fails partway may return the sessions it did remove
	// together with the error.
	DeleteBySID(ctx context.Context, iss, sid string) ([]*Record, error)

	// DeleteBySub removes every session of issuer iss for subject sub and
	// returns the live ones it removed, as DeleteBySID does (Back-Channel
	// Logout by sub, or "log out everywhere").
	DeleteBySub(ctx context.Context, iss, sub string) ([]*Record, error)

	// ListBySub returns the live sessions of issuer iss for subject sub.
	ListBySub(ctx context.Context, iss, sub string) ([]*Record, error)

	// Lock takes the named lock for at most ttl, or fails at once with
	// ErrLockHeld while someone else holds it. The lease's Release frees it
	// only if it is still this holder's (a lock that outlived its ttl and was
	// taken by another is left alone; Release never fails for that). ttl
	// must be positive.
	Lock(ctx context.Context, name string, ttl time.Duration) (Lease, error)

	// SeenJTI records the one-time identifier id for ttl and reports whether
	// it had already been recorded and is still within its ttl. The check and
	// the record are one atomic step, so of two concurrent callers exactly one
	// gets false. Used for logout-token jti replay and single-use login state.
	SeenJTI(ctx context.Context, id string, ttl time.Duration) (seen bool, err error)

	// ForgetJTI removes the one-time identifier id, so that it counts as
	// never seen: for when the work a SeenJTI guarded failed and must be
	// possible to retry (a back-channel logout whose sessions could not be
	// deleted). Forgetting an unknown id is not an error.
	ForgetJTI(ctx context.Context, id string) error

	// DeleteExpired removes expired sessions, locks and identifiers and
	// returns how many sessions it removed. Stores whose server expires
	// entries itself may do less, or nothing, and report 0.
	DeleteExpired(ctx context.Context) (int, error)

	// Ping reports whether the store can serve requests now: a round trip
	// to its server, for readiness probes. An error means requests that
	// need the store fail until it is back.
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}

// Lease is a held lock from [Store.Lock].
type Lease interface {
	// Release frees the lock if this lease still holds it.
	Release(ctx context.Context) error
}
