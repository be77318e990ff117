package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
	"github.com/gobff/bff/session/storetest"
)

type fixture struct {
	store *memstore.Store
	clock *storetest.Clock
	m     *session.Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := storetest.NewClock(time.Now())
	store := memstore.New(memstore.WithClock(clock.Now))
	ring, err := session.NewKeyRing("session", newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(session.ManagerConfig{
		Store: store, KeyRing: ring, Now: clock.Now,
		Lifetime: 8 * time.Hour, IdleTimeout: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, clock: clock, m: m}
}

func newSession() *session.Session {
	return &session.Session{
		Issuer: "https://op", Subject: "alice", SID: "op-sid",
		Payload: &session.Payload{
			Claims: []byte(`{"sub":"alice","name":"Alice"}`),
			Tokens: session.Tokens{AccessToken: "AT-secret-value", RefreshToken: "RT-secret-value", IDToken: "IDT-secret-value", TokenType: "Bearer"},
		},
	}
}

// create stores a session and returns the request that carries its cookie.
func (f *fixture) create(t *testing.T) (*session.Session, *http.Request, *http.Cookie) {
	t.Helper()
	s := newSession()
	rec := httptest.NewRecorder()
	if err := f.m.Create(context.Background(), rec, s); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Create set %d cookies", len(cookies))
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: cookies[0].Name, Value: cookies[0].Value})
	return s, req, cookies[0]
}

func TestCreateSetsASecureCookieAndSealsTokens(t *testing.T) {
	f := newFixture(t)
	s, _, c := f.create(t)
	if c.Name != "__Host-bff" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v", c)
	}
	if c.MaxAge != int((8 * time.Hour).Seconds()) {
		t.Errorf("cookie Max-Age %d", c.MaxAge)
	}
	if len(c.Value) != 43 {
		t.Errorf("cookie value has %d characters, want 43 (256 bits)", len(c.Value))
	}
	if s.Key != session.KeyOf(c.Value) || s.Version != 1 || s.LogoutID == "" {
		t.Errorf("session key/version/logout id not set: %v %d %q", s.Key, s.Version, s.LogoutID)
	}
	rec, err := f.store.Get(context.Background(), s.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"AT-secret-value", "RT-secret-value", "IDT-secret-value", "Alice", c.Value} {
		if bytes.Contains(rec.Data, []byte(secret)) {
			t.Errorf("the store holds %q in the clear", secret)
		}
	}
	if rec.Subject != "alice" || rec.SID != "op-sid" || rec.Issuer != "https://op" {
		t.Errorf("index fields: %+v", rec)
	}
}

func TestLoad(t *testing.T) {
	f := newFixture(t)
	_, req, _ := f.create(t)
	s, err := f.m.Load(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if s.Tokens.RefreshToken != "RT-secret-value" || string(s.Claims) != `{"sub":"alice","name":"Alice"}` {
		t.Fatalf("loaded %+v", s.Payload)
	}
	for name, value := range map[string]string{
		"unknown id": strings.Repeat("A", 43),
		"bad shape":  "short",
		"bad chars":  strings.Repeat("*", 43),
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: "__Host-bff", Value: value})
		if _, err := f.m.Load(context.Background(), r); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s: want ErrNotFound, got %v", name, err)
		}
	}
	if _, err := f.m.Load(context.Background(), httptest.NewRequest(http.MethodGet, "/", nil)); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("no cookie: %v", err)
	}
}

// TestSealedDataIsBoundToItsSession copies one session's sealed data into
// another's record: it must not open there.
func TestSealedDataIsBoundToItsSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	victim, _, _ := f.create(t)
	attacker, attackerReq, _ := f.create(t)
	vrec, _ := f.store.Get(ctx, victim.Key)
	arec, _ := f.store.Get(ctx, attacker.Key)
	swapped := *arec
	swapped.Data = vrec.Data
	if err := f.store.Update(ctx, &swapped); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Load(ctx, attackerReq); !errors.Is(err, session.ErrUnsealable) {
		t.Fatalf("swapped data: want ErrUnsealable, got %v", err)
	}
}

func TestUpdateIsCompareAndSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, req, _ := f.create(t)
	loaded, _ := f.m.Load(ctx, req)

	first := loaded.Clone()
	first.Tokens.AccessToken = "AT-2"
	if err := f.m.Update(ctx, first); err != nil {
		t.Fatal(err)
	}
	stale := loaded.Clone()
	stale.Tokens.AccessToken = "AT-stale"
	if err := f.m.Update(ctx, stale); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("stale update: want ErrConflict, got %v", err)
	}
	again, _ := f.m.Load(ctx, req)
	if again.Tokens.AccessToken != "AT-2" || again.Version != 2 {
		t.Fatalf("after update: %q v%d", again.Tokens.AccessToken, again.Version)
	}
	if loaded.Tokens.AccessToken != "AT-secret-value" {
		t.Fatal("Clone shared the payload with the loaded session")
	}
}

func TestLoadReusesTheOpenedPayloadUntilTheVersionChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, req, _ := f.create(t)
	a, _ := f.m.Load(ctx, req)
	b, _ := f.m.Load(ctx, req)
	if a.Payload != b.Payload {
		t.Fatal("second Load decrypted again")
	}
	c := b.Clone()
	c.Tokens.AccessToken = "AT-new"
	if err := f.m.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	d, _ := f.m.Load(ctx, req)
	if d.Tokens.AccessToken != "AT-new" {
		t.Fatalf("Load after Update returned the cached %q", d.Tokens.AccessToken)
	}
}

func TestIdleExpiryMovesAtMostOncePerInterval(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, req, _ := f.create(t)
	first := s.IdleExpiresAt
	f.clock.Advance(30 * time.Second)
	loaded, _ := f.m.Load(ctx, req)
	if !loaded.IdleExpiresAt.Equal(first) {
		t.Fatal("idle expiry moved after 30s")
	}
	f.clock.Advance(31 * time.Second)
	loaded, _ = f.m.Load(ctx, req)
	if !loaded.IdleExpiresAt.After(first) {
		t.Fatal("idle expiry did not move after 61s")
	}
	rec, _ := f.store.Get(ctx, s.Key)
	if !rec.IdleExpiresAt.Equal(loaded.IdleExpiresAt) || rec.Version != 1 {
		t.Fatalf("store idle %v version %d", rec.IdleExpiresAt, rec.Version)
	}
	// Peek never moves it.
	f.clock.Advance(10 * time.Minute)
	peeked, _ := f.m.Peek(ctx, req)
	if !peeked.IdleExpiresAt.Equal(loaded.IdleExpiresAt) {
		t.Fatal("Peek moved the idle expiry")
	}
}

func TestDeleteClearsCookieAndSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, req, _ := f.create(t)
	rec := httptest.NewRecorder()
	if err := f.m.Delete(ctx, rec, s.Key); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].MaxAge >= 0 || !cookies[0].Secure || cookies[0].Path != "/" {
		t.Fatalf("clearing cookie: %+v", cookies)
	}
	if _, err := f.m.Load(ctx, req); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
}

func TestTokensNeverFormat(t *testing.T) {
	s := newSession()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "session", s, "tokens", s.Tokens)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", s.Tokens, s.Tokens, s.Tokens, s.Tokens)
	for _, secret := range []string{"AT-secret-value", "RT-secret-value", "IDT-secret-value"} {
		if strings.Contains(out, secret) {
			t.Fatalf("a token was formatted: %s", out)
		}
	}
}

func TestNewManagerChecks(t *testing.T) {
	ring, _ := session.NewKeyRing("session", newKey(t))
	if _, err := session.NewManager(session.ManagerConfig{KeyRing: ring}); err == nil {
		t.Error("no store accepted")
	}
	if _, err := session.NewManager(session.ManagerConfig{Store: memstore.New()}); err == nil {
		t.Error("no key ring accepted")
	}
	if _, err := session.NewManager(session.ManagerConfig{Store: memstore.New(), KeyRing: ring, Lifetime: time.Hour, IdleTimeout: 2 * time.Hour}); err == nil {
		t.Error("idle timeout past lifetime accepted")
	}
}

func BenchmarkLoad(b *testing.B) {
	clock := storetest.NewClock(time.Now())
	store := memstore.New(memstore.WithClock(clock.Now))
	ring, _ := session.NewKeyRing("session", newKey(b))
	m, _ := session.NewManager(session.ManagerConfig{Store: store, KeyRing: ring, Now: clock.Now})
	rec := httptest.NewRecorder()
	if err := m.Create(context.Background(), rec, newSession()); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", "other=1; "+rec.Result().Cookies()[0].Name+"="+rec.Result().Cookies()[0].Value+"; more=2")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Load(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestClearFieldsAreAuthenticated changes each clear field of a stored
// record, as someone with write access to the store but not the keys
// could: the session must no longer load, and is removed. (CreatedAt is in
// the sealed context too, but Store.Update keeps it, so it cannot be
// changed through the interface.)
func TestClearFieldsAreAuthenticated(t *testing.T) {
	edits := map[string]func(r *session.Record){
		"subject":    func(r *session.Record) { r.Subject = "victim" },
		"issuer":     func(r *session.Record) { r.Issuer = "https://other-op" },
		"sid":        func(r *session.Record) { r.SID = "other" },
		"expires at": func(r *session.Record) { r.ExpiresAt = r.ExpiresAt.Add(365 * 24 * time.Hour) },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			s, req, _ := f.create(t)
			if _, err := f.m.Load(ctx, req); err != nil { // cached from now on
				t.Fatal(err)
			}
			rec, _ := f.store.Get(ctx, s.Key)
			changed := *rec
			edit(&changed)
			if err := f.store.Update(ctx, &changed); err != nil {
				t.Fatal(err)
			}
			// Same version as the cached payload would have, if the
			// attacker could set it; here Update bumped it. Either way the
			// changed record must not load.
			if _, err := f.m.Load(ctx, req); !errors.Is(err, session.ErrNotFound) || !errors.Is(err, session.ErrUnsealable) {
				t.Fatalf("tampered %s: want ErrNotFound and ErrUnsealable, got %v", name, err)
			}
			if _, err := f.store.Get(ctx, s.Key); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("the tampered session was not removed: %v", err)
			}
		})
	}
}

// TestIdleExpiryIsNotAuthenticated: Touch moves it without resealing.
func TestIdleExpiryIsNotAuthenticated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, req, _ := f.create(t)
	if err := f.store.Touch(ctx, s.Key, s.IdleExpiresAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Load(ctx, req); err != nil {
		t.Fatal(err)
	}
}

func TestSessionOfARetiredKeyIsNotFound(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, req, _ := f.create(t)
	ring, _ := session.NewKeyRing("session", newKey(t)) // the old key is gone
	m2, _ := session.NewManager(session.ManagerConfig{Store: f.store, KeyRing: ring, Now: f.clock.Now})
	if _, err := m2.Load(ctx, req); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
}
