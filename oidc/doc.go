// Package oidc is bff's OpenID Connect relying party: a confidential client
// that runs the authorization code flow with PKCE, state, nonce and the
// RFC 9207 iss check, validates ID tokens in full, refreshes and revokes
// tokens, and builds RP-initiated logout requests.
//
// It builds on golang.org/x/oauth2 for the token endpoint and on
// github.com/coreos/go-oidc/v3 for discovery and the signature, issuer,
// audience and expiry checks of ID tokens, and adds what those leave to the
// caller: nonce, iat, azp, untrusted audiences, sub, the userinfo sub match,
// the rules for refreshed ID tokens (OpenID Connect Core 1.0, section 12.2),
// and a JWKS cache whose refetch on an unknown key id is rate-limited.
//
// Every rejection is a *[ValidationError] naming the rule that failed; an OP
// that cannot be reached is an *[UnavailableError]. Neither ever carries a
// token.
package oidc
