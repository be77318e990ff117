package devidp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gobff/bff/devidp"
)

func TestRefreshTokensRotate(t *testing.T) {
	f := newFixture(t, false, nil)
	s := f.signIn(t, f.newBrowser(t), f.alice, offlineAccess)
	rt1 := s.token.RefreshToken
	if rt1 == "" {
		t.Fatal("no refresh token with offline_access")
	}

	tok2, err := f.refresh(t.Context(), rt1)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	rt2 := tok2.RefreshToken
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh did not rotate: %q -> %q", rt1, rt2)
	}
	if tok2.AccessToken == s.token.AccessToken {
		t.Error("refresh returned the same access token")
	}
	s2 := f.verifyTokens(t, tok2)
	if s2.claims.Sub != s.claims.Sub || s2.claims.SID != s.claims.SID || s2.claims.AuthTime != s.claims.AuthTime {
		t.Errorf("refreshed ID token sub/sid/auth_time %q/%q/%d, want %q/%q/%d",
			s2.claims.Sub, s2.claims.SID, s2.claims.AuthTime, s.claims.Sub, s.claims.SID, s.claims.AuthTime)
	}
	if s2.claims.Email != f.alice.Email {
		t.Errorf("refreshed ID token lost the email claim")
	}

	// The old token is spent.
	_, err = f.refresh(t.Context(), rt1)
	requireOAuthError(t, err, "invalid_grant")

	// The new one works, once.
	tok3, err := f.refresh(t.Context(), rt2)
	if err != nil {
		t.Fatalf("refresh with the rotated token: %v", err)
	}
	_, err = f.refresh(t.Context(), rt2)
	requireOAuthError(t, err, "invalid_grant")
	if tok3.RefreshToken == "" {
		t.Fatal("no refresh token from the second refresh")
	}
	if st := f.idp.Stats(); st.RefreshGrants != 2 {
		t.Errorf("RefreshGrants = %d, want 2", st.RefreshGrants)
	}
}

func TestConcurrentRefreshesOnlyOneWins(t *testing.T) {
	f := newFixture(t, false, nil)
	s := f.signIn(t, f.newBrowser(t), f.alice, offlineAccess)

	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = f.refresh(t.Context(), s.token.RefreshToken)
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		requireOAuthError(t, err, "invalid_grant")
	}
	if wins != 1 {
		t.Fatalf("%d concurrent refreshes with one token succeeded, want 1", wins)
	}
}

func TestRefreshWithNarrowerScope(t *testing.T) {
	f := newFixture(t, false, nil)
	s := f.signIn(t, f.newBrowser(t), f.alice, offlineAccess)
	// x/oauth2 sends no scope when refreshing, so post the request directly.
	p := postForm(t, f.endpoints.TokenEndpoint, webClientID, webClientSecret, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {s.token.RefreshToken},
		"scope":         {"openid offline_access"},
	})
	var resp struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(p.body), &resp); err != nil || p.status != http.StatusOK {
		t.Fatalf("narrowed refresh: %d %s", p.status, p.body)
	}
	tok := (&oauth2.Token{AccessToken: resp.AccessToken, RefreshToken: resp.RefreshToken}).
		WithExtra(map[string]any{"id_token": resp.IDToken})
	if got := f.verifyTokens(t, tok).claims; got.Email != "" || got.Sub != f.alice.Subject {
		t.Errorf("narrowed ID token still has email %q (sub %q)", got.Email, got.Sub)
	}
	// The rotated token keeps the original scopes.
	tok, err := f.refresh(t.Context(), resp.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after narrowing: %v", err)
	}
	if got := f.verifyTokens(t, tok).claims; got.Email != f.alice.Email {
		t.Errorf("full-scope refresh lost the email claim")
	}

	// Widening is refused.
	p = postForm(t, f.endpoints.TokenEndpoint, webClientID, webClientSecret, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {tok.RefreshToken},
		"scope":         {"openid api:admin"},
	})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "invalid_scope") {
		t.Errorf("widened refresh: %d %s", p.status, p.body)
	}
}

func TestRevokeUserTokens(t *testing.T) {
	f := newFixture(t, false, nil)
	alice := f.signIn(t, f.newBrowser(t), f.alice, offlineAccess)
	bob := f.signIn(t, f.newBrowser(t), f.bob, offlineAccess)

	f.idp.RevokeUserTokens(f.alice.Subject)

	_, err := f.refresh(t.Context(), alice.token.RefreshToken)
	requireOAuthError(t, err, "invalid_grant")
	if _, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(alice.token)); err == nil {
		t.Error("userinfo accepts a revoked access token")
	}

	// Bob is untouched.
	if _, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(bob.token)); err != nil {
		t.Errorf("bob's userinfo: %v", err)
	}
	if _, err := f.refresh(t.Context(), bob.token.RefreshToken); err != nil {
		t.Errorf("bob's refresh: %v", err)
	}
}

func TestRevocationEndpoint(t *testing.T) {
	f := newFixture(t, false, nil)
	s := f.signIn(t, f.newBrowser(t), f.alice, offlineAccess)
	revoke := f.endpoints.RevocationEndpoint

	// Another client cannot revoke the web client's token.
	p := postForm(t, revoke, otherClientID, otherSecret, url.Values{"token": {s.token.RefreshToken}})
	if p.status == http.StatusOK {
		t.Fatal("another client revoked the token")
	}
	// Nor can anyone with a wrong secret.
	p = postForm(t, revoke, webClientID, "wrong", url.Values{"token": {s.token.RefreshToken}})
	if p.status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: status %d, want 401", p.status)
	}

	p = postForm(t, revoke, webClientID, webClientSecret,
		url.Values{"token": {s.token.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if p.status != http.StatusOK {
		t.Fatalf("revoke refresh token: status %d: %s", p.status, p.body)
	}
	_, err := f.refresh(t.Context(), s.token.RefreshToken)
	requireOAuthError(t, err, "invalid_grant")
	// Revoking the refresh token revoked its grant's access token too.
	if _, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(s.token)); err == nil {
		t.Error("userinfo accepts the access token of a revoked grant")
	}

	// An access token on its own, and an unknown token (RFC 7009: 200).
	s2 := f.signIn(t, f.newBrowser(t), f.bob)
	p = postForm(t, revoke, webClientID, webClientSecret,
		url.Values{"token": {s2.token.AccessToken}, "token_type_hint": {"access_token"}})
	if p.status != http.StatusOK {
		t.Fatalf("revoke access token: status %d: %s", p.status, p.body)
	}
	if _, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(s2.token)); err == nil {
		t.Error("userinfo accepts a revoked access token")
	}
	p = postForm(t, revoke, webClientID, webClientSecret, url.Values{"token": {"unknown"}})
	if p.status != http.StatusOK {
		t.Fatalf("revoke unknown token: status %d: %s", p.status, p.body)
	}
	if st := f.idp.Stats(); st.Revocations < 3 {
		t.Errorf("Revocations = %d, want at least 3", st.Revocations)
	}
}

func TestClientCredentials(t *testing.T) {
	f := newFixture(t, false, nil)
	cc := clientcredentials.Config{
		ClientID:     otherClientID,
		ClientSecret: otherSecret,
		TokenURL:     f.endpoints.TokenEndpoint,
		Scopes:       []string{"api:read"},
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	if tok.RefreshToken != "" || tok.Extra("id_token") != nil {
		t.Error("client credentials returned a refresh or ID token")
	}
	at, err := f.provider.Verifier(&oidc.Config{ClientID: otherClientID}).Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	var claims struct {
		Scope string `json:"scope"`
	}
	if err := at.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if at.Subject != otherClientID || !slices.Contains(at.Audience, otherClientID) || claims.Scope != "api:read" {
		t.Errorf("access token sub %q aud %v scope %q", at.Subject, at.Audience, claims.Scope)
	}
	if _, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo answered for a client credentials token")
	}

	cc.ClientSecret = "wrong"
	_, err = cc.Token(t.Context())
	requireOAuthError(t, err, "invalid_client")
	if st := f.idp.Stats(); st.ClientCredentialsGrants != 1 {
		t.Errorf("ClientCredentialsGrants = %d, want 1", st.ClientCredentialsGrants)
	}
}

func TestShortAccessTokenLifetime(t *testing.T) {
	f := newFixture(t, false, func(c *devidp.Config) {
		c.AccessTokenLifetime = 2 * time.Second
		c.IDTokenLifetime = time.Minute
	})
	s := f.signIn(t, f.newBrowser(t), f.alice, offlineAccess)
	expiresIn, ok := s.token.Extra("expires_in").(float64)
	if !ok || expiresIn < 1 || expiresIn > 2 {
		t.Fatalf("expires_in = %v, want 1 or 2", s.token.Extra("expires_in"))
	}
	at, err := f.provider.Verifier(&oidc.Config{ClientID: webClientID}).Verify(t.Context(), s.token.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		IssuedAt int64 `json:"iat"`
		Expiry   int64 `json:"exp"`
	}
	if err := at.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if d := claims.Expiry - claims.IssuedAt; d < 1 || d > 2 {
		t.Errorf("access token exp - iat = %d s, want 2 (1 across a second boundary)", d)
	}
	if d := s.idToken.Expiry.Sub(s.idToken.IssuedAt); d < 59*time.Second || d > time.Minute {
		t.Errorf("ID token lifetime %v, want 1m", d)
	}

	// Once expired, the provider refuses the access token; the refresh
	// token still works.
	time.Sleep(2500 * time.Millisecond)
	if _, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(s.token)); err == nil {
		t.Error("userinfo accepts an expired access token")
	}
	if _, err := f.refresh(t.Context(), s.token.RefreshToken); err != nil {
		t.Errorf("refresh after access token expiry: %v", err)
	}
}

func TestIntrospection(t *testing.T) {
	f := newFixture(t, false, nil)
	s := f.signIn(t, f.newBrowser(t), f.alice)
	var introspect struct {
		Endpoint string `json:"introspection_endpoint"`
	}
	if err := f.provider.Claims(&introspect); err != nil {
		t.Fatal(err)
	}
	p := postForm(t, introspect.Endpoint, webClientID, webClientSecret, url.Values{"token": {s.token.AccessToken}})
	var resp struct {
		Active bool   `json:"active"`
		Sub    string `json:"sub"`
		Scope  string `json:"scope"`
	}
	if err := json.Unmarshal([]byte(p.body), &resp); err != nil {
		t.Fatalf("introspection response %q: %v", p.body, err)
	}
	if !resp.Active || resp.Sub != f.alice.Subject || resp.Scope != "openid profile email" {
		t.Fatalf("introspection = %+v", resp)
	}
	f.idp.RevokeUserTokens(f.alice.Subject)
	p = postForm(t, introspect.Endpoint, webClientID, webClientSecret, url.Values{"token": {s.token.AccessToken}})
	resp.Active = true
	if err := json.Unmarshal([]byte(p.body), &resp); err != nil || resp.Active {
		t.Fatalf("revoked token introspects as %s (%v)", p.body, err)
	}
}
