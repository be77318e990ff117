package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size in bytes of a master key in a [KeyRing].
const KeySize = 32

// sealFormat is the first byte of every sealed value. A new format gets a new
// byte, so old values stay readable during a migration.
const sealFormat byte = 1

// keyIDSize is the length of the key id that follows the format byte.
const keyIDSize = 4

// ErrUnsealable is returned by [KeyRing.Open] for a value that no key of the
// ring opens: tampered, truncated, sealed for another purpose or context, or
// sealed with a key that has since been retired.
var ErrUnsealable = errors.New("session: cannot open sealed value")

// A KeyRing encrypts and authenticates values with AES-256-GCM under the
// newest of several master keys, and opens values sealed under any of them,
// so keys can be rotated without ending every session: put the new key first,
// keep the old one until the longest session has expired, then remove it.
//
// Each master key is never used directly: a per-purpose AES key is derived
// from it with HKDF-SHA-256 (RFC 5869), so a value sealed for one purpose
// (say, a session) never opens as another (say, a login transaction).
//
// A sealed value is
//
//	format (1 byte) || key id (4 bytes) || nonce (12 bytes) || ciphertext || tag (16 bytes)
//
// The nonce is random (crypto/cipher.NewGCMWithRandomNonce); one key must not
// seal more than 2^32 values, which rotation well before that keeps true.
type KeyRing struct {
	keys []ringKey // newest first
}

type ringKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewKeyRing returns a key ring for purpose (a short constant such as
// "session" or "login") over masterKeys, newest first. Each key must be
// [KeySize] bytes.
func NewKeyRing(purpose string, masterKeys ...[]byte) (*KeyRing, error) {
	if len(masterKeys) == 0 {
		return nil, errors.New("session: key ring needs at least one key")
	}
	if purpose == "" {
		return nil, errors.New("session: key ring needs a purpose")
	}
	ring := &KeyRing{keys: make([]ringKey, 0, len(masterKeys))}
	seen := make(map[[keyIDSize]byte]bool, len(masterKeys))
	for i, master := range masterKeys {
		if len(master) != KeySize {
			return nil, fmt.Errorf("session: key %d is %d bytes, want %d", i, len(master), KeySize)
		}
		derived, err := hkdf.Key(sha256.New, master, nil, "bff/v1/"+purpose, KeySize)
		if err != nil {
			return nil, fmt.Errorf("session: deriving key %d: %w", i, err)
		}
		block, err := aes.NewCipher(derived)
		if err != nil {
			return nil, fmt.Errorf("session: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("session: key %d: %w", i, err)
		}
		// The key id identifies the master key, not the purpose, and reveals
		// nothing about it: it is a truncated hash of a separate derivation.
		idKey, err := hkdf.Key(sha256.New, master, nil, "bff/v1/key-id", keyIDSize)
		if err != nil {
			return nil, fmt.Errorf("session: deriving key id %d: %w", i, err)
		}
		var id [keyIDSize]byte
		copy(id[:], idKey)
		if seen[id] {
			return nil, fmt.Errorf("session: key %d appears twice in the key ring", i)
		}
		seen[id] = true
		ring.keys = append(ring.keys, ringKey{id: id, aead: aead})
	}
	return ring, nil
}

// Seal encrypts plaintext under the newest key. additionalData is
// authenticated but not stored: Open must be given the same bytes, which binds
// a sealed value to its context (a session key, a login state).
func (k *KeyRing) Seal(plaintext, additionalData []byte) []byte {
	key := k.keys[0]
	out := make([]byte, 0, 1+keyIDSize+key.aead.Overhead()+len(plaintext))
	out = append(out, sealFormat)
	out = append(out, key.id[:]...)
	return key.aead.Seal(out, nil, plaintext, additionalData)
}

// Open decrypts a value made by Seal with the same purpose and
// additionalData, under any key of the ring. It returns [ErrUnsealable] when
// it cannot.
func (k *KeyRing) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < 1+keyIDSize || sealed[0] != sealFormat {
		return nil, ErrUnsealable
	}
	id := [keyIDSize]byte(sealed[1 : 1+keyIDSize])
	for _, key := range k.keys {
		if key.id != id {
			continue
		}
		plaintext, err := key.aead.Open(nil, nil, sealed[1+keyIDSize:], additionalData)
		if err != nil {
			return nil, ErrUnsealable
		}
		return plaintext, nil
	}
	return nil, ErrUnsealable
}

// ParseKey decodes a master key written as standard or URL-safe base64, with
// or without padding, as `bff keygen` prints it. It must decode to exactly
// [KeySize] bytes.
func ParseKey(encoded string) ([]byte, error) {
	s := strings.TrimSpace(encoded)
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	key, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("key decodes to %d bytes, want %d", len(key), KeySize)
	}
	return key, nil
}
