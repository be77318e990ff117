package session_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/gobff/bff/session"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, session.KeySize)
	rand.Read(k)
	return k
}

func TestKeyRingRoundTrip(t *testing.T) {
	ring, err := session.NewKeyRing("session", newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	sealed := ring.Seal([]byte("refresh-token-value"), []byte("ad"))
	if bytes.Contains(sealed, []byte("refresh-token-value")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	plain, err := ring.Open(sealed, []byte("ad"))
	if err != nil || string(plain) != "refresh-token-value" {
		t.Fatalf("Open: %q %v", plain, err)
	}
	if again := ring.Seal([]byte("refresh-token-value"), []byte("ad")); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same value are equal: the nonce is not random")
	}
}

func TestKeyRingRejects(t *testing.T) {
	k := newKey(t)
	ring, _ := session.NewKeyRing("session", k)
	sealed := ring.Seal([]byte("secret"), []byte("session-a"))

	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	other, _ := session.NewKeyRing("session", newKey(t))
	login, _ := session.NewKeyRing("login", k)

	cases := map[string]func() ([]byte, error){
		"tampered":      func() ([]byte, error) { return ring.Open(tampered, []byte("session-a")) },
		"truncated":     func() ([]byte, error) { return ring.Open(sealed[:10], []byte("session-a")) },
		"empty":         func() ([]byte, error) { return ring.Open(nil, nil) },
		"other context": func() ([]byte, error) { return ring.Open(sealed, []byte("session-b")) },
		"other key":     func() ([]byte, error) { return other.Open(sealed, []byte("session-a")) },
		"other purpose": func() ([]byte, error) { return login.Open(sealed, []byte("session-a")) },
		"unknown format byte": func() ([]byte, error) {
			s := append([]byte{9}, sealed[1:]...)
			return ring.Open(s, []byte("session-a"))
		},
	}
	for name, open := range cases {
		if _, err := open(); !errors.Is(err, session.ErrUnsealable) {
			t.Errorf("%s: want ErrUnsealable, got %v", name, err)
		}
	}
}

func TestKeyRingRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	oldRing, _ := session.NewKeyRing("session", oldKey)
	sealedOld := oldRing.Seal([]byte("old"), nil)

	rotated, err := session.NewKeyRing("session", newK, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := rotated.Open(sealedOld, nil); err != nil || string(p) != "old" {
		t.Fatalf("value sealed with the retiring key: %q %v", p, err)
	}
	sealedNew := rotated.Seal([]byte("new"), nil)
	if _, err := oldRing.Open(sealedNew, nil); err == nil {
		t.Fatal("a new seal opened with only the old key: the ring did not seal with its newest key")
	}
	retired, _ := session.NewKeyRing("session", newK)
	if _, err := retired.Open(sealedOld, nil); err == nil {
		t.Fatal("a retired key still opens")
	}
}

func TestNewKeyRingChecksKeys(t *testing.T) {
	k := newKey(t)
	for name, keys := range map[string][][]byte{
		"none":      nil,
		"short":     {k[:16]},
		"duplicate": {k, k},
	} {
		if _, err := session.NewKeyRing("session", keys...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseKey(t *testing.T) {
	k := newKey(t)
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(k),
		base64.RawStdEncoding.EncodeToString(k),
		base64.URLEncoding.EncodeToString(k),
		base64.RawURLEncoding.EncodeToString(k),
		" " + base64.StdEncoding.EncodeToString(k) + "\n",
	} {
		got, err := session.ParseKey(enc)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v", enc, got, err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(k[:31])} {
		if _, err := session.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

// BenchmarkOpen is the cost of decrypting a session payload of typical size
// (three tokens and claims, ~3 KB), which the manager's cache avoids on all
// but the first request of each session version.
func BenchmarkOpen(b *testing.B) {
	ring, _ := session.NewKeyRing("session", newKey(b))
	plain := bytes.Repeat([]byte("x"), 3000)
	sealed := ring.Seal(plain, []byte("ad"))
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Open(sealed, []byte("ad")); err != nil {
			b.Fatal(err)
		}
	}
}
