package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gobff/bff/internal/cookie"
)

// Defaults of [ManagerConfig].
const (
	DefaultCookieName    = "__Host-bff"
	DefaultLifetime      = 8 * time.Hour
	DefaultIdleTimeout   = time.Hour
	DefaultTouchInterval = time.Minute
)

// idBytes is the size of the random session identifier in the cookie: 256
// bits, well past the 64 bits of entropy OWASP asks of a session id.
const idBytes = 32

// ManagerConfig configures a [Manager].
type ManagerConfig struct {
	Store   Store
	KeyRing *KeyRing // seals each session's Payload

	// CookieName defaults to DefaultCookieName. A name with the __Host-
	// prefix makes the browser refuse the cookie from anything but this
	// exact origin over a secure channel.
	CookieName string
	// Lifetime is the absolute lifetime of a session; default 8h.
	Lifetime time.Duration
	// IdleTimeout ends a session not used for that long; default 1h, never
	// more than Lifetime.
	IdleTimeout time.Duration
	// TouchInterval is how stale the idle expiry may get before a request
	// moves it forward: a store write at most once per interval per session,
	// not one per request. Default one minute.
	TouchInterval time.Duration
	// CacheSize bounds the number of opened payloads kept in memory, so a
	// request does not decrypt its session's tokens again while the session
	// is unchanged. Default 100000; negative disables the cache.
	CacheSize int

	Now func() time.Time
}

// Manager creates, loads, updates and ends sessions, and keeps the session
// cookie in step with the store.
type Manager struct {
	store       Store
	ring        *KeyRing
	cookieName  string
	lifetime    time.Duration
	idleTimeout time.Duration
	touchEvery  time.Duration
	now         func() time.Time
	cache       *payloadCache
}

// NewManager returns a Manager for cfg, with defaults filled in.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("session: manager needs a store")
	}
	if cfg.KeyRing == nil {
		return nil, errors.New("session: manager needs a key ring")
	}
	m := &Manager{
		store:       cfg.Store,
		ring:        cfg.KeyRing,
		cookieName:  cfg.CookieName,
		lifetime:    cfg.Lifetime,
		idleTimeout: cfg.IdleTimeout,
		touchEvery:  cfg.TouchInterval,
		now:         cfg.Now,
	}
	if m.cookieName == "" {
		m.cookieName = DefaultCookieName
	}
	if m.lifetime <= 0 {
		m.lifetime = DefaultLifetime
	}
	if m.idleTimeout <= 0 {
		m.idleTimeout = min(DefaultIdleTimeout, m.lifetime)
	}
	if m.idleTimeout > m.lifetime {
		return nil, fmt.Errorf("session: idle timeout %v is longer than the lifetime %v", m.idleTimeout, m.lifetime)
	}
	if m.touchEvery <= 0 {
		m.touchEvery = min(DefaultTouchInterval, m.idleTimeout/2)
	}
	if m.now == nil {
		m.now = time.Now
	}
	size := cfg.CacheSize
	if size == 0 {
		size = 100000
	}
	if size > 0 {
		m.cache = newPayloadCache(size)
	}
	return m, nil
}

// CookieName returns the name of the session cookie.
func (m *Manager) CookieName() string { return m.cookieName }

// Store returns the manager's store.
func (m *Manager) Store() Store { return m.store }

// Create stores s as a new session under a fresh random identifier, fills in
// its key, version, timestamps and logout id, and sets the session cookie on
// w. It never reuses an identifier, so a session id planted before login
// (session fixation) is worthless.
func (m *Manager) Create(ctx context.Context, w http.ResponseWriter, s *Session) error {
	if s.Payload == nil {
		s.Payload = &Payload{}
	}
	if s.LogoutID == "" {
		s.LogoutID = rand.Text()
	}
	// Whole seconds: the sealed context counts in seconds, and every store
	// keeps those exactly.
	now := m.now().Truncate(time.Second)
	s.CreatedAt = now
	s.ExpiresAt = now.Add(m.lifetime)
	s.IdleExpiresAt = now.Add(m.idleTimeout)

	var id string
	for attempt := 0; ; attempt++ {
		id = newID()
		s.Key = KeyOf(id)
		data, err := m.seal(s)
		if err != nil {
			return err
		}
		rec := s.record(data)
		err = m.store.Create(ctx, rec)
		if err == nil {
			s.Version = rec.Version
			break
		}
		// A collision of 256-bit random ids means a broken random source,
		// not bad luck; retry once, then give up loudly.
		if !errors.Is(err, ErrExists) || attempt > 0 {
			return fmt.Errorf("session: create: %w", err)
		}
	}
	cookie.Set(w, m.cookieName, id, m.lifetime, http.SameSiteStrictMode)
	return nil
}

// Load returns the session of the request's cookie, or an error wrapping
// ErrNotFound when there is no cookie, no such session, or it has expired.
// When the idle expiry is more than the touch interval old, Load moves it
// forward in the store.
func (m *Manager) Load(ctx context.Context, r *http.Request) (*Session, error) {
	return m.load(ctx, r, true)
}

// Peek is Load without moving the idle expiry: for requests that only look,
// such as a SPA polling whether its session is still alive.
func (m *Manager) Peek(ctx context.Context, r *http.Request) (*Session, error) {
	return m.load(ctx, r, false)
}

func (m *Manager) load(ctx context.Context, r *http.Request, touch bool) (*Session, error) {
	id, ok := cookie.Get(r, m.cookieName)
	if !ok || !validID(id) {
		return nil, ErrNotFound
	}
	key := KeyOf(id)
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			m.cache.forget(key)
		}
		return nil, err
	}
	s, err := m.open(rec)
	if err != nil {
		if errors.Is(err, ErrUnsealable) {
			// Sealed under a retired key, or tampered with: the session is
			// as good as gone, and the browser should log in again rather
			// than get errors until it expires.
			_ = m.store.Delete(ctx, key)
		}
		return nil, err
	}
	if !touch {
		return s, nil
	}
	now := m.now()
	if lastTouch := s.IdleExpiresAt.Add(-m.idleTimeout); now.Sub(lastTouch) >= m.touchEvery && s.IdleExpiresAt.Before(s.ExpiresAt) {
		idle := now.Add(m.idleTimeout)
		if idle.After(s.ExpiresAt) {
			idle = s.ExpiresAt
		}
		if err := m.store.Touch(ctx, key, idle); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, err
			}
			return nil, fmt.Errorf("session: touch: %w", err)
		}
		moved := *s
		moved.IdleExpiresAt = idle
		s = &moved
	}
	return s, nil
}

// Update saves s, changed from a loaded session, if nobody else has saved
// that session since it was loaded; otherwise it returns an error wrapping
// ErrConflict and the caller re-loads and decides again. On success s has
// the new version.
func (m *Manager) Update(ctx context.Context, s *Session) error {
	// An update is activity: it moves the idle expiry as Touch would, so
	// it never writes back an older idle expiry than a Touch since the load.
	idle := m.now().Add(m.idleTimeout)
	if idle.After(s.ExpiresAt) {
		idle = s.ExpiresAt
	}
	if idle.After(s.IdleExpiresAt) {
		s.IdleExpiresAt = idle
	}
	data, err := m.seal(s)
	if err != nil {
		return err
	}
	rec := s.record(data)
	if err := m.store.Update(ctx, rec); err != nil {
		return fmt.Errorf("session: update: %w", err)
	}
	s.Version = rec.Version
	return nil
}

// Get returns the session stored under key, as Load does for a cookie but
// without touching it.
func (m *Manager) Get(ctx context.Context, key Key) (*Session, error) {
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return m.open(rec)
}

// Delete removes the session from the store and then clears the cookie on w
// (when w is not nil); when the store fails, the cookie stays.
func (m *Manager) Delete(ctx context.Context, w http.ResponseWriter, key Key) error {
	m.cache.forget(key)
	if err := m.store.Delete(ctx, key); err != nil {
		// The cookie stays: the session does too, and a store outage
		// must not log the browser out.
		return fmt.Errorf("session: delete: %w", err)
	}
	if w != nil {
		m.ClearCookie(w)
	}
	return nil
}

// ClearCookie tells the browser to drop the session cookie.
func (m *Manager) ClearCookie(w http.ResponseWriter) {
	cookie.Clear(w, m.cookieName, http.SameSiteStrictMode)
}

// HasCookie reports whether the request carries a session cookie at all,
// valid or not.
func (m *Manager) HasCookie(r *http.Request) bool {
	_, ok := cookie.Get(r, m.cookieName)
	return ok
}

func (m *Manager) seal(s *Session) ([]byte, error) {
	plain, err := json.Marshal(s.Payload)
	if err != nil {
		return nil, fmt.Errorf("session: encoding payload: %w", err)
	}
	return m.ring.Seal(plain, sealContext(s.Key, s.Issuer, s.Subject, s.SID, s.CreatedAt, s.ExpiresAt)), nil
}

// sealContext is the additional data a payload is sealed with: the session
// key and every clear field of the record but the idle expiry (which Touch
// moves without resealing). A store writer without the keys can then
// neither move a payload to another session nor change whose session it is
// or how long it lives: the payload would no longer open. Times count in
// whole seconds, which every store keeps exactly.
func sealContext(key Key, iss, sub, sid string, created, expires time.Time) []byte {
	b := make([]byte, 0, len(key)+len(iss)+len(sub)+len(sid)+3*binary.MaxVarintLen64+2*binary.MaxVarintLen64)
	b = append(b, "bff-session-v1"...)
	b = append(b, key[:]...)
	for _, s := range []string{iss, sub, sid} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, created.Unix())
	b = binary.AppendVarint(b, expires.Unix())
	return b
}

// open turns a record into a Session, reusing the opened payload of the same
// session version when it is cached.
func (m *Manager) open(rec *Record) (*Session, error) {
	if s := m.cache.get(rec); s != nil {
		return s, nil
	}
	plain, err := m.ring.Open(rec.Data, sealContext(rec.Key, rec.Issuer, rec.Subject, rec.SID, rec.CreatedAt, rec.ExpiresAt))
	if err != nil {
		return nil, fmt.Errorf("session %s: %w: %w", rec.Key, ErrNotFound, err)
	}
	p := new(Payload)
	if err := json.Unmarshal(plain, p); err != nil {
		return nil, fmt.Errorf("session %s: %w: %w: decoding payload: %w", rec.Key, ErrNotFound, ErrUnsealable, err)
	}
	p.prepare()
	s := fromRecord(rec, p)
	m.cache.put(rec, s)
	return s, nil
}

// newID returns a fresh session identifier: 32 bytes from crypto/rand,
// base64url without padding (43 characters).
func newID() string {
	b := make([]byte, idBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b)
}

// validID reports whether id has the shape newID produces, so that junk in a
// cookie is not even hashed and looked up.
func validID(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(idBytes) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// DeleteBySID removes every session of issuer iss with the OP session id
// sid and returns them opened, so the caller can revoke their refresh
// tokens (Back-Channel Logout by sid). A session that cannot be opened any
// more is removed but not returned. With an error, the sessions returned
// are those the store removed before it failed: revoke their tokens too.
func (m *Manager) DeleteBySID(ctx context.Context, iss, sid string) ([]*Session, error) {
	recs, err := m.store.DeleteBySID(ctx, iss, sid)
	if err != nil {
		err = fmt.Errorf("session: delete by sid: %w", err)
	}
	return m.openRemoved(recs), err
}

// DeleteBySub removes every session of issuer iss for subject sub and
// returns them opened, as DeleteBySID does.
func (m *Manager) DeleteBySub(ctx context.Context, iss, sub string) ([]*Session, error) {
	recs, err := m.store.DeleteBySub(ctx, iss, sub)
	if err != nil {
		err = fmt.Errorf("session: delete by sub: %w", err)
	}
	return m.openRemoved(recs), err
}

// ListBySub returns the live sessions of issuer iss for subject sub,
// opened. Sessions that cannot be opened are left out.
func (m *Manager) ListBySub(ctx context.Context, iss, sub string) ([]*Session, error) {
	recs, err := m.store.ListBySub(ctx, iss, sub)
	if err != nil {
		return nil, fmt.Errorf("session: list by sub: %w", err)
	}
	out := make([]*Session, 0, len(recs))
	for _, rec := range recs {
		if s, err := m.open(rec); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *Manager) openRemoved(recs []*Record) []*Session {
	out := make([]*Session, 0, len(recs))
	for _, rec := range recs {
		s, err := m.open(rec)
		m.cache.forget(rec.Key) // the session is gone; open may have cached it
		if err == nil {
			out = append(out, s)
		}
	}
	return out
}

// IdleTimeout returns the sliding session timeout.
func (m *Manager) IdleTimeout() time.Duration { return m.idleTimeout }
