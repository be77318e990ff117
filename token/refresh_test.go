package token_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobff/bff/bfftest"
	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
	"github.com/gobff/bff/token"
)

type fixture struct {
	op       *bfftest.OP
	rp       *oidc.RelyingParty
	store    session.Store
	sessions *session.Manager
	ring     *session.KeyRing
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	op := bfftest.NewOP(t)
	rp, err := oidc.New(oidc.Config{Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RedirectURL: "https://app.example/signin-oidc", Scopes: []string{"openid", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, session.KeySize)
	rand.Read(key)
	ring, _ := session.NewKeyRing("session", key)
	store := memstore.New()
	m, err := session.NewManager(session.ManagerConfig{Store: store, KeyRing: ring})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{op: op, rp: rp, store: store, sessions: m, ring: ring}
}

// login runs the code flow against the OP and stores a session whose access
// token expires in expiresIn.
func (f *fixture) login(t *testing.T, expiresIn time.Duration) *session.Session {
	t.Helper()
	req := oidc.NewAuthRequest()
	authURL, err := f.rp.AuthCodeURL(context.Background(), req, oidc.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	code, err := f.rp.CheckAuthResponse(context.Background(), bfftest.Authorize(t, authURL))
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.rp.Exchange(context.Background(), code, req)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(res.Claims)
	s := &session.Session{Issuer: res.IDToken.Issuer, Subject: res.IDToken.Subject, SID: res.IDToken.SID,
		Payload: &session.Payload{Claims: claims, Tokens: session.Tokens{
			AccessToken: res.Tokens.AccessToken, TokenType: "Bearer", Expiry: time.Now().Add(expiresIn),
			RefreshToken: res.Tokens.RefreshToken, IDToken: res.Tokens.IDToken,
		}}}
	if err := f.sessions.Create(context.Background(), httptest.NewRecorder(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) refresher(t *testing.T) *token.Refresher {
	t.Helper()
	r, err := token.NewRefresher(token.RefresherConfig{Sessions: f.sessions, RelyingParty: f.rp})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFreshTokenIsNotRefreshed(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, time.Hour)
	tok, got, err := f.refresher(t).UserToken(context.Background(), s)
	if err != nil || tok != s.Tokens.AccessToken || got != s {
		t.Fatalf("UserToken: %v", err)
	}
	if n := f.op.GrantCount("refresh_token"); n != 0 {
		t.Fatalf("%d refreshes of a fresh token", n)
	}
}

// TestOneRefreshForAThousandRequests sends 1,000 concurrent requests of one
// session whose token is about to expire: the OP sees one refresh, every
// request gets the new token, and the rotated refresh token is saved.
func TestOneRefreshForAThousandRequests(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, 30*time.Second)
	r := f.refresher(t)
	const n = 1000
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			tokens[i], _, errs[i] = r.UserToken(context.Background(), s)
		})
	}
	close(start)
	wg.Wait()
	if got := f.op.GrantCount("refresh_token"); got != 1 {
		t.Fatalf("the OP saw %d refreshes, want 1", got)
	}
	stored, err := f.sessions.Get(context.Background(), s.Key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil || tokens[i] != stored.Tokens.AccessToken {
			t.Fatalf("request %d: %v, token is the stored one: %t", i, errs[i], tokens[i] == stored.Tokens.AccessToken)
		}
	}
	if stored.Tokens.AccessToken == s.Tokens.AccessToken || stored.Tokens.RefreshToken == s.Tokens.RefreshToken {
		t.Fatal("the stored session kept the old tokens")
	}
	if stored.Version != s.Version+1 {
		t.Fatalf("version %d after one refresh of version %d", stored.Version, s.Version)
	}
	// The rotated refresh token works for the next refresh.
	expiring := stored.Clone()
	expiring.Tokens.Expiry = time.Now().Add(10 * time.Second)
	if err := f.sessions.Update(context.Background(), expiring); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.UserToken(context.Background(), expiring); err != nil {
		t.Fatalf("second refresh with the rotated token: %v", err)
	}
}

// lockWatch wraps a store to count Lock calls and to signal the first time
// a Lock finds the lock held.
type lockWatch struct {
	session.Store
	mu    sync.Mutex
	locks int
	held  chan struct{}
	once  sync.Once
}

func (l *lockWatch) Lock(ctx context.Context, name string, ttl time.Duration) (session.Lease, error) {
	l.mu.Lock()
	l.locks++
	l.mu.Unlock()
	lease, err := l.Store.Lock(ctx, name, ttl)
	if errors.Is(err, session.ErrLockHeld) {
		l.once.Do(func() { close(l.held) })
	}
	return lease, err
}

// TestOneRefreshAcrossInstances runs two refreshers over one store, as two
// bff instances sharing Redis would: their singleflights do not see each
// other, the store lock does. The OP holds the first refresh until the
// other instance has found the lock taken, so both are sure to overlap; an
// instance without the lock would spend the rotated refresh token a second
// time and the OP would answer invalid_grant.
func TestOneRefreshAcrossInstances(t *testing.T) {
	f := newFixture(t)
	watch := &lockWatch{Store: f.store, held: make(chan struct{})}
	f.op.BeforeToken = func(form url.Values) {
		if form.Get("grant_type") == "refresh_token" {
			select {
			case <-watch.held:
			case <-time.After(5 * time.Second): // only when the lock is broken
			}
		}
	}
	s := f.login(t, 30*time.Second)
	m1, _ := session.NewManager(session.ManagerConfig{Store: watch, KeyRing: f.ring})
	m2, _ := session.NewManager(session.ManagerConfig{Store: watch, KeyRing: f.ring})
	r1, _ := token.NewRefresher(token.RefresherConfig{Sessions: m1, RelyingParty: f.rp, PollInterval: time.Millisecond})
	r2, _ := token.NewRefresher(token.RefresherConfig{Sessions: m2, RelyingParty: f.rp, PollInterval: time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, r := range []*token.Refresher{r1, r2} {
		wg.Go(func() {
			if _, _, err := r.UserToken(context.Background(), s); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := f.op.GrantCount("refresh_token"); got != 1 {
		t.Fatalf("two instances made %d refreshes, want 1", got)
	}
}

// TestOneLockPerProcess: within one process the requests of a session wait
// for one refresh (singleflight) instead of each polling the store lock.
func TestOneLockPerProcess(t *testing.T) {
	f := newFixture(t)
	watch := &lockWatch{Store: f.store, held: make(chan struct{})}
	m, _ := session.NewManager(session.ManagerConfig{Store: watch, KeyRing: f.ring})
	r, _ := token.NewRefresher(token.RefresherConfig{Sessions: m, RelyingParty: f.rp})
	s := f.login(t, 30*time.Second)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 200 {
		wg.Go(func() {
			<-start
			r.UserToken(context.Background(), s)
		})
	}
	close(start)
	wg.Wait()
	if watch.locks != 1 {
		t.Fatalf("%d store lock attempts for one refresh in one process, want 1", watch.locks)
	}
}

func TestInvalidGrantEndsTheSession(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, 30*time.Second)
	f.op.Set(func(op *bfftest.OP) { op.RefreshError = "invalid_grant" })
	_, _, err := f.refresher(t).UserToken(context.Background(), s)
	if !errors.Is(err, token.ErrSessionEnded) {
		t.Fatalf("want ErrSessionEnded, got %v", err)
	}
	if _, err := f.store.Get(context.Background(), s.Key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("the session outlived its refresh token: %v", err)
	}
}

func TestUnreachableOPKeepsTheSession(t *testing.T) {
	f := newFixture(t)
	valid := f.login(t, 30*time.Second) // within the refresh margin, not expired
	expired := f.login(t, -time.Second) // already expired
	f.op.Server.Close()
	r := f.refresher(t)

	tok, _, err := r.UserToken(context.Background(), valid)
	if err != nil || tok != valid.Tokens.AccessToken {
		t.Fatalf("a still valid token: %q, %v", tok, err)
	}
	_, _, err = r.UserToken(context.Background(), expired)
	var ue *oidc.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("an expired token with the OP down: want UnavailableError, got %v", err)
	}
	for _, s := range []*session.Session{valid, expired} {
		if _, err := f.store.Get(context.Background(), s.Key); err != nil {
			t.Fatalf("an unreachable OP ended a session: %v", err)
		}
	}
}

// TestRefusedRefreshKeepsTheCurrentToken: an OP error other than
// invalid_grant (a rotated client secret, say) does not end the session,
// and a still valid token keeps working.
func TestRefusedRefreshKeepsTheCurrentToken(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, 30*time.Second)
	f.op.Set(func(op *bfftest.OP) { op.RefreshError = "invalid_client" })
	tok, _, err := f.refresher(t).UserToken(context.Background(), s)
	if err != nil || tok != s.Tokens.AccessToken {
		t.Fatalf("UserToken: %v", err)
	}
	if _, err := f.store.Get(context.Background(), s.Key); err != nil {
		t.Fatalf("the session ended: %v", err)
	}
}

// loginWithoutRefreshToken stores a session whose access token has expired
// and which has no refresh token.
func (f *fixture) loginWithoutRefreshToken(t *testing.T) *session.Session {
	t.Helper()
	noRT := f.login(t, -time.Second).Clone()
	noRT.Tokens.RefreshToken = ""
	if err := f.sessions.Update(context.Background(), noRT); err != nil {
		t.Fatal(err)
	}
	return noRT
}

func TestExpiredTokenWithoutRefreshTokenEndsTheSession(t *testing.T) {
	f := newFixture(t)
	noRT := f.loginWithoutRefreshToken(t)
	_, _, err := f.refresher(t).UserToken(context.Background(), noRT)
	if !errors.Is(err, token.ErrSessionEnded) {
		t.Fatalf("want ErrSessionEnded, got %v", err)
	}
}

func TestRefreshedIDTokenForAnotherSubjectEndsTheSession(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, 30*time.Second)
	f.op.Set(func(op *bfftest.OP) { op.Subject = "mallory" })
	if _, _, err := f.refresher(t).UserToken(context.Background(), s); !errors.Is(err, token.ErrSessionEnded) {
		t.Fatalf("want ErrSessionEnded, got %v", err)
	}
}

func TestClientTokensAreCachedAndFetchedOnce(t *testing.T) {
	f := newFixture(t)
	c := token.NewClientTokens(f.rp, 0, nil, nil)
	src := c.Source([]string{"api"}, "https://api.example")
	var wg sync.WaitGroup
	got := make([]string, 100)
	for i := range got {
		wg.Go(func() {
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range got {
		if tok != got[0] || tok == "" {
			t.Fatal("callers got different client tokens")
		}
	}
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.op.GrantCount("client_credentials"); n != 1 {
		t.Fatalf("%d client_credentials grants, want 1", n)
	}
	form := f.op.TokenRequests()[len(f.op.TokenRequests())-1]
	if form.Get("scope") != "api" || form.Get("resource") != "https://api.example" {
		t.Fatalf("client credentials request: %v", form)
	}
	// Another scope set is another token; Forget refetches.
	if _, err := c.Source([]string{"other"}, "").Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.Forget()
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.op.GrantCount("client_credentials"); n != 3 {
		t.Fatalf("%d client_credentials grants, want 3", n)
	}
}

func TestClientTokenIsRefetchedBeforeExpiry(t *testing.T) {
	f := newFixture(t)
	f.op.AccessTokenLifetime = 30 * time.Second // shorter than the one-minute margin
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := token.NewClientTokens(f.rp, 0, nil, clock)
	src := c.Source(nil, "")
	src.Token(context.Background())
	src.Token(context.Background())
	if n := f.op.GrantCount("client_credentials"); n != 1 {
		t.Fatalf("%d grants for a 30s token used at once, want 1 (refetched at half its life, not on every use)", n)
	}
	mu.Lock()
	now = now.Add(16 * time.Second)
	mu.Unlock()
	src.Token(context.Background())
	if n := f.op.GrantCount("client_credentials"); n != 2 {
		t.Fatalf("%d grants for a 30s token past half its life, want 2", n)
	}
}

// TestShortLivedTokenIsRefreshedAtHalfItsLifetime: a token that lives less
// than twice the refresh margin is refreshed at half its lifetime, not on
// every request.
func TestShortLivedTokenIsRefreshedAtHalfItsLifetime(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, 20*time.Second)
	withObtained := s.Clone()
	withObtained.Tokens.Obtained = time.Now()
	if err := f.sessions.Update(context.Background(), withObtained); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r, _ := token.NewRefresher(token.RefresherConfig{Sessions: f.sessions, RelyingParty: f.rp, Now: clock})
	if _, _, err := r.UserToken(context.Background(), withObtained); err != nil {
		t.Fatal(err)
	}
	if n := f.op.GrantCount("refresh_token"); n != 0 {
		t.Fatalf("a 20s token was refreshed at once (%d)", n)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	if _, _, err := r.UserToken(context.Background(), withObtained); err != nil {
		t.Fatal(err)
	}
	if n := f.op.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("a 20s token past half its life: %d refreshes, want 1", n)
	}
}

// deadHolder wraps a store so that its leases are never released, as when
// the process holding a lock is killed.
type deadHolder struct{ session.Store }

func (d deadHolder) Lock(ctx context.Context, name string, ttl time.Duration) (session.Lease, error) {
	if _, err := d.Store.Lock(ctx, name, ttl); err != nil {
		return nil, err
	}
	return noRelease{}, nil
}

type noRelease struct{}

func (noRelease) Release(context.Context) error { return nil }

// TestRefreshTakenOverFromADeadInstance: an instance takes a session's
// refresh lock and dies before its request reaches the OP. Another instance
// waits for the lock to expire, then refreshes with the refresh token that
// was never spent: nothing is lost.
func TestRefreshTakenOverFromADeadInstance(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, 30*time.Second)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.op.BeforeToken = func(form url.Values) {
		if form.Get("grant_type") != "refresh_token" {
			return
		}
		first := false
		once.Do(func() { first = true; close(held) })
		if first {
			<-release // the dead instance's request never arrives at the OP
		}
	}
	defer close(release)
	const lockTTL = time.Second
	mDead, _ := session.NewManager(session.ManagerConfig{Store: deadHolder{f.store}, KeyRing: f.ring})
	dead, _ := token.NewRefresher(token.RefresherConfig{Sessions: mDead, RelyingParty: f.rp, LockTTL: lockTTL})
	go dead.UserToken(context.Background(), s)
	<-held

	r, _ := token.NewRefresher(token.RefresherConfig{Sessions: f.sessions, RelyingParty: f.rp, LockTTL: lockTTL, PollInterval: 10 * time.Millisecond})
	tok, fresh, err := r.UserToken(context.Background(), s)
	if err != nil {
		t.Fatalf("the surviving instance: %v", err)
	}
	if tok == s.Tokens.AccessToken || fresh.Tokens.RefreshToken == s.Tokens.RefreshToken {
		t.Fatal("the surviving instance did not refresh")
	}
	stored, err := f.sessions.Get(context.Background(), s.Key)
	if err != nil || stored.Tokens.AccessToken != tok {
		t.Fatalf("the refreshed token was not saved: %v", err)
	}
}

// TestKeepExpiredKeepsTheSession: with KeepExpired, a session without a
// refresh token outlives its access token: UserToken says ErrTokenExpired
// and the session stays.
func TestKeepExpiredKeepsTheSession(t *testing.T) {
	f := newFixture(t)
	noRT := f.loginWithoutRefreshToken(t)
	r, _ := token.NewRefresher(token.RefresherConfig{Sessions: f.sessions, RelyingParty: f.rp, KeepExpired: true})
	if _, _, err := r.UserToken(context.Background(), noRT); !errors.Is(err, token.ErrTokenExpired) {
		t.Fatalf("want ErrTokenExpired, got %v", err)
	}
	if _, err := f.store.Get(context.Background(), noRT.Key); err != nil {
		t.Fatalf("the session ended: %v", err)
	}
	if n := f.op.GrantCount("refresh_token"); n != 0 {
		t.Fatalf("%d refresh attempts without a refresh token", n)
	}
}

// slowAfterLock is a store whose reads take long once a lock is held, as
// a store under strain may.
type slowAfterLock struct {
	session.Store
	locked atomic.Bool
	delay  time.Duration
}

func (s *slowAfterLock) Lock(ctx context.Context, name string, ttl time.Duration) (session.Lease, error) {
	l, err := s.Store.Lock(ctx, name, ttl)
	if err == nil {
		s.locked.Store(true)
	}
	return l, err
}

func (s *slowAfterLock) Get(ctx context.Context, key session.Key) (*session.Record, error) {
	if s.locked.Load() {
		time.Sleep(s.delay)
	}
	return s.Store.Get(ctx, key)
}

// TestNoRefreshOnALapsingLock: when the read under the lock took most of
// the lock's ttl, the refresher does not ask the OP, which it could not be
// sure to hear back from before another instance may take the lock.
func TestNoRefreshOnALapsingLock(t *testing.T) {
	f := newFixture(t)
	s := f.login(t, 30*time.Second)
	slow := &slowAfterLock{Store: f.store, delay: 600 * time.Millisecond}
	m, _ := session.NewManager(session.ManagerConfig{Store: slow, KeyRing: f.ring})
	r, _ := token.NewRefresher(token.RefresherConfig{Sessions: m, RelyingParty: f.rp, LockTTL: time.Second})
	expired := s.Clone()
	expired.Tokens.Expiry = time.Now().Add(-time.Second) // no current token to fall back on
	_, _, err := r.UserToken(context.Background(), expired)
	var ue *oidc.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("refresh under a lapsing lock: %v, want an UnavailableError", err)
	}
	if n := f.op.GrantCount("refresh_token"); n != 0 {
		t.Fatalf("the OP was asked %d times under a lapsing lock", n)
	}
	if _, err := f.store.Get(context.Background(), s.Key); err != nil {
		t.Fatal("the session ended")
	}
}

// TestOrphanedRefreshTokensAreRevoked: a refresh whose result cannot be
// kept (the session was logged out while it ran, or the refreshed ID token
// is invalid) revokes the new refresh token the OP issued, which would
// otherwise stay alive at the OP with nobody holding it.
func TestOrphanedRefreshTokensAreRevoked(t *testing.T) {
	t.Run("logged out during the refresh", func(t *testing.T) {
		f := newFixture(t)
		s := f.login(t, 30*time.Second)
		f.op.BeforeToken = func(form url.Values) {
			if form.Get("grant_type") == "refresh_token" {
				f.store.Delete(context.Background(), s.Key) // a logout on another instance
			}
		}
		r, _ := token.NewRefresher(token.RefresherConfig{Sessions: f.sessions, RelyingParty: f.rp, RevokeOrphans: true})
		if _, _, err := r.UserToken(context.Background(), s); !errors.Is(err, token.ErrSessionEnded) {
			t.Fatalf("want ErrSessionEnded, got %v", err)
		}
		if got := f.op.Revoked(); len(got) != 1 || got[0] == s.Tokens.RefreshToken {
			t.Fatalf("revoked %d tokens, want the rotated refresh token", len(got))
		}
	})
	t.Run("invalid refreshed ID token", func(t *testing.T) {
		f := newFixture(t)
		s := f.login(t, 30*time.Second)
		f.op.Set(func(op *bfftest.OP) { op.Subject = "mallory" })
		r, _ := token.NewRefresher(token.RefresherConfig{Sessions: f.sessions, RelyingParty: f.rp, RevokeOrphans: true})
		if _, _, err := r.UserToken(context.Background(), s); !errors.Is(err, token.ErrSessionEnded) {
			t.Fatalf("want ErrSessionEnded, got %v", err)
		}
		if got := f.op.Revoked(); len(got) != 1 || got[0] == s.Tokens.RefreshToken {
			t.Fatalf("revoked %d tokens, want the refresh token that came with the bad ID token", len(got))
		}
	})
}
