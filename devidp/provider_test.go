package devidp_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gobff/bff/devidp"
)

func TestDiscoveryWithIssuerPath(t *testing.T) {
	f := newFixture(t, false, nil)
	d := f.endpoints
	if d.Issuer != f.issuer {
		t.Fatalf("issuer = %q, want exactly %q", d.Issuer, f.issuer)
	}
	if f.idp.Issuer() != f.issuer {
		t.Fatalf("Issuer() = %q, want %q", f.idp.Issuer(), f.issuer)
	}
	for name, e := range map[string]string{
		"authorization": d.AuthorizationEndpoint, "token": d.TokenEndpoint, "userinfo": d.UserinfoEndpoint,
		"jwks": d.JWKSURI, "revocation": d.RevocationEndpoint, "end_session": d.EndSessionEndpoint,
	} {
		if !strings.HasPrefix(e, f.issuer+"/") {
			t.Errorf("%s endpoint %q is not under the issuer", name, e)
		}
	}
	for _, m := range []string{"client_secret_basic", "client_secret_post"} {
		if !slices.Contains(d.TokenEndpointAuthMethods, m) {
			t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", d.TokenEndpointAuthMethods, m)
		}
	}
	if !slices.Equal(d.CodeChallengeMethods, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", d.CodeChallengeMethods)
	}
	for _, g := range []string{"authorization_code", "refresh_token", "client_credentials"} {
		if !slices.Contains(d.GrantTypes, g) {
			t.Errorf("grant_types_supported %v lacks %s", d.GrantTypes, g)
		}
	}
	if !d.BackChannelLogoutSupported || !d.BackChannelLogoutSessionSupported {
		t.Errorf("back-channel logout not advertised: %+v", d)
	}

	// The JWKS has one RS256 signing key with a key id.
	resp, err := http.Get(d.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.KeyID == "" || k.Algorithm != "RS256" || k.Use != "sig" || !k.IsPublic() {
		t.Fatalf("unexpected JWK %+v", k)
	}
}

func TestRequestsOutsideTheIssuerPathAreNotFound(t *testing.T) {
	f := newFixture(t, false, nil)
	resp, err := http.Get(strings.TrimSuffix(f.issuer, issuerPathPart) + "/idpx/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", resp.StatusCode)
	}
}

func TestMountedAtRoot(t *testing.T) {
	f := newFixture(t, true, nil)
	if f.endpoints.Issuer != f.issuer {
		t.Fatalf("issuer = %q, want %q", f.endpoints.Issuer, f.issuer)
	}
	s := f.signIn(t, f.newBrowser(t), f.bob)
	if s.claims.Sub != f.bob.Subject {
		t.Fatalf("sub = %q, want %q", s.claims.Sub, f.bob.Subject)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := devidp.Client{ID: "c", Secret: "s", RedirectURIs: []string{"http://127.0.0.1:9/cb"}}
	for name, cfg := range map[string]devidp.Config{
		"no issuer":        {},
		"relative issuer":  {Issuer: "/idp"},
		"issuer query":     {Issuer: "http://127.0.0.1:8080/idp?x=1"},
		"ftp issuer":       {Issuer: "ftp://127.0.0.1/idp"},
		"client no secret": {Issuer: "http://127.0.0.1:8080", Clients: []devidp.Client{{ID: "c"}}},
		"duplicate client": {Issuer: "http://127.0.0.1:8080", Clients: []devidp.Client{good, good}},
		"relative redirect": {Issuer: "http://127.0.0.1:8080", Clients: []devidp.Client{
			{ID: "c", Secret: "s", RedirectURIs: []string{"/cb"}},
		}},
		"duplicate user": {Issuer: "http://127.0.0.1:8080", Users: []devidp.User{
			{Username: "a", Password: "a"}, {Username: "a", Password: "b"},
		}},
		"negative lifetime": {Issuer: "http://127.0.0.1:8080", AccessTokenLifetime: -1},
	} {
		if _, err := devidp.New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

func TestDefaultUsers(t *testing.T) {
	users := devidp.DefaultUsers()
	if len(users) != 2 || users[0].Username != "alice" || users[1].Username != "bob" {
		t.Fatalf("unexpected default users %+v", users)
	}
	for _, u := range users {
		if u.Password != u.Username || u.Subject == "" || u.Subject == u.Username || u.Email == "" || u.Name == "" {
			t.Errorf("default user %+v is incomplete", u)
		}
	}
	users[0].Subject = "changed"
	if devidp.DefaultUsers()[0].Subject == "changed" {
		t.Fatal("DefaultUsers shares its slice between calls")
	}
}
