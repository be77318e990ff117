package oidc

import (
	"errors"
	"fmt"
)

// Rules a [ValidationError] can name.
const (
	RuleState       = "state"        // authorization response state (checked by the caller, named here for logs)
	RuleIssParam    = "iss_param"    // RFC 9207 iss authorization response parameter
	RuleCode        = "code"         // authorization response without a code
	RuleIDToken     = "id_token"     // missing, malformed, badly signed or wrongly issued ID token
	RuleAlgorithm   = "alg"          // signature algorithm outside the allow-list
	RuleSignature   = "signature"    // signature does not verify with the OP's keys
	RuleIssuer      = "iss"          // iss claim differs from the issuer
	RuleAudience    = "aud"          // aud lacks the client id or has an untrusted audience
	RuleAZP         = "azp"          // azp differs from the client id, or missing with several audiences
	RuleExpiry      = "exp"          // token expired
	RuleIssuedAt    = "iat"          // iat missing, in the future or too old
	RuleNonce       = "nonce"        // nonce differs from the one sent
	RuleSubject     = "sub"          // sub missing, or changed by a refresh
	RuleAccessHash  = "at_hash"      // at_hash does not match the access token
	RuleUserinfoSub = "userinfo_sub" // userinfo sub differs from the ID token's
	RuleTokenType   = "token_type"   // token response with an unusable token type
	RuleLogoutToken = "logout_token" // back-channel logout token rules
)

// ValidationError reports a response or token that broke a rule. Err holds
// the detail; neither ever includes a token.
type ValidationError struct {
	Rule string
	Err  error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("oidc: %s check failed: %v", e.Rule, e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(rule, format string, args ...any) error {
	return &ValidationError{Rule: rule, Err: fmt.Errorf(format, args...)}
}

// UnavailableError reports that the OP could not be reached or answered with
// a server error, so the caller should answer 502 or 503 and keep sessions.
type UnavailableError struct {
	Op  string // what was attempted: "discovery", "token", "userinfo", ...
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("oidc: %s: provider unavailable: %v", e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ProtocolError is an OAuth 2.0 error response from the OP: an
// authorization error at the callback (RFC 6749, section 4.1.2.1) or a token
// endpoint error (section 5.2).
type ProtocolError struct {
	Code        string // e.g. access_denied, login_required, invalid_grant
	Description string
}

func (e *ProtocolError) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("oidc: provider error %q", e.Code)
	}
	return fmt.Sprintf("oidc: provider error %q: %q", e.Code, e.Description)
}

// ErrInvalidGrant matches (with errors.Is) a token endpoint's invalid_grant
// answer to a refresh: the refresh token is dead and so is the session.
var ErrInvalidGrant = errors.New("oidc: invalid_grant")

// Is lets errors.Is(err, ErrInvalidGrant) match an invalid_grant error.
func (e *ProtocolError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Code == "invalid_grant"
}
