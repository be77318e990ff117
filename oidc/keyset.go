package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// maxJWKSBytes bounds the JWKS document bff reads.
const maxJWKSBytes = 1 << 20

// keySet is the OP's JWKS, fetched on first use and again when a token names
// a key id the cache does not hold (the key rotation of Core 10.1.1), but at
// most once per refetchMinimum. go-oidc's RemoteKeySet refetches on every
// unknown kid, which lets anyone who can submit a token (a back-channel logout
// token, say) make bff hammer the OP; hence this small replacement.
type keySet struct {
	url            string
	client         *http.Client
	refetchMinimum time.Duration
	now            func() time.Time

	fetches singleflight.Group

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time
}

func newKeySet(url string, client *http.Client, refetchMinimum time.Duration, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, refetchMinimum: refetchMinimum, now: now}
}

// VerifySignature implements go-oidc's KeySet. go-oidc has already parsed
// the token and enforced the algorithm allow-list before calling it.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, signatureAlgorithms(allowedAlgorithms))
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID

	k.mu.RLock()
	keys, fetchedAt := k.keys, k.fetchedAt
	k.mu.RUnlock()

	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if !fetchedAt.IsZero() && k.now().Sub(fetchedAt) < k.refetchMinimum {
		return nil, fmt.Errorf("no key of the provider verifies the signature (kid %q); JWKS fetched %v ago, not refetching yet", kid, k.now().Sub(fetchedAt).Round(time.Millisecond))
	}
	keys, err = k.refresh(ctx, fetchedAt)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, fmt.Errorf("no key of the provider verifies the signature (kid %q)", kid)
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		key := &keys[i]
		if kid != "" && key.KeyID != kid {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if payload, err := jws.Verify(key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh fetches the JWKS unless another caller has done so since seen; one
// fetch at a time however many tokens are waiting.
func (k *keySet) refresh(ctx context.Context, seen time.Time) ([]jose.JSONWebKey, error) {
	v, err, _ := k.fetches.Do("jwks", func() (any, error) {
		k.mu.RLock()
		if k.fetchedAt.After(seen) {
			keys := k.keys
			k.mu.RUnlock()
			return keys, nil
		}
		k.mu.RUnlock()
		// The fetch outlives a caller that gives up; others may be waiting.
		keys, err := k.fetch(context.WithoutCancel(ctx))
		k.mu.Lock()
		// A failed fetch counts too, so a dead JWKS endpoint is not hammered.
		k.fetchedAt = k.now()
		if err == nil {
			k.keys = keys
		}
		k.mu.Unlock()
		return keys, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]jose.JSONWebKey), nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, &UnavailableError{Op: "jwks", Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return nil, &UnavailableError{Op: "jwks", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &UnavailableError{Op: "jwks", Err: fmt.Errorf("status %s", resp.Status)}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: decoding: %w", err)
	}
	keys := set.Keys[:0:0]
	for _, key := range set.Keys {
		// Only public keys verify; a JWKS that publishes a private or
		// symmetric key is broken, and that key is ignored.
		if key.IsPublic() {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

func signatureAlgorithms(names []string) []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(names))
	for i, n := range names {
		algs[i] = jose.SignatureAlgorithm(n)
	}
	return algs
}
