package devidp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// sweepInterval is how often expired state is dropped from memory.
const sweepInterval = time.Minute

// errNotFound is the cause of every failed lookup of a request, code, token
// or session: unknown, expired, revoked or already used.
var errNotFound = errors.New("not found or expired")

// storage is the provider's in-memory op.Storage. It also keeps the OP
// (SSO) sessions, because tokens, sessions and auth requests reference each
// other and end together. One mutex guards all mutable state.
type storage struct {
	issuer               string
	users                *userDirectory
	clients              map[string]*opClient
	key                  *signingKey
	accessTokenLifetime  time.Duration
	refreshTokenLifetime time.Duration
	sessionLifetime      time.Duration
	log                  *slog.Logger
	stats                *counters
	backChannel          *backChannel

	mu            sync.Mutex
	authRequests  map[string]*authRequest  // by id
	codes         map[string]string        // code -> auth request id
	accessTokens  map[string]*accessToken  // by id (the JWT's jti)
	refreshTokens map[string]*refreshToken // by id, the hash of the token
	sessions      map[string]*ssoSession   // by sid
	cookies       map[string]string        // session cookie value -> sid
	lastSweep     time.Time
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// newID returns a random identifier for requests, sessions and tokens.
func newID() string { return randomToken(16) }

// sweepLocked drops expired auth requests, tokens and sessions, at most once
// per sweepInterval. The caller holds s.mu.
func (s *storage) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepInterval {
		return
	}
	s.lastSweep = now
	for id, ar := range s.authRequests {
		if ar.loginExpired(now) && ar.codeExpired(now) {
			s.deleteAuthRequestLocked(id)
		}
	}
	for id, at := range s.accessTokens {
		if now.After(at.expiresAt) {
			delete(s.accessTokens, id)
		}
	}
	for id, rt := range s.refreshTokens {
		if now.After(rt.expiresAt) {
			delete(s.refreshTokens, id)
		}
	}
	for sid, sess := range s.sessions {
		if now.After(sess.expiresAt) {
			delete(s.sessions, sid)
			delete(s.cookies, sess.cookie)
		}
	}
}

// CreateAuthRequest implements op.AuthStorage. On top of zitadel's checks
// it refuses PKCE methods other than S256, the only one advertised.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	now := time.Now()
	ar := newAuthRequest(newID(), req, hintSubject, now)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	s.authRequests[ar.id] = ar
	c := *ar
	return &c, nil
}

// AuthRequestByID implements op.AuthStorage. It finds requests whose login
// has not expired.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || ar.loginExpired(time.Now()) {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	c := *ar
	return &c, nil
}

// pendingAuthRequest returns a copy of the auth request id while the user
// can still sign in for it: known, not expired, not yet done.
func (s *storage) pendingAuthRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || ar.done || ar.loginExpired(time.Now()) {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	c := *ar
	return &c, nil
}

// AuthRequestByCode implements op.AuthStorage. A code is redeemable once:
// the lookup itself consumes it, so neither a replay nor a concurrent second
// exchange gets tokens.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	ar, ok := s.authRequests[id]
	if !ok || ar.code != code || ar.codeRedeemed || ar.codeExpired(time.Now()) {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	ar.codeRedeemed = true
	c := *ar
	return &c, nil
}

// SaveAuthCode implements op.AuthStorage. A new code for the same request
// replaces the previous one.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || !ar.done || ar.codeRedeemed {
		return fmt.Errorf("auth request: %w", errNotFound)
	}
	delete(s.codes, ar.code)
	ar.code = code
	ar.codeIssuedAt = time.Now()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.AuthStorage.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteAuthRequestLocked(id)
	return nil
}

// deleteAuthRequestLocked forgets an auth request and its code.
func (s *storage) deleteAuthRequestLocked(id string) {
	if ar, ok := s.authRequests[id]; ok {
		delete(s.codes, ar.code)
		delete(s.authRequests, id)
	}
}

// GetClientByClientID implements op.OPStorage.
func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", clientID, errNotFound)
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.OPStorage.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, secret string) error {
	if _, err := s.authenticateClient(clientID, secret); err != nil {
		return err
	}
	return nil
}

// authenticateClient checks a client's credentials.
func (s *storage) authenticateClient(clientID, secret string) (*opClient, error) {
	c, ok := s.clients[clientID]
	if !ok || !c.checkSecret(secret) {
		return nil, errors.New("invalid client credentials")
	}
	return c, nil
}

// ClientCredentials implements op.ClientCredentialsStorage.
func (s *storage) ClientCredentials(_ context.Context, clientID, secret string) (op.Client, error) {
	return s.authenticateClient(clientID, secret)
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	return &clientCredentialsRequest{clientID: clientID, scopes: scopes}, nil
}

// SetUserinfoFromScopes implements op.OPStorage. zitadel deprecated it in
// favour of SetUserinfoFromRequest, so it does nothing.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the claims
// of the ID token. It adds the OP session's "sid".
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, ok := s.users.bySub(req.GetSubject())
	if !ok {
		return fmt.Errorf("user %q: %w", req.GetSubject(), errNotFound)
	}
	u.setUserinfo(info, scopes)
	var sid string
	switch r := req.(type) {
	case *authRequest:
		sid = r.sid
	case *refreshTokenRequest:
		sid = r.sid
	}
	if sid != "" {
		info.AppendClaims("sid", sid)
	}
	return nil
}

// SetUserinfoFromToken implements op.OPStorage: the userinfo endpoint. The
// access token must still be valid here, not only by its signature: a
// revoked token gets no userinfo.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.validAccessToken(tokenID, subject)
	if err != nil {
		return err
	}
	if !at.forUser {
		return errors.New("access token has no user")
	}
	u, ok := s.users.bySub(at.subject)
	if !ok {
		return fmt.Errorf("user %q: %w", at.subject, errNotFound)
	}
	u.setUserinfo(info, at.scopes)
	return nil
}

// SetIntrospectionFromToken implements op.OPStorage: any authenticated
// client may introspect a valid access token.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	at, err := s.validAccessToken(tokenID, subject)
	if err != nil {
		return err
	}
	if at.forUser {
		if u, ok := s.users.bySub(at.subject); ok {
			info := new(oidc.UserInfo)
			u.setUserinfo(info, at.scopes)
			resp.SetUserInfo(info)
		}
	}
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.expiresAt)
	resp.IssuedAt = oidc.FromTime(at.issuedAt)
	resp.Subject = at.subject
	resp.Audience = at.audience
	resp.Issuer = s.issuer
	resp.JWTID = at.id
	return nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage. It is unused, because
// storage implements op.CanGetPrivateClaimsFromRequest.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// the extra claims of a JWT access token. It adds the granted scopes as the
// space-separated "scope" claim (RFC 9068).
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	return map[string]any{"scope": strings.Join(req.GetScopes(), " ")}, nil
}

// GetKeyByIDAndClientID implements op.OPStorage. Clients have no keys: the
// JWT profile grant and private_key_jwt are not supported.
func (s *storage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, fmt.Errorf("key %q of client %q: %w", keyID, clientID, errNotFound)
}

// ValidateJWTProfileScopes implements op.OPStorage. The JWT profile grant is
// not supported.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grant not supported")
}

// SigningKey implements op.AuthStorage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms implements op.AuthStorage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.AuthStorage: the keys served at the JWKS endpoint.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{s.key.public()}, nil
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }
