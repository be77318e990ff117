package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// rsaKeyBits is the size of the provider's signing key.
const rsaKeyBits = 2048

// signingKey is the provider's RS256 key. It signs ID tokens, access tokens
// and logout tokens, and its public half is served at the JWKS endpoint.
type signingKey struct {
	id   string
	priv *rsa.PrivateKey
}

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = publicKey{}
)

// newSigningKey generates a fresh RSA key whose key id is its RFC 7638 JWK
// thumbprint.
func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &priv.PublicKey}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("JWK thumbprint: %w", err)
	}
	return &signingKey{id: base64.RawURLEncoding.EncodeToString(thumb), priv: priv}, nil
}

// SignatureAlgorithm implements op.SigningKey.
func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }

// Key implements op.SigningKey.
func (k *signingKey) Key() any { return k.priv }

// ID implements op.SigningKey.
func (k *signingKey) ID() string { return k.id }

// public returns the verification half of the key.
func (k *signingKey) public() publicKey { return publicKey{k} }

// signJWT signs claims as a compact JWS with the header "typ" set to typ.
func (k *signingKey) signJWT(claims any, typ string) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		return "", fmt.Errorf("create signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}

// publicKey is the public half of a signingKey as an op.Key.
type publicKey struct{ k *signingKey }

// ID implements op.Key.
func (p publicKey) ID() string { return p.k.id }

// Algorithm implements op.Key.
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }

// Use implements op.Key.
func (p publicKey) Use() string { return "sig" }

// Key implements op.Key.
func (p publicKey) Key() any { return &p.k.priv.PublicKey }
