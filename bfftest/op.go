// Package bfftest helps test code that runs behind bff, and bff itself.
//
// [OP] is a small OpenID Provider that signs whatever a test tells it to: a
// wrong nonce, a foreign audience, an expired token, a token signed with
// another key or with "alg: none". It is meant for negative tests, where a
// real OP cannot be made to misbehave. For a real, certified OP in tests use
// package devidp.
package bfftest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// OP is a scriptable OpenID Provider on an httptest server. Its authorize
// endpoint logs the user in at once and redirects back with a code; its
// token endpoint checks client authentication, the code, the redirect URI
// and the PKCE verifier, and answers with an ID token built from Claims and
// then passed through the test's hooks.
//
// Set the exported fields before the flow starts; they are read under a
// lock, so a test may change them between requests.
type OP struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Server       *httptest.Server

	mu sync.Mutex
	// Subject and Claims make up the user. Claims are added to the ID
	// token and returned by userinfo.
	Subject string
	Claims  map[string]any
	// SID is put in ID tokens as the sid claim when not empty.
	SID string
	// AccessTokenLifetime is the expires_in of access tokens; default 1h.
	AccessTokenLifetime time.Duration
	// IssParameter makes the authorize endpoint add iss to its response
	// (RFC 9207). AdvertiseIss advertises that in discovery.
	IssParameter bool
	AdvertiseIss bool
	// AuthError, when set, makes the authorize endpoint answer with this
	// error code instead of a code.
	AuthError string
	// EditIDToken may change the ID token's header and claims before it is
	// signed.
	EditIDToken func(header map[string]any, claims map[string]any)
	// SignIDToken, when set, replaces the signing of the ID token.
	SignIDToken func(header map[string]any, claims map[string]any) string
	// EditUserinfo may change the userinfo response.
	EditUserinfo func(claims map[string]any)
	// EditMetadata may change the discovery document.
	EditMetadata func(meta map[string]any)
	// RefreshError, when set, makes the refresh grant fail with this error
	// code (e.g. "invalid_grant").
	RefreshError string
	// BeforeToken, when set, is called with each token request's form
	// before the OP handles it (and outside its lock), for tests that must
	// hold a request in flight. Set it before the flow starts.
	BeforeToken func(form url.Values)
	// BeforeRevoke is BeforeToken for the revocation endpoint.
	BeforeRevoke func(form url.Values)
	// TokenStatus, when set, makes the token endpoint answer every request
	// with this HTTP status and no token, as an OP in trouble does (503).
	TokenStatus int

	key   *rsa.PrivateKey
	keyID string
	codes map[string]codeGrant
	// refresh tokens that are still valid, to their subject.
	refreshTokens map[string]string

	// Recorded traffic.
	authRequests []url.Values
	tokenForms   []url.Values
	revoked      []string
	endSessions  []url.Values
}

type codeGrant struct {
	clientID      string
	redirectURI   string
	nonce         string
	codeChallenge string
	scope         string
}

// NewOP starts an OP for client "bff" with secret "secret" and the user
// "alice". The server is closed when the test ends.
func NewOP(t testing.TB) *OP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &OP{
		ClientID:     "bff",
		ClientSecret: "secret",
		Subject:      "alice-sub",
		SID:          "op-session-1",
		Claims: map[string]any{
			"name":  "Alice Smith",
			"email": "alice@example.com",
		},
		key:           key,
		keyID:         "test-key-1",
		codes:         map[string]codeGrant{},
		refreshTokens: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	mux.HandleFunc("POST /revoke", op.revoke)
	mux.HandleFunc("GET /end_session", op.endSession)
	op.Server = httptest.NewServer(mux)
	op.Issuer = op.Server.URL
	t.Cleanup(op.Server.Close)
	return op
}

// Key returns the OP's signing key, for tests that sign tokens themselves.
func (op *OP) Key() (*rsa.PrivateKey, string) { return op.key, op.keyID }

// Authorize sends a browser to authURL, an authorization request to an OP
// that answers at once (as OP does), and returns the query of the OP's
// redirect back to the client: code, state, and iss when the OP sends it,
// or the error.
func Authorize(t testing.TB, authURL string) url.Values {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

// RotateKey replaces the signing key with a new one under a new key id, as
// an OP's key rotation does. Call it inside Set.
func (op *OP) RotateKey() {
	op.key = OtherKey()
	op.keyID = "test-key-" + rand.Text()[:8]
}

// AuthRequests returns the query of every authorization request so far.
func (op *OP) AuthRequests() []url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]url.Values(nil), op.authRequests...)
}

// TokenRequests returns the form of every token request so far.
func (op *OP) TokenRequests() []url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]url.Values(nil), op.tokenForms...)
}

// Revoked returns every token revoked so far.
func (op *OP) Revoked() []string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]string(nil), op.revoked...)
}

// EndSessions returns the query of every end-session request so far.
func (op *OP) EndSessions() []url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]url.Values(nil), op.endSessions...)
}

// Set runs f under the OP's lock, for changing its fields while requests
// may be in flight.
func (op *OP) Set(f func(op *OP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

func (op *OP) discovery(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	meta := map[string]any{
		"issuer":                                op.Issuer,
		"authorization_endpoint":                op.Issuer + "/authorize",
		"token_endpoint":                        op.Issuer + "/token",
		"userinfo_endpoint":                     op.Issuer + "/userinfo",
		"jwks_uri":                              op.Issuer + "/jwks",
		"revocation_endpoint":                   op.Issuer + "/revoke",
		"end_session_endpoint":                  op.Issuer + "/end_session",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	}
	if op.AdvertiseIss {
		meta["authorization_response_iss_parameter_supported"] = true
	}
	if op.EditMetadata != nil {
		op.EditMetadata(meta)
	}
	writeJSON(w, http.StatusOK, meta)
}

func (op *OP) jwks(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: op.key.Public(), KeyID: op.keyID, Algorithm: "RS256", Use: "sig",
	}}}
	writeJSON(w, http.StatusOK, set)
}

func (op *OP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	defer op.mu.Unlock()
	op.authRequests = append(op.authRequests, q)
	redirectURI := q.Get("redirect_uri")
	target, err := url.Parse(redirectURI)
	if err != nil || redirectURI == "" || q.Get("client_id") != op.ClientID {
		http.Error(w, "bad client or redirect_uri", http.StatusBadRequest)
		return
	}
	resp := url.Values{"state": {q.Get("state")}}
	if op.IssParameter {
		resp.Set("iss", op.Issuer)
	}
	if op.AuthError != "" {
		resp.Set("error", op.AuthError)
	} else {
		code := rand.Text()
		op.codes[code] = codeGrant{
			clientID:      q.Get("client_id"),
			redirectURI:   redirectURI,
			nonce:         q.Get("nonce"),
			codeChallenge: q.Get("code_challenge"),
			scope:         q.Get("scope"),
		}
		resp.Set("code", code)
	}
	target.RawQuery = resp.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func (op *OP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if op.BeforeToken != nil {
		op.BeforeToken(r.PostForm)
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.tokenForms = append(op.tokenForms, r.PostForm)
	if op.TokenStatus != 0 {
		http.Error(w, http.StatusText(op.TokenStatus), op.TokenStatus)
		return
	}
	if !op.authenticated(r) {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		grant, ok := op.codes[code]
		delete(op.codes, code)
		if !ok || grant.redirectURI != r.PostForm.Get("redirect_uri") {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if grant.codeChallenge == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != grant.codeChallenge {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		op.issue(w, grant.nonce, strings.Contains(grant.scope, "offline_access"))
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if _, ok := op.refreshTokens[rt]; !ok || op.RefreshError != "" {
			code := op.RefreshError
			if code == "" {
				code = "invalid_grant"
			}
			tokenError(w, http.StatusBadRequest, code)
			return
		}
		delete(op.refreshTokens, rt) // rotation
		op.issue(w, "", true)
	case "client_credentials":
		lifetime := op.AccessTokenLifetime
		if lifetime == 0 {
			lifetime = time.Hour
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": "cc-" + rand.Text(),
			"token_type":   "Bearer",
			"expires_in":   int(lifetime / time.Second),
			"scope":        r.PostForm.Get("scope"),
		})
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// GrantCount returns how many token requests of grant type (e.g.
// "refresh_token") the OP has received.
func (op *OP) GrantCount(grantType string) int {
	op.mu.Lock()
	defer op.mu.Unlock()
	n := 0
	for _, f := range op.tokenForms {
		if f.Get("grant_type") == grantType {
			n++
		}
	}
	return n
}

func (op *OP) authenticated(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == op.ClientID && secret == op.ClientSecret
}

// issue writes a token response. Called with op.mu held.
func (op *OP) issue(w http.ResponseWriter, nonce string, refresh bool) {
	lifetime := op.AccessTokenLifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	accessToken := "at-" + rand.Text()
	now := time.Now()
	claims := map[string]any{
		"iss": op.Issuer,
		"sub": op.Subject,
		"aud": op.ClientID,
		"exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Unix(),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if op.SID != "" {
		claims["sid"] = op.SID
	}
	for k, v := range op.Claims {
		claims[k] = v
	}
	header := map[string]any{"alg": "RS256", "kid": op.keyID, "typ": "JWT"}
	if op.EditIDToken != nil {
		op.EditIDToken(header, claims)
	}
	var idToken string
	if op.SignIDToken != nil {
		idToken = op.SignIDToken(header, claims)
	} else {
		idToken = SignJWT(op.key, header, claims)
	}
	resp := map[string]any{
		"access_token": accessToken,
		"token_type":   "Bearer",
		"expires_in":   int(lifetime / time.Second),
		"id_token":     idToken,
	}
	if refresh {
		rt := "rt-" + rand.Text()
		op.refreshTokens[rt] = op.Subject
		resp["refresh_token"] = rt
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (op *OP) userinfo(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer at-") {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	claims := map[string]any{"sub": op.Subject}
	for k, v := range op.Claims {
		claims[k] = v
	}
	if op.EditUserinfo != nil {
		op.EditUserinfo(claims)
	}
	writeJSON(w, http.StatusOK, claims)
}

func (op *OP) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if op.BeforeRevoke != nil {
		op.BeforeRevoke(r.PostForm)
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if !op.authenticated(r) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	token := r.PostForm.Get("token")
	op.revoked = append(op.revoked, token)
	delete(op.refreshTokens, token)
	w.WriteHeader(http.StatusOK)
}

func (op *OP) endSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	op.endSessions = append(op.endSessions, q)
	op.mu.Unlock()
	if target := q.Get("post_logout_redirect_uri"); target != "" {
		u, err := url.Parse(target)
		if err == nil {
			v := u.Query()
			if s := q.Get("state"); s != "" {
				v.Set("state", s)
			}
			u.RawQuery = v.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
	}
	fmt.Fprintln(w, "signed out")
}

// SignJWT signs claims with key as a compact JWS with the given header
// (whose "alg" must be an RSA algorithm go-jose knows, such as RS256).
func SignJWT(key *rsa.PrivateKey, header map[string]any, claims map[string]any) string {
	alg, _ := header["alg"].(string)
	extra := map[jose.HeaderKey]any{}
	for k, v := range header {
		if k != "alg" {
			extra[jose.HeaderKey(k)] = v
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, &jose.SignerOptions{ExtraHeaders: extra})
	if err != nil {
		panic(fmt.Sprintf("bfftest: signer: %v", err))
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("bfftest: claims: %v", err))
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(fmt.Sprintf("bfftest: sign: %v", err))
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		panic(fmt.Sprintf("bfftest: serialize: %v", err))
	}
	return s
}

// UnsignedJWT returns an "alg: none" JWT of claims (RFC 7519, section 6):
// what an attacker sends hoping the signature check is skipped.
func UnsignedJWT(claims map[string]any) string {
	head, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
	body, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

// HMACJWT returns an HS256 JWT of claims keyed with secret: the algorithm
// confusion attack, where the attacker hopes a public key or the client
// secret is taken as the HMAC key.
func HMACJWT(secret []byte, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, nil)
	if err != nil {
		panic(fmt.Sprintf("bfftest: signer: %v", err))
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(fmt.Sprintf("bfftest: sign: %v", err))
	}
	s, _ := jws.CompactSerialize()
	return s
}

// OtherKey returns a fresh RSA key, for signatures no JWKS vouches for.
func OtherKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func tokenError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}
