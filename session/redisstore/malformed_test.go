package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff/internal/testredis"
	"github.com/gobff/bff/session"
)

func sharedStore(t *testing.T, now func() time.Time) *Store {
	t.Helper()
	addr := testredis.Addr(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	s := New(client, WithPrefix(testredis.Prefix(t, addr)), WithClock(now))
	t.Cleanup(func() { s.Close() })
	return s
}

// Data the store did not write, or that was damaged, makes its operations
// fail with an error, never panic, and is never reported as a missing
// session. Delete removes it.
func TestMalformed(t *testing.T) {
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	s := sharedStore(t, func() time.Time { return now })
	c := s.client
	ms := func(d time.Duration) string { return millis(now.Add(d)) }
	good := func() map[string]any {
		return map[string]any{
			"version": "1", "iss": "https://op.example", "sub": "alice", "sid": "sid-1",
			"created": ms(0), "expires": ms(time.Hour), "idle": ms(time.Minute), "data": "sealed",
		}
	}
	with := func(field string, v any) map[string]any {
		m := good()
		if v == nil {
			delete(m, field)
		} else {
			m[field] = v
		}
		return m
	}
	cases := []struct {
		name  string
		write func(key string) error
		// lua: whether the scripts, which read fewer fields than Get,
		// notice too
		lua bool
	}{
		{"string", func(key string) error { return c.Set(ctx, key, "x", 0).Err() }, true},
		{"list", func(key string) error { return c.RPush(ctx, key, "x").Err() }, true},
		{"no version", func(key string) error { return c.HSet(ctx, key, with("version", nil)).Err() }, true},
		{"bad version", func(key string) error { return c.HSet(ctx, key, with("version", "one")).Err() }, true},
		{"zero version", func(key string) error { return c.HSet(ctx, key, with("version", "0")).Err() }, false},
		{"negative version", func(key string) error { return c.HSet(ctx, key, with("version", "-1")).Err() }, false},
		{"no expires", func(key string) error { return c.HSet(ctx, key, with("expires", nil)).Err() }, true},
		{"bad idle", func(key string) error { return c.HSet(ctx, key, with("idle", "soon")).Err() }, true},
		{"float created", func(key string) error { return c.HSet(ctx, key, with("created", "1.5e12")).Err() }, false},
		{"only data", func(key string) error { return c.HSet(ctx, key, "data", "x").Err() }, true},
	}
	notSessionError := func(t *testing.T, op string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s succeeded", op)
			return
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", op, err)
		}
		for _, e := range []error{session.ErrNotFound, session.ErrConflict, session.ErrExists} {
			if errors.Is(err, e) {
				t.Errorf("%s: %v, want an error other than %v", op, err, e)
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := session.KeyOf(tc.name)
			if err := tc.write(s.sessionKey(key)); err != nil {
				t.Fatal(err)
			}
			idx := s.indexKey(bySub, "https://op.example", "alice")
			if err := c.ZAdd(ctx, idx, redis.Z{Score: float64(now.Add(time.Hour).UnixMilli()), Member: member(key)}).Err(); err != nil {
				t.Fatal(err)
			}

			_, err := s.Get(ctx, key)
			notSessionError(t, "Get", err)
			t.Logf("Get: %v", err)
			_, err = s.ListBySub(ctx, "https://op.example", "alice")
			notSessionError(t, "ListBySub", err)
			if tc.lua {
				upd := &session.Record{Key: key, Version: 1, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
				notSessionError(t, "Update", s.Update(ctx, upd))
				notSessionError(t, "Touch", s.Touch(ctx, key, now.Add(time.Hour)))
				notSessionError(t, "Create", s.Create(ctx, &session.Record{Key: key, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}))
			}
			if tc.name != "string" && tc.name != "list" {
				// Deleted through the index even though it cannot be
				// decoded, and reported.
				_, err = s.DeleteBySub(ctx, "https://op.example", "alice")
				if tc.name != "only data" { // no iss: does not match, left alone
					notSessionError(t, "DeleteBySub", err)
					if n := c.Exists(ctx, s.sessionKey(key)).Val(); n != 0 {
						t.Errorf("DeleteBySub left the malformed session")
					}
				}
			}

			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
			}
			c.Del(ctx, idx)
		})
	}
}

// An index member that is not a session key fails the index operations
// with ErrMalformed; DeleteBySub still deletes the sessions it can.
func TestMalformedIndex(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	s := sharedStore(t, func() time.Time { return now })
	rec := &session.Record{
		Key: session.KeyOf("a"), Issuer: "https://op.example", Subject: "alice",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour),
	}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	idx := s.indexKey(bySub, rec.Issuer, rec.Subject)
	if err := s.client.ZAdd(ctx, idx, redis.Z{Score: float64(now.Add(time.Hour).UnixMilli()), Member: "not a key"}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListBySub(ctx, rec.Issuer, rec.Subject); !errors.Is(err, ErrMalformed) {
		t.Fatalf("ListBySub: %v, want ErrMalformed", err)
	}
	del, err := s.DeleteBySub(ctx, rec.Issuer, rec.Subject)
	if !errors.Is(err, ErrMalformed) || len(del) != 1 {
		t.Fatalf("DeleteBySub = %d sessions, %v; want 1 and ErrMalformed", len(del), err)
	}
	// The junk is gone with the session.
	if del, err := s.DeleteBySub(ctx, rec.Issuer, rec.Subject); err != nil || len(del) != 0 {
		t.Fatalf("second DeleteBySub = %d sessions, %v; want none and no error", len(del), err)
	}
}

// A SET NX that go-redis resends after losing the reply finds its own
// token and reports the key as not taken, so a Lock or SeenJTI is not
// turned into ErrLockHeld or a false "seen" by a retry.
func TestSetNXResent(t *testing.T) {
	ctx := context.Background()
	s := sharedStore(t, time.Now)
	key := s.jtiKey("resent")
	for i, want := range []bool{false, false} {
		if taken, err := s.setNX(ctx, key, "token-1", time.Minute); err != nil || taken != want {
			t.Fatalf("setNX #%d = %v, %v; want %v", i+1, taken, err, want)
		}
	}
	if taken, err := s.setNX(ctx, key, "token-2", time.Minute); err != nil || !taken {
		t.Fatalf("setNX with another token = %v, %v; want taken", taken, err)
	}
	// Sub-millisecond ttls are rounded up, not refused.
	if taken, err := s.setNX(ctx, s.jtiKey("tiny"), "t", time.Microsecond); err != nil || taken {
		t.Fatalf("setNX with a 1µs ttl = %v, %v", taken, err)
	}
}
