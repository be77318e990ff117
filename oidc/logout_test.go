package oidc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff/bfftest"
	"github.com/gobff/bff/oidc"
)

// TestLogoutTokenRules builds logout tokens that each break one rule of
// Back-Channel Logout 1.0, section 2.6, and checks that each is refused
// naming that rule, while the valid token passes.
func TestLogoutTokenRules(t *testing.T) {
	op := bfftest.NewOP(t)
	op.ClientSecret = "a client secret long enough for HS256" // go-jose wants 32 bytes
	rp := newRP(t, op)
	ctx := context.Background()
	edit := func(f func(h, c map[string]any)) string { return op.LogoutToken(f) }
	other := bfftest.OtherKey()
	_, kid := op.Key()
	valid := func() map[string]any {
		var claims map[string]any
		op.LogoutToken(func(_, c map[string]any) { claims = c })
		return claims
	}
	res, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Hour

	cases := []struct {
		name   string
		token  string
		strict bool
		rule   string
	}{
		{"alg none", bfftest.UnsignedJWT(valid()), false, oidc.RuleAlgorithm},
		{"HS256 with the client secret", bfftest.HMACJWT([]byte(op.ClientSecret), valid()), false, oidc.RuleAlgorithm},
		{"signed by another key", bfftest.SignJWT(other, map[string]any{"alg": "RS256", "kid": kid, "typ": "logout+jwt"}, valid()), false, oidc.RuleSignature},
		{"wrong iss", edit(func(_, c map[string]any) { c["iss"] = "https://evil.example" }), false, oidc.RuleIssuer},
		{"wrong aud", edit(func(_, c map[string]any) { c["aud"] = "another-client" }), false, oidc.RuleAudience},
		{"untrusted extra aud", edit(func(_, c map[string]any) { c["aud"] = []string{op.ClientID, "another-client"} }), false, oidc.RuleAudience},
		{"foreign azp", edit(func(_, c map[string]any) { c["azp"] = "another-client" }), false, oidc.RuleAZP},
		{"expired", edit(func(_, c map[string]any) { c["exp"] = time.Now().Add(-hour).Unix() }), false, oidc.RuleExpiry},
		{"no exp", edit(func(_, c map[string]any) { delete(c, "exp") }), false, oidc.RuleExpiry},
		{"no iat", edit(func(_, c map[string]any) { delete(c, "iat") }), false, oidc.RuleIssuedAt + ": no iat"},
		{"iat in the future", edit(func(_, c map[string]any) { c["iat"] = time.Now().Add(hour).Unix() }), false, oidc.RuleIssuedAt},
		{"iat too old", edit(func(_, c map[string]any) { c["iat"] = time.Now().Add(-hour).Unix() }), false, oidc.RuleIssuedAt},
		{"no events", edit(func(_, c map[string]any) { delete(c, "events") }), false, oidc.RuleLogoutEvent},
		{"another event", edit(func(_, c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}), false, oidc.RuleLogoutEvent},
		{"event not an object", edit(func(_, c map[string]any) {
			c["events"] = map[string]any{oidc.BackchannelLogoutEvent: true}
		}), false, oidc.RuleLogoutEvent},
		{"nonce", edit(func(_, c map[string]any) { c["nonce"] = "n" }), false, oidc.RuleNonce},
		{"neither sub nor sid", edit(func(_, c map[string]any) { delete(c, "sub"); delete(c, "sid") }), false, oidc.RuleLogoutSubject},
		{"no jti", edit(func(_, c map[string]any) { delete(c, "jti") }), false, oidc.RuleLogoutJTI},
		{"typ JWT when strict", edit(func(h, _ map[string]any) { h["typ"] = "JWT" }), true, oidc.RuleLogoutType},
		{"no typ when strict", edit(func(h, _ map[string]any) { delete(h, "typ") }), true, oidc.RuleLogoutType},
		{"encrypted (JWE)", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", false, oidc.RuleIDToken},
		{"an ID token", res.Tokens.IDToken, false, oidc.RuleLogoutEvent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rp.VerifyLogoutToken(ctx, c.token, oidc.LogoutTokenOptions{StrictType: c.strict})
			// A rule may carry the message that must name it, where
			// another check of the same rule would refuse the same token.
			rule, msg, _ := strings.Cut(c.rule, ": ")
			var ve *oidc.ValidationError
			if !errors.As(err, &ve) || ve.Rule != rule || !strings.Contains(ve.Err.Error(), msg) {
				t.Fatalf("got %v, want a %q ValidationError saying %q", err, rule, msg)
			}
		})
	}

	for _, c := range []struct {
		name   string
		token  string
		strict bool
	}{
		{"valid", edit(nil), true},
		{"typ JWT when not strict", edit(func(h, _ map[string]any) { h["typ"] = "JWT" }), false},
		{"media type form of typ", edit(func(h, _ map[string]any) { h["typ"] = "application/logout+JWT" }), true},
		{"sid only", edit(func(_, c map[string]any) { delete(c, "sub") }), true},
		{"sub only", edit(func(_, c map[string]any) { delete(c, "sid") }), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			lt, err := rp.VerifyLogoutToken(ctx, c.token, oidc.LogoutTokenOptions{StrictType: c.strict})
			if err != nil {
				t.Fatal(err)
			}
			if lt.Issuer != op.Issuer || lt.JTI == "" || lt.Subject == "" && lt.SID == "" {
				t.Fatalf("token read as %+v", lt)
			}
		})
	}
}
