package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobff/bff/bfftest"
	"github.com/gobff/bff/oidc"
)

func newRP(t *testing.T, op *bfftest.OP, edit ...func(*oidc.Config)) *oidc.RelyingParty {
	t.Helper()
	cfg := oidc.Config{
		Issuer:       op.Issuer,
		ClientID:     op.ClientID,
		ClientSecret: op.ClientSecret,
		RedirectURL:  "https://app.example/signin-oidc",
		Scopes:       []string{"openid", "profile", "offline_access"},
	}
	for _, e := range edit {
		e(&cfg)
	}
	rp, err := oidc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// authorize runs the authorization request against the OP and returns the
// query of its redirect back to the client.
func authorize(t *testing.T, rp *oidc.RelyingParty, req oidc.AuthRequest) url.Values {
	t.Helper()
	authURL, err := rp.AuthCodeURL(context.Background(), req, oidc.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return bfftest.Authorize(t, authURL)
}

// login runs the whole flow and returns the result of the exchange.
func login(t *testing.T, rp *oidc.RelyingParty) (*oidc.Result, error) {
	t.Helper()
	req := oidc.NewAuthRequest()
	q := authorize(t, rp, req)
	if q.Get("state") != req.State {
		t.Fatalf("state came back as %q, sent %q", q.Get("state"), req.State)
	}
	code, err := rp.CheckAuthResponse(context.Background(), q)
	if err != nil {
		return nil, err
	}
	return rp.Exchange(context.Background(), code, req)
}

func wantRule(t *testing.T, err error, rule string) {
	t.Helper()
	var ve *oidc.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError for rule %q, got %v", rule, err)
	}
	if ve.Rule != rule {
		t.Fatalf("want rule %q, got %q (%v)", rule, ve.Rule, err)
	}
}

func TestLoginSucceeds(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	res, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	if res.IDToken.Subject != "alice-sub" || res.IDToken.SID != "op-session-1" {
		t.Errorf("id token sub %q sid %q", res.IDToken.Subject, res.IDToken.SID)
	}
	if res.Claims.String("name") != "Alice Smith" {
		t.Errorf("claims %s", mustJSON(t, res.Claims))
	}
	if res.Tokens.RefreshToken == "" || res.Tokens.AccessToken == "" || res.Tokens.TokenType != "Bearer" {
		t.Errorf("tokens incomplete: at=%t rt=%t type=%q", res.Tokens.AccessToken != "", res.Tokens.RefreshToken != "", res.Tokens.TokenType)
	}
	if res.Tokens.Expiry.IsZero() {
		t.Error("no access token expiry")
	}

	// The authorization request carried PKCE S256, state and nonce.
	ar := op.AuthRequests()[0]
	for _, p := range []string{"state", "nonce", "code_challenge"} {
		if ar.Get(p) == "" {
			t.Errorf("authorization request lacks %s", p)
		}
	}
	if ar.Get("code_challenge_method") != "S256" || ar.Get("response_type") != "code" {
		t.Errorf("authorization request: %v", ar)
	}
	// The token request sent the verifier and authenticated with basic auth
	// (the secret is not in the form).
	tr := op.TokenRequests()[0]
	if tr.Get("code_verifier") == "" || tr.Get("client_secret") != "" {
		t.Errorf("token request form: %v", tr)
	}
}

func TestClientSecretPostWhenOnlyPostIsListed(t *testing.T) {
	op := bfftest.NewOP(t)
	op.EditMetadata = func(m map[string]any) { m["token_endpoint_auth_methods_supported"] = []string{"client_secret_post"} }
	rp := newRP(t, op)
	if _, err := login(t, rp); err != nil {
		t.Fatal(err)
	}
	if got := op.TokenRequests()[0].Get("client_secret"); got != op.ClientSecret {
		t.Errorf("client_secret in form = %q, want the secret", got)
	}
}

func TestDiscoveryIssuerMustMatchExactly(t *testing.T) {
	op := bfftest.NewOP(t)
	op.EditMetadata = func(m map[string]any) { m["issuer"] = op.Issuer + "/" }
	rp := newRP(t, op)
	_, err := rp.Discover(context.Background())
	if err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("want an issuer mismatch, got %v", err)
	}
}

// TestIDTokenRules breaks one ID token rule per case and checks that the
// exchange fails naming that rule. Removing any check makes its case fail.
func TestIDTokenRules(t *testing.T) {
	other := bfftest.OtherKey()
	cases := []struct {
		name string
		rule string
		edit func(op *bfftest.OP)
	}{
		{"wrong nonce", oidc.RuleNonce, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["nonce"] = "not-the-nonce" }
		}},
		{"missing nonce", oidc.RuleNonce, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { delete(c, "nonce") }
		}},
		{"bad signature", oidc.RuleSignature, func(op *bfftest.OP) {
			op.SignIDToken = func(h, c map[string]any) string { return bfftest.SignJWT(other, h, c) }
		}},
		{"alg none", oidc.RuleAlgorithm, func(op *bfftest.OP) {
			op.SignIDToken = func(h, c map[string]any) string { return bfftest.UnsignedJWT(c) }
		}},
		{"alg HS256 with the client secret", oidc.RuleAlgorithm, func(op *bfftest.OP) {
			op.ClientSecret = "a-client-secret-of-at-least-32-bytes"
			op.SignIDToken = func(h, c map[string]any) string { return bfftest.HMACJWT([]byte(op.ClientSecret), c) }
		}},
		{"wrong issuer", oidc.RuleIssuer, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["iss"] = "https://evil.example" }
		}},
		{"wrong audience", oidc.RuleAudience, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["aud"] = "someone-else" }
		}},
		{"extra untrusted audience", oidc.RuleAudience, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["aud"] = []string{op.ClientID, "someone-else"}; c["azp"] = op.ClientID }
		}},
		{"azp of another client", oidc.RuleAZP, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["azp"] = "someone-else" }
		}},
		{"expired", oidc.RuleExpiry, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }
		}},
		{"missing iat", oidc.RuleIssuedAt, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { delete(c, "iat") }
		}},
		{"iat in the future", oidc.RuleIssuedAt, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }
		}},
		{"iat too old", oidc.RuleIssuedAt, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }
		}},
		{"missing sub", oidc.RuleSubject, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { delete(c, "sub") }
		}},
		{"at_hash of another token", oidc.RuleAccessHash, func(op *bfftest.OP) {
			op.EditIDToken = func(h, c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }
		}},
		{"userinfo sub mismatch", oidc.RuleUserinfoSub, func(op *bfftest.OP) {
			op.EditUserinfo = func(c map[string]any) { c["sub"] = "mallory-sub" }
		}},
		{"no id token", oidc.RuleIDToken, func(op *bfftest.OP) {
			op.SignIDToken = func(h, c map[string]any) string { return "" }
		}},
		{"garbage id token", oidc.RuleIDToken, func(op *bfftest.OP) {
			op.SignIDToken = func(h, c map[string]any) string { return "a.b.c" }
		}},
	}
	// Where two checks would reject the same token, the message shows
	// which one did.
	messages := map[string]string{"missing iat": "no iat"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := bfftest.NewOP(t)
			tc.edit(op)
			rp := newRP(t, op)
			res, err := login(t, rp)
			if err == nil {
				t.Fatalf("login succeeded with sub %q", res.IDToken.Subject)
			}
			wantRule(t, err, tc.rule)
			if want := messages[tc.name]; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		})
	}
}

func TestTrustedExtraAudienceWithAZPIsAccepted(t *testing.T) {
	op := bfftest.NewOP(t)
	op.EditIDToken = func(h, c map[string]any) { c["aud"] = []string{op.ClientID, "api"}; c["azp"] = op.ClientID }
	rp := newRP(t, op, func(c *oidc.Config) { c.TrustedAudiences = []string{"api"} })
	if _, err := login(t, rp); err != nil {
		t.Fatal(err)
	}
}

func TestSeveralAudiencesNeedAZP(t *testing.T) {
	op := bfftest.NewOP(t)
	op.EditIDToken = func(h, c map[string]any) { c["aud"] = []string{op.ClientID, "api"} }
	rp := newRP(t, op, func(c *oidc.Config) { c.TrustedAudiences = []string{"api"} })
	_, err := login(t, rp)
	wantRule(t, err, oidc.RuleAZP)
}

func TestIssParameter(t *testing.T) {
	t.Run("matching iss is accepted", func(t *testing.T) {
		op := bfftest.NewOP(t)
		op.IssParameter, op.AdvertiseIss = true, true
		if _, err := login(t, newRP(t, op)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong iss is rejected", func(t *testing.T) {
		op := bfftest.NewOP(t)
		rp := newRP(t, op)
		req := oidc.NewAuthRequest()
		q := authorize(t, rp, req)
		q.Set("iss", "https://evil.example")
		_, err := rp.CheckAuthResponse(context.Background(), q)
		wantRule(t, err, oidc.RuleIssParam)
	})
	t.Run("missing iss is rejected when advertised", func(t *testing.T) {
		op := bfftest.NewOP(t)
		op.AdvertiseIss = true // advertised, but not sent
		_, err := login(t, newRP(t, op))
		wantRule(t, err, oidc.RuleIssParam)
	})
	t.Run("error responses are checked too", func(t *testing.T) {
		op := bfftest.NewOP(t)
		rp := newRP(t, op)
		q := url.Values{"error": {"access_denied"}, "iss": {"https://evil.example"}}
		_, err := rp.CheckAuthResponse(context.Background(), q)
		wantRule(t, err, oidc.RuleIssParam)
	})
}

func TestAuthorizationErrorResponse(t *testing.T) {
	op := bfftest.NewOP(t)
	op.AuthError = "access_denied"
	_, err := login(t, newRP(t, op))
	var pe *oidc.ProtocolError
	if !errors.As(err, &pe) || pe.Code != "access_denied" {
		t.Fatalf("want access_denied, got %v", err)
	}
}

func TestCodeReuseFails(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	req := oidc.NewAuthRequest()
	q := authorize(t, rp, req)
	code, err := rp.CheckAuthResponse(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Exchange(context.Background(), code, req); err != nil {
		t.Fatal(err)
	}
	_, err = rp.Exchange(context.Background(), code, req)
	var pe *oidc.ProtocolError
	if !errors.As(err, &pe) || pe.Code != "invalid_grant" {
		t.Fatalf("second exchange: want invalid_grant, got %v", err)
	}
}

func TestWrongVerifierFails(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	req := oidc.NewAuthRequest()
	q := authorize(t, rp, req)
	code, _ := rp.CheckAuthResponse(context.Background(), q)
	req.CodeVerifier = oidc.NewAuthRequest().CodeVerifier
	if _, err := rp.Exchange(context.Background(), code, req); err == nil {
		t.Fatal("exchange with another verifier succeeded")
	}
}

func TestRefresh(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	first, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	second, err := rp.Refresh(context.Background(), first.Tokens.RefreshToken, first.Tokens.IDToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.Tokens.AccessToken == first.Tokens.AccessToken || second.Tokens.RefreshToken == first.Tokens.RefreshToken {
		t.Error("refresh did not return new tokens")
	}
	if second.IDToken == nil || second.IDToken.Subject != first.IDToken.Subject {
		t.Error("refreshed ID token missing or of another subject")
	}
	// The rotated-out refresh token is dead.
	_, err = rp.Refresh(context.Background(), first.Tokens.RefreshToken, first.Tokens.IDToken)
	if !errors.Is(err, oidc.ErrInvalidGrant) {
		t.Fatalf("old refresh token: want ErrInvalidGrant, got %v", err)
	}
}

func TestRefreshedIDTokenMustKeepSubject(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	first, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	op.Set(func(op *bfftest.OP) { op.Subject = "mallory-sub" })
	_, err = rp.Refresh(context.Background(), first.Tokens.RefreshToken, first.Tokens.IDToken)
	wantRule(t, err, oidc.RuleSubject)
}

func TestRefreshedIDTokenMustKeepIssuer(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	first, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	// A previous ID token of another issuer (as if the configuration had
	// changed under a live session) must not be continued.
	key, _ := op.Key()
	prev := bfftest.SignJWT(key, map[string]any{"alg": "RS256"}, map[string]any{"iss": "https://old.example", "sub": "alice-sub", "aud": op.ClientID})
	_, err = rp.Refresh(context.Background(), first.Tokens.RefreshToken, prev)
	wantRule(t, err, oidc.RuleIssuer)
}

func TestRefreshUnavailableOP(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	first, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	op.Server.Close()
	_, err = rp.Refresh(context.Background(), first.Tokens.RefreshToken, first.Tokens.IDToken)
	var ue *oidc.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("want UnavailableError, got %v", err)
	}
}

func TestRevoke(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	res, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.Revoke(context.Background(), res.Tokens.RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	if got := op.Revoked(); len(got) != 1 || got[0] != res.Tokens.RefreshToken {
		t.Fatalf("revoked %d tokens", len(got))
	}
}

func TestEndSessionURL(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	u, err := rp.EndSessionURL(context.Background(), "hint", "https://app.example/signout-callback-oidc", "st")
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := url.Parse(u)
	q := parsed.Query()
	if !strings.HasPrefix(u, op.Issuer+"/end_session?") || q.Get("id_token_hint") != "hint" ||
		q.Get("post_logout_redirect_uri") != "https://app.example/signout-callback-oidc" || q.Get("state") != "st" || q.Get("client_id") != op.ClientID {
		t.Fatalf("end session URL %s", u)
	}

	op.EditMetadata = func(m map[string]any) { delete(m, "end_session_endpoint") }
	rp = newRP(t, op)
	if u, err := rp.EndSessionURL(context.Background(), "hint", "x", "y"); err != nil || u != "" {
		t.Fatalf("without an endpoint: %q, %v", u, err)
	}
}

// TestJWKSRefetchIsRateLimited sends tokens with unknown key ids and checks
// that the JWKS endpoint is fetched once, not once per token.
func TestJWKSRefetchIsRateLimited(t *testing.T) {
	op := bfftest.NewOP(t)
	var fetches atomic.Int32
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks" {
			fetches.Add(1)
		}
		op.Server.Config.Handler.ServeHTTP(w, r)
	}))
	defer counting.Close()
	op.EditMetadata = func(m map[string]any) { m["jwks_uri"] = counting.URL + "/jwks" }
	rp := newRP(t, op)
	if _, err := login(t, rp); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("first login fetched the JWKS %d times", n)
	}
	other := bfftest.OtherKey()
	for i := range 5 {
		op.Set(func(op *bfftest.OP) {
			op.SignIDToken = func(h, c map[string]any) string {
				h["kid"] = "unknown-" + string(rune('a'+i))
				return bfftest.SignJWT(other, h, c)
			}
		})
		_, err := login(t, rp)
		wantRule(t, err, oidc.RuleSignature)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("five unknown key ids caused %d JWKS fetches in all, want 1 (rate-limited)", n)
	}
}

func TestJWKSRefetchFindsRotatedKey(t *testing.T) {
	op := bfftest.NewOP(t)
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	rp := newRP(t, op, func(c *oidc.Config) {
		c.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	if _, err := login(t, rp); err != nil {
		t.Fatal(err)
	}
	op.Set(func(op *bfftest.OP) { op.RotateKey() })
	clock.Add(int64(oidc.DefaultJWKSRefetchMinimum + time.Second))
	if _, err := login(t, rp); err != nil {
		t.Fatalf("after key rotation: %v", err)
	}
}

func TestNewRejectsDisallowedAlgorithm(t *testing.T) {
	for _, alg := range []string{"none", "HS256"} {
		_, err := oidc.New(oidc.Config{Issuer: "https://op", ClientID: "c", RedirectURL: "https://app/cb", SigningAlgorithms: []string{alg}})
		if err == nil {
			t.Errorf("algorithm %q was accepted", alg)
		}
	}
}

func mustJSON(t *testing.T, c oidc.Claims) string {
	t.Helper()
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRefreshWithoutAPreviousIDToken(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	first, err := login(t, rp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Refresh(context.Background(), first.Tokens.RefreshToken, ""); err != nil {
		t.Fatalf("refresh without the previous ID token: %v", err)
	}
}

// TestDiscoveryOutlivesACancelledRequest: the first request to need
// discovery gives up at once; discovery must still succeed for the next.
func TestDiscoveryOutlivesACancelledRequest(t *testing.T) {
	op := bfftest.NewOP(t)
	rp := newRP(t, op)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rp.Discover(ctx)
	if _, err := rp.Discover(context.Background()); err != nil {
		t.Fatalf("discovery after a cancelled request: %v", err)
	}
}
