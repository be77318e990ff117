package oidc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rules a [ValidationError] about a logout token can name, besides the ID
// token rules it shares (alg, signature, iss, aud, azp, exp, iat, nonce).
const (
	RuleLogoutEvent   = "events"  // the back-channel logout event is missing or not a JSON object
	RuleLogoutSubject = "sub_sid" // neither sub nor sid
	RuleLogoutJTI     = "jti"     // no jti (replays are the caller's check)
	RuleLogoutType    = "typ"     // JWT typ other than logout+jwt, when required
)

// BackchannelLogoutEvent is the member of a logout token's events claim that
// makes it one (Back-Channel Logout 1.0, section 2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken is a validated back-channel logout token.
type LogoutToken struct {
	Issuer   string
	Subject  string // may be empty when SID is set
	SID      string // may be empty when Subject is set
	JTI      string
	IssuedAt time.Time
	Expiry   time.Time
	// ValidUntil is when VerifyLogoutToken stops accepting this token, by
	// its exp or its iat, clock skew included: how long a replay cache must
	// remember its jti.
	ValidUntil time.Time
}

// LogoutTokenOptions adjust [RelyingParty.VerifyLogoutToken].
type LogoutTokenOptions struct {
	// StrictType requires the JWT header "typ": "logout+jwt", which section
	// 2.4 recommends OPs send and which keeps any other kind of JWT from
	// being taken for a logout token.
	StrictType bool
}

// logoutClaims are the claims of a logout token bff reads itself, beyond
// what go-oidc's VerifyLogout checks.
type logoutClaims struct {
	Aud    audience                   `json:"aud"`
	AZP    string                     `json:"azp"`
	IAT    json.RawMessage            `json:"iat"`
	Events map[string]json.RawMessage `json:"events"`
}

// VerifyLogoutToken validates a back-channel logout token, applying OpenID
// Connect Back-Channel Logout 1.0, section 2.6:
//
//   - step 1: a JWE is refused (bff registers no encryption key);
//   - step 2: the rules of ID token validation (Core 3.1.3.7) that apply: a
//     single signature by the OP's key with an allow-listed algorithm (never
//     "none", never HMAC with the client secret), iss exactly the issuer,
//     aud containing the client id and no untrusted audience, azp (when
//     present) the client id, exp in the future, iat present, not in the
//     future and not older than the ID token maximum age;
//   - step 3: sub or sid or both;
//   - step 4: an events claim whose backchannel-logout member is a JSON
//     object;
//   - step 5: no nonce claim, so an ID token cannot pass for a logout token;
//   - a jti, which the caller must check for replay (step 6) in a store
//     shared by every instance;
//   - with StrictType, the "typ" header logout+jwt (section 2.4).
//
// Signature, iss, aud, exp, events, nonce, jti and sub/sid are go-oidc's
// VerifyLogout; the rest is checked here.
func (rp *RelyingParty) VerifyLogoutToken(ctx context.Context, raw string, opts LogoutTokenOptions) (*LogoutToken, error) {
	d, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	if strings.Count(raw, ".") != 2 {
		return nil, invalid(RuleIDToken, "not a signed JWT (an encrypted or malformed token)")
	}
	header, err := jwtHeader(raw)
	if err != nil {
		return nil, invalid(RuleIDToken, "%v", err)
	}
	if !slices.Contains(d.algs, header.Alg) {
		return nil, invalid(RuleAlgorithm, "algorithm %q is not allowed (allowed: %v)", header.Alg, d.algs)
	}
	if opts.StrictType && !isLogoutJWTType(header.Typ) {
		return nil, invalid(RuleLogoutType, "typ %q is not logout+jwt", header.Typ)
	}

	tok, err := d.verifier.VerifyLogout(rp.withClient(ctx), raw)
	if err != nil {
		return nil, classifyLogoutError(err)
	}
	var c logoutClaims
	if err := tok.Claims(&c); err != nil {
		return nil, invalid(RuleIDToken, "decoding claims: %v", err)
	}
	for _, aud := range c.Aud {
		if aud != rp.cfg.ClientID && !slices.Contains(rp.cfg.TrustedAudiences, aud) {
			return nil, invalid(RuleAudience, "untrusted audience %q", aud)
		}
	}
	if c.AZP != "" && c.AZP != rp.cfg.ClientID {
		return nil, invalid(RuleAZP, "azp %q is not the client id", c.AZP)
	}
	if len(c.IAT) == 0 || string(c.IAT) == "null" || tok.IssuedAt.IsZero() {
		return nil, invalid(RuleIssuedAt, "no iat")
	}
	now := rp.now()
	if tok.IssuedAt.After(now.Add(rp.cfg.ClockSkew)) {
		return nil, invalid(RuleIssuedAt, "iat %v is in the future", tok.IssuedAt.UTC())
	}
	if now.Sub(tok.IssuedAt) > rp.cfg.IDTokenMaxAge+rp.cfg.ClockSkew {
		return nil, invalid(RuleIssuedAt, "iat %v is older than %v", tok.IssuedAt.UTC(), rp.cfg.IDTokenMaxAge)
	}
	if ev := bytes.TrimSpace(c.Events[BackchannelLogoutEvent]); len(ev) == 0 || ev[0] != '{' {
		return nil, invalid(RuleLogoutEvent, "the %s event is not a JSON object", BackchannelLogoutEvent)
	}
	return &LogoutToken{
		Issuer:     tok.Issuer,
		Subject:    tok.Subject,
		SID:        tok.SessionID,
		JTI:        tok.TokenID,
		IssuedAt:   tok.IssuedAt,
		Expiry:     tok.Expiry,
		ValidUntil: minTime(tok.Expiry, tok.IssuedAt.Add(rp.cfg.IDTokenMaxAge)).Add(rp.cfg.ClockSkew),
	}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// isLogoutJWTType reports whether typ is logout+jwt, in either form section
// 2.4 allows ("logout+jwt", or the full media type), case-insensitively as
// media types are (RFC 7515, section 4.1.9).
func isLogoutJWTType(typ string) bool {
	return strings.EqualFold(typ, "logout+jwt") || strings.EqualFold(typ, "application/logout+jwt")
}

// jwsHeader is the part of a JWS protected header read before the signature
// is checked, so that a refusal can name the rule.
type jwsHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

func jwtHeader(raw string) (jwsHeader, error) {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return jwsHeader{}, fmt.Errorf("header is not base64url: %w", err)
	}
	var h jwsHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return jwsHeader{}, fmt.Errorf("header is not JSON: %w", err)
	}
	return h, nil
}

// classifyLogoutError names the rule behind an error of go-oidc's
// VerifyLogout, whose errors are plain strings but for expiry.
func classifyLogoutError(err error) error {
	var ve *ValidationError
	if errors.As(classifyVerifyError(err), &ve) && ve.Rule != RuleIDToken {
		return ve
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "backchannel-logout event"):
		return invalid(RuleLogoutEvent, "%v", err)
	case strings.Contains(msg, "'nonce'"):
		return invalid(RuleNonce, "%v", err)
	case strings.Contains(msg, "'jti'"):
		return invalid(RuleLogoutJTI, "%v", err)
	case strings.Contains(msg, "'sub' claim, a 'sid' claim"):
		return invalid(RuleLogoutSubject, "%v", err)
	case strings.Contains(msg, "'exp'"):
		return invalid(RuleExpiry, "%v", err)
	case strings.Contains(msg, "different provider"):
		return invalid(RuleIssuer, "%v", err)
	case strings.Contains(msg, "audience"):
		return invalid(RuleAudience, "%v", err)
	default:
		return invalid(RuleIDToken, "%v", err)
	}
}
