// Package token keeps access tokens usable: it refreshes a session's user
// token shortly before it expires, once per session however many requests
// ask at the same moment, in this process and across every bff instance
// that shares the session store; and it caches client-credentials tokens.
package token

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
)

// Defaults of [RefresherConfig].
const (
	DefaultRefreshBefore = time.Minute
	DefaultLockTTL       = 30 * time.Second
	DefaultPollInterval  = 25 * time.Millisecond
)

// releaseTimeout bounds the release of a refresh lock.
const releaseTimeout = 5 * time.Second

// waitBeyondLock is how much longer than the lock ttl an instance waits for
// another's refresh by default: long enough to take the lock over from an
// instance that died holding it.
const waitBeyondLock = 5 * time.Second

// ErrSessionEnded means the session can no longer get a usable token (the OP
// answered invalid_grant, or the access token expired and there is no
// refresh token, or the session is gone); the refresher has deleted it. The
// SPA gets 401 and logs in again, instead of a session that looks alive but
// cannot call anything.
var ErrSessionEnded = errors.New("token: the session has ended")

// ErrTokenExpired means the access token has expired and there is no
// refresh token, but the session goes on because the refresher was
// configured with KeepExpired: the caller serves the request without the
// user's token, or answers 401.
var ErrTokenExpired = errors.New("token: the access token has expired and cannot be refreshed")

// RefresherConfig configures a [Refresher].
type RefresherConfig struct {
	Sessions     *session.Manager
	RelyingParty *oidc.RelyingParty
	// RefreshBefore is how long before its expiry an access token is
	// refreshed; default one minute.
	RefreshBefore time.Duration
	// LockTTL bounds how long one instance may hold a session's refresh
	// lock, should it die mid-refresh; default 30s. The request to the
	// token endpoint is given three quarters of it, so a refresh always
	// ends while its lock is held.
	LockTTL time.Duration
	// PollInterval is how often an instance that found the lock taken
	// re-reads the session to pick up the other instance's result; default
	// 25ms.
	PollInterval time.Duration
	// WaitMax bounds that wait; default LockTTL + 5s, so that a waiter
	// outlasts the lock of an instance that died while refreshing and
	// takes the refresh over.
	WaitMax time.Duration
	// KeepExpired keeps a session whose access token has expired and
	// which has no refresh token: UserToken answers ErrTokenExpired instead
	// of ending it. By default such a session ends (ErrSessionEnded), so a
	// SPA never sees a session that looks logged in but cannot call its
	// APIs. A session whose refresh token the OP refuses ends either way.
	KeepExpired bool
	// RevokeOrphans revokes (RFC 7009) a refresh token the OP issued in a
	// refresh whose result bff cannot keep: the session was deleted while
	// it was being refreshed (a logout racing the refresh), or the
	// refreshed ID token is invalid. Otherwise that grant would stay alive
	// at the OP with nobody holding it.
	RevokeOrphans bool
	Logger        *slog.Logger
	Now           func() time.Time
}

// Refresher refreshes sessions' access tokens.
//
// Within a process, concurrent requests of one session share one refresh
// (singleflight keyed by session). Across processes, the refresh runs under
// a store lock (Store.Lock: Redis SET NX PX, a PostgreSQL row, a bbolt
// bucket); an instance that finds the lock taken waits for the new version
// of the session instead of refreshing too. The rotated refresh token is
// saved with a compare-and-set on the session version, so it is never lost
// to a concurrent write.
type Refresher struct {
	sessions      *session.Manager
	store         session.Store
	rp            *oidc.RelyingParty
	refreshBefore time.Duration
	lockTTL       time.Duration
	poll          time.Duration
	waitMax       time.Duration
	keepExpired   bool
	revokeOrphans bool
	log           *slog.Logger
	now           func() time.Time
	flight        singleflight.Group
}

// NewRefresher returns a Refresher for cfg.
func NewRefresher(cfg RefresherConfig) (*Refresher, error) {
	if cfg.Sessions == nil || cfg.RelyingParty == nil {
		return nil, errors.New("token: refresher needs a session manager and a relying party")
	}
	lockTTL := orDefault(cfg.LockTTL, DefaultLockTTL)
	r := &Refresher{
		sessions:      cfg.Sessions,
		store:         cfg.Sessions.Store(),
		rp:            cfg.RelyingParty,
		refreshBefore: orDefault(cfg.RefreshBefore, DefaultRefreshBefore),
		lockTTL:       lockTTL,
		poll:          orDefault(cfg.PollInterval, DefaultPollInterval),
		waitMax:       orDefault(cfg.WaitMax, lockTTL+waitBeyondLock),
		keepExpired:   cfg.KeepExpired,
		revokeOrphans: cfg.RevokeOrphans,
		log:           cfg.Logger,
		now:           cfg.Now,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// UserToken returns the session's access token, refreshed first when it
// expires within RefreshBefore, and the session as it is afterwards. When
// the OP cannot be reached but the current token has not expired yet, it
// returns the current token. Errors: ErrSessionEnded, ErrTokenExpired (only
// with KeepExpired), an *oidc.UnavailableError, an *oidc.ProtocolError, or
// a store error.
func (r *Refresher) UserToken(ctx context.Context, s *session.Session) (string, *session.Session, error) {
	if !r.needsRefresh(s) {
		return s.Tokens.AccessToken, s, nil
	}
	if s.Tokens.RefreshToken == "" && r.keepExpired {
		// Nothing to refresh, nothing to coordinate: the token is good
		// until it expires, and then the session goes on without one.
		if r.expired(s) {
			return "", s, ErrTokenExpired
		}
		return s.Tokens.AccessToken, s, nil
	}
	ch := r.flight.DoChan(string(s.Key[:]), func() (any, error) {
		// One refresh serves every waiting request, so it must not die
		// with the request that happened to start it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.waitMax+r.lockTTL)
		defer cancel()
		return r.refresh(rctx, s.Key)
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	if res.Err != nil {
		// An OP that is down, or that refuses for a reason other than a dead
		// refresh token (a rotated client secret, say): the current token
		// still works until it expires.
		if !errors.Is(res.Err, ErrSessionEnded) && !errors.Is(res.Err, ErrTokenExpired) &&
			s.Tokens.AccessToken != "" && r.now().Before(s.Tokens.Expiry) {
			r.log.WarnContext(ctx, "token refresh failed; using the current token until it expires", "session", s.Key.String(), "error", res.Err)
			return s.Tokens.AccessToken, s, nil
		}
		return "", nil, res.Err
	}
	fresh := res.Val.(*session.Session)
	return fresh.Tokens.AccessToken, fresh, nil
}

// EndsWithToken reports whether the session ends when its access token
// expires: it has no refresh token, the token's expiry is known, and the
// refresher does not keep expired sessions (KeepExpired).
func (r *Refresher) EndsWithToken(s *session.Session) bool {
	return !r.keepExpired && s.Tokens.RefreshToken == "" && !s.Tokens.Expiry.IsZero()
}

// needsRefresh reports whether the access token expires within the refresh
// margin: RefreshBefore, or half the token's lifetime when that is shorter,
// so that a token that lives 30 seconds is not refreshed on every request.
func (r *Refresher) needsRefresh(s *session.Session) bool {
	exp := s.Tokens.Expiry
	if exp.IsZero() {
		return false
	}
	margin := r.refreshBefore
	if got := s.Tokens.Obtained; !got.IsZero() && exp.Sub(got)/2 < margin {
		margin = exp.Sub(got) / 2
	}
	return !r.now().Add(margin).Before(exp)
}

func (r *Refresher) expired(s *session.Session) bool {
	exp := s.Tokens.Expiry
	return !exp.IsZero() && !r.now().Before(exp)
}

// refresh brings the session under key up to date, refreshing at most once
// across all instances.
func (r *Refresher) refresh(ctx context.Context, key session.Key) (*session.Session, error) {
	cur, err := r.current(ctx, key)
	if err != nil || !r.needsRefresh(cur) {
		return cur, err
	}
	lockName := "refresh:" + hex.EncodeToString(key[:])
	deadline := r.now().Add(r.waitMax)
	var lease session.Lease
	var lockedAt time.Time // on the real clock, as the lock's ttl runs
	for {
		lockedAt = time.Now() // before the request: the ttl starts no earlier
		lease, err = r.store.Lock(ctx, lockName, r.lockTTL)
		if err == nil {
			break
		}
		if !errors.Is(err, session.ErrLockHeld) {
			return nil, fmt.Errorf("token: refresh lock: %w", err)
		}
		// Another instance is refreshing this session: wait for its
		// result rather than spend the refresh token a second time.
		if !r.now().Before(deadline) {
			return nil, &oidc.UnavailableError{Op: "refresh", Err: errors.New("another instance holds the refresh lock too long")}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(r.poll):
		}
		if cur, err = r.current(ctx, key); err != nil || !r.needsRefresh(cur) {
			return cur, err
		}
	}
	defer func() {
		// Bounded even when ctx has no deadline: a store that stopped
		// answering must not hold this session's refresh (and every
		// request waiting for it) until TCP gives up; the lock's ttl
		// frees it anyway.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			r.log.WarnContext(ctx, "refresh lock not released", "session", key.String(), "error", err)
		}
	}()
	// Read again under the lock: the holder before us may have finished
	// between our last read and our lock.
	if cur, err = r.current(ctx, key); err != nil || !r.needsRefresh(cur) {
		return cur, err
	}
	if cur.Tokens.RefreshToken == "" {
		if !r.expired(cur) {
			return cur, nil
		}
		if r.keepExpired {
			return nil, ErrTokenExpired
		}
		return nil, r.end(ctx, cur, "the access token expired and there is no refresh token")
	}

	// The refresh must end while the lock is ours: once it expires another
	// instance may take it and spend the same refresh token again. The
	// time since the lock was taken (a slow store read) counts.
	end := lockedAt.Add(r.lockTTL * 3 / 4)
	if time.Until(end) < r.lockTTL/4 {
		return nil, &oidc.UnavailableError{Op: "refresh", Err: errors.New("too little of the refresh lock's ttl is left to ask the OP")}
	}
	opCtx, cancel := context.WithDeadline(ctx, end)
	res, err := r.rp.Refresh(opCtx, cur.Tokens.RefreshToken, cur.Tokens.IDToken)
	cancel()
	if err != nil {
		var ve *oidc.ValidationError
		switch {
		case errors.Is(err, oidc.ErrInvalidGrant):
			// Unless someone else has refreshed meanwhile (a lock that
			// expired under a slow OP), the refresh token is dead.
			if now, gerr := r.current(ctx, key); gerr == nil && now.Version != cur.Version && !r.needsRefresh(now) {
				return now, nil
			}
			return nil, r.end(ctx, cur, "the OP refused the refresh token (invalid_grant)")
		case errors.As(err, &ve):
			// A refreshed ID token for another subject or issuer is not
			// a glitch to retry; the refresh token that came with it is
			// not kept.
			r.log.WarnContext(ctx, "refreshed ID token rejected", "session", key.String(), "rule", ve.Rule, "error", err)
			if res != nil {
				r.revokeOrphan(ctx, res.Tokens.RefreshToken, cur.Tokens.RefreshToken)
			}
			return nil, r.end(ctx, cur, "the refreshed ID token is invalid")
		default:
			return nil, err
		}
	}
	next := cur.Clone()
	next.Tokens = session.Tokens{
		AccessToken:  res.Tokens.AccessToken,
		TokenType:    res.Tokens.TokenType,
		Expiry:       res.Tokens.Expiry,
		Obtained:     r.now(),
		RefreshToken: res.Tokens.RefreshToken,
		IDToken:      res.Tokens.IDToken,
		Scope:        orString(res.Tokens.Scope, cur.Tokens.Scope),
	}
	if err := r.save(ctx, next); err != nil {
		return nil, err
	}
	r.log.InfoContext(ctx, "access token refreshed", "session", key.String(), "sub", next.Subject,
		"expires_in", next.Tokens.Expiry.Sub(r.now()).Round(time.Second).String(),
		"refresh_token_rotated", res.Tokens.RefreshToken != cur.Tokens.RefreshToken)
	return next, nil
}

// save stores the refreshed session. The OP has already spent the old
// refresh token, so a failed write would lose the only usable one: retry a
// few times before giving up.
func (r *Refresher) save(ctx context.Context, next *session.Session) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
		}
		err = r.sessions.Update(ctx, next)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, session.ErrNotFound):
			// Logged out while refreshing: nothing to save, and the
			// rotated refresh token, which the logout could not know of,
			// must not outlive the session.
			r.revokeOrphan(ctx, next.Tokens.RefreshToken, "")
			return ErrSessionEnded
		case errors.Is(err, session.ErrConflict):
			// Written by someone without the lock (never a refresh):
			// keep their data, put our tokens on top.
			cur, gerr := r.sessions.Get(ctx, next.Key)
			if gerr != nil {
				return fmt.Errorf("token: saving refreshed tokens: %w", gerr)
			}
			tokens := next.Tokens
			next = cur.Clone()
			next.Tokens = tokens
		}
	}
	r.log.ErrorContext(ctx, "refreshed tokens could not be saved; the session will need a new login", "session", next.Key.String(), "error", err)
	return fmt.Errorf("token: saving refreshed tokens: %w", err)
}

// revokeOrphan revokes a refresh token the OP issued that no session keeps,
// unless it is the one the session had (spent, or revoked by a logout).
func (r *Refresher) revokeOrphan(ctx context.Context, refreshToken, previous string) {
	if !r.revokeOrphans || refreshToken == "" || refreshToken == previous {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.rp.Revoke(rctx, refreshToken, "refresh_token"); err != nil && !errors.Is(err, oidc.ErrNoRevocationEndpoint) {
		r.log.WarnContext(ctx, "orphaned refresh token not revoked", "error", err)
	}
}

// current reads the session from the store, authoritative over any copy.
func (r *Refresher) current(ctx context.Context, key session.Key) (*session.Session, error) {
	s, err := r.sessions.Get(ctx, key)
	if errors.Is(err, session.ErrNotFound) {
		return nil, ErrSessionEnded
	}
	return s, err
}

// end deletes a session that cannot get tokens any more.
func (r *Refresher) end(ctx context.Context, s *session.Session, why string) error {
	r.log.InfoContext(ctx, "session ended", "session", s.Key.String(), "sub", s.Subject, "reason", why)
	if err := r.sessions.Delete(ctx, nil, s.Key); err != nil {
		r.log.WarnContext(ctx, "ended session not deleted", "session", s.Key.String(), "error", err)
	}
	return ErrSessionEnded
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
