package bfftest

import (
	"crypto/rand"
	"time"
)

// backchannelLogoutEvent is the event of a logout token (OpenID Connect
// Back-Channel Logout 1.0, section 2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken returns a back-channel logout token for the OP's user and
// session, valid in every respect: signed with the OP's key, typ
// logout+jwt, iss, aud, iat, exp (two minutes), a fresh jti, sub, sid and
// the back-channel logout event. edit, when not nil, may change the header
// and the claims before signing, to build a token that breaks exactly one
// rule.
func (op *OP) LogoutToken(edit func(header, claims map[string]any)) string {
	op.mu.Lock()
	key, kid := op.key, op.keyID
	now := time.Now()
	claims := map[string]any{
		"iss":    op.Issuer,
		"aud":    op.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    rand.Text(),
		"sub":    op.Subject,
		"sid":    op.SID,
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
	}
	op.mu.Unlock()
	header := map[string]any{"alg": "RS256", "kid": kid, "typ": "logout+jwt"}
	if edit != nil {
		edit(header, claims)
	}
	return SignJWT(key, header, claims)
}
