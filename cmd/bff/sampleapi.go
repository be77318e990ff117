package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// sampleAPI is the remote API of bff dev. It runs on its own loopback port,
// which only bff calls, and trusts nothing but the bearer token bff
// attaches: it verifies the JWT access token against the OP's keys, then
// uses the same token at the OP's userinfo endpoint to greet the user by
// name. The browser never sees that token.
type sampleAPI struct {
	issuer   string
	audience string
	verifier *gooidc.IDTokenVerifier
	client   *http.Client
}

func newSampleAPI(issuer, audience string) *sampleAPI {
	keys := gooidc.NewRemoteKeySet(context.Background(), issuer+"/keys")
	return &sampleAPI{
		issuer:   issuer,
		audience: audience,
		// An access token is a JWT like an ID token (RFC 9068); the same
		// verifier checks signature, iss, aud and exp.
		verifier: gooidc.NewVerifier(issuer, keys, &gooidc.Config{ClientID: audience}),
		client:   &http.Client{Timeout: 5 * time.Second},
	}
}

func (a *sampleAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "no bearer token"})
		return
	}
	tok, err := a.verifier.Verify(r.Context(), raw)
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid token"})
		return
	}
	var claims struct {
		Scope  string          `json:"scope"`
		Nonce  json.RawMessage `json:"nonce"`
		ATHash json.RawMessage `json:"at_hash"`
	}
	// The OP signs ID tokens and access tokens with the same key, for the
	// same audience (this dev OP has no separate API audience), so the
	// verifier alone would take an ID token as an access token. An ID token
	// carries nonce or at_hash and no scope; an access token the reverse.
	// A real API should check an audience of its own and "typ": "at+jwt"
	// (RFC 9068) instead.
	if err := tok.Claims(&claims); err != nil || claims.Scope == "" || claims.Nonce != nil || claims.ATHash != nil {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "not an access token"})
		return
	}
	name := a.userName(r.Context(), raw)
	if name == "" {
		name = tok.Subject
	}
	json.NewEncoder(w).Encode(map[string]any{
		"message":          "Hello, " + name + ", from the sample API behind bff.",
		"sub":              tok.Subject,
		"scope":            claims.Scope,
		"token_expires_in": int(time.Until(tok.Expiry).Seconds()),
		"cookies_received": len(r.Cookies()),
	})
}

// userName asks the OP's userinfo endpoint for the user's name, with the
// user's access token.
func (a *sampleAPI) userName(ctx context.Context, token string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.issuer+"/userinfo", nil)
	if err != nil {
		return ""
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info struct {
		Name string `json:"name"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil {
		return ""
	}
	return info.Name
}
