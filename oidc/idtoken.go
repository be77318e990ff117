package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// IDToken is a validated ID token.
type IDToken struct {
	Raw string

	Issuer          string
	Subject         string
	Audience        []string
	AuthorizedParty string // azp
	SID             string // the OP's session id, may be empty
	Nonce           string
	IssuedAt        time.Time
	Expiry          time.Time

	// Claims are all of the token's claims, in the token's order.
	Claims Claims
}

// LogValue shows an ID token in logs by issuer and subject only.
func (t *IDToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("iss", t.Issuer), slog.String("sub", t.Subject))
}

// idTokenCheck is what a caller expects of an ID token beyond the rules that
// hold for every one.
type idTokenCheck struct {
	nonce       string   // required value of nonce, for tokens from a code exchange
	accessToken string   // when set, at_hash (if present) must match it
	refreshed   bool     // the token comes from a refresh (Core 12.2)
	previous    *IDToken // for a refreshed token: the one it replaces, when known
}

// extraClaims are the claims bff checks that go-oidc leaves to the caller.
type extraClaims struct {
	AZP   string          `json:"azp"`
	SID   string          `json:"sid"`
	IAT   json.RawMessage `json:"iat"`
	Nonce json.RawMessage `json:"nonce"`
}

// VerifyIDToken validates a raw ID token received from the token endpoint in
// answer to the authorization request with the given nonce. It applies
// OpenID Connect Core 1.0, section 3.1.3.7:
//
//   - rules 6-8: a single signature by a key from the OP's JWKS, with an
//     allow-listed algorithm (never "none", never HMAC);
//   - rule 2: iss exactly the issuer;
//   - rule 3: aud contains the client id, and no audience that is not trusted;
//   - rules 4-5: azp, when present, is the client id, and is present when
//     there are several audiences;
//   - rule 9: exp in the future (within the clock skew);
//   - rule 10: iat present, not in the future and not older than the
//     configured maximum age;
//   - rule 11: nonce equal to the one sent;
//   - section 2: sub present.
func (rp *RelyingParty) VerifyIDToken(ctx context.Context, raw, nonce string) (*IDToken, error) {
	if nonce == "" {
		return nil, errors.New("oidc: VerifyIDToken needs the nonce of the request")
	}
	d, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	return rp.verifyIDToken(ctx, d, raw, idTokenCheck{nonce: nonce})
}

func (rp *RelyingParty) verifyIDToken(ctx context.Context, d *discovered, raw string, check idTokenCheck) (*IDToken, error) {
	if raw == "" {
		return nil, invalid(RuleIDToken, "the token response has no id_token")
	}
	if alg, err := headerAlgorithm(raw); err != nil {
		return nil, invalid(RuleIDToken, "%v", err)
	} else if !slices.Contains(d.algs, alg) {
		return nil, invalid(RuleAlgorithm, "algorithm %q is not allowed (allowed: %v)", alg, d.algs)
	}
	tok, err := d.verifier.Verify(rp.withClient(ctx), raw)
	if err != nil {
		return nil, classifyVerifyError(err)
	}
	var extra extraClaims
	if err := tok.Claims(&extra); err != nil {
		return nil, invalid(RuleIDToken, "decoding claims: %v", err)
	}
	claims, err := ParseClaims(claimsJSON(tok))
	if err != nil {
		return nil, invalid(RuleIDToken, "decoding claims: %v", err)
	}
	id := &IDToken{
		Raw:             raw,
		Issuer:          tok.Issuer,
		Subject:         tok.Subject,
		Audience:        tok.Audience,
		AuthorizedParty: extra.AZP,
		SID:             extra.SID,
		Nonce:           tok.Nonce,
		IssuedAt:        tok.IssuedAt,
		Expiry:          tok.Expiry,
		Claims:          claims,
	}

	for _, aud := range id.Audience {
		if aud != rp.cfg.ClientID && !slices.Contains(rp.cfg.TrustedAudiences, aud) {
			return nil, invalid(RuleAudience, "untrusted audience %q", aud)
		}
	}
	if extra.AZP != "" && extra.AZP != rp.cfg.ClientID {
		return nil, invalid(RuleAZP, "azp %q is not the client id", extra.AZP)
	}
	if len(id.Audience) > 1 && extra.AZP == "" {
		return nil, invalid(RuleAZP, "several audiences and no azp")
	}

	now := rp.now()
	if len(extra.IAT) == 0 || string(extra.IAT) == "null" || id.IssuedAt.IsZero() {
		return nil, invalid(RuleIssuedAt, "no iat")
	}
	if id.IssuedAt.After(now.Add(rp.cfg.ClockSkew)) {
		return nil, invalid(RuleIssuedAt, "iat %v is in the future", id.IssuedAt.UTC())
	}
	if now.Sub(id.IssuedAt) > rp.cfg.IDTokenMaxAge+rp.cfg.ClockSkew {
		return nil, invalid(RuleIssuedAt, "iat %v is older than %v", id.IssuedAt.UTC(), rp.cfg.IDTokenMaxAge)
	}

	if id.Subject == "" {
		return nil, invalid(RuleSubject, "no sub")
	}

	if !check.refreshed {
		if subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(check.nonce)) != 1 || len(extra.Nonce) == 0 {
			return nil, invalid(RuleNonce, "nonce does not match the authorization request")
		}
	} else if check.previous != nil {
		// Core 12.2: a refreshed ID token keeps iss, sub, aud and azp, and
		// carries no nonce or the original one. (Without the previous
		// token, iss has been checked against the issuer above.)
		prev := check.previous
		if id.Issuer != prev.Issuer {
			return nil, invalid(RuleIssuer, "refreshed ID token has iss %q, was %q", id.Issuer, prev.Issuer)
		}
		if id.Subject != prev.Subject {
			return nil, invalid(RuleSubject, "refreshed ID token changed sub")
		}
		if !sameSet(id.Audience, prev.Audience) {
			return nil, invalid(RuleAudience, "refreshed ID token has aud %v, was %v", id.Audience, prev.Audience)
		}
		if id.AuthorizedParty != prev.AuthorizedParty && prev.AuthorizedParty != "" {
			return nil, invalid(RuleAZP, "refreshed ID token changed azp")
		}
		if id.Nonce != "" && id.Nonce != prev.Nonce {
			return nil, invalid(RuleNonce, "refreshed ID token has a nonce other than the original")
		}
	}

	if check.accessToken != "" && tok.AccessTokenHash != "" {
		if err := tok.VerifyAccessToken(check.accessToken); err != nil {
			return nil, invalid(RuleAccessHash, "at_hash does not match the access token")
		}
	}
	return id, nil
}

// classifyVerifyError names the rule behind one of go-oidc's errors, which
// are plain strings but for expiry.
func classifyVerifyError(err error) error {
	var expired *gooidc.TokenExpiredError
	if errors.As(err, &expired) {
		return invalid(RuleExpiry, "expired at %v", expired.Expiry.UTC())
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "different provider"):
		return invalid(RuleIssuer, "%v", err)
	case strings.Contains(msg, "audience"):
		return invalid(RuleAudience, "%v", err)
	case strings.Contains(msg, "failed to verify signature"):
		return invalid(RuleSignature, "%v", err)
	case strings.Contains(msg, "malformed jwt"):
		return invalid(RuleIDToken, "%v", err)
	default:
		return invalid(RuleIDToken, "%v", err)
	}
}

// headerAlgorithm returns the alg of a compact JWS's protected header,
// before anything else is trusted, so that "none" and HMAC are named as
// such in the error instead of as a parse failure.
func headerAlgorithm(raw string) (string, error) {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", errors.New("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", fmt.Errorf("header is not base64url: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("header is not JSON: %w", err)
	}
	return h.Alg, nil
}

// claimsJSON returns the raw claims of a verified token.
func claimsJSON(tok *gooidc.IDToken) []byte {
	var raw json.RawMessage
	_ = tok.Claims(&raw) // Claims of a verified token is its payload.
	return raw
}

// unverifiedIDToken reads the claims of an ID token that was validated when
// bff received it and has been kept sealed since; it checks nothing.
func unverifiedIDToken(raw string) (*IDToken, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload is not base64url: %w", err)
	}
	var c struct {
		Iss   string   `json:"iss"`
		Sub   string   `json:"sub"`
		Aud   audience `json:"aud"`
		AZP   string   `json:"azp"`
		SID   string   `json:"sid"`
		Nonce string   `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	return &IDToken{Raw: raw, Issuer: c.Iss, Subject: c.Sub, Audience: c.Aud, AuthorizedParty: c.AZP, SID: c.SID, Nonce: c.Nonce}, nil
}

// audience is the aud claim: a string or an array of strings (RFC 7519,
// section 4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
