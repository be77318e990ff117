package devidp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// A grant is the chain of tokens that one code exchange starts: the first
// refresh token, every refresh token rotated from it, and every access token
// issued along the way. Revoking a refresh token revokes its grant.

// accessToken is the server-side record of a JWT access token; its id is the
// token's jti. The record is what makes revocation visible to the userinfo
// and introspection endpoints.
type accessToken struct {
	id        string
	grantID   string // empty for client credentials
	clientID  string
	subject   string
	sid       string
	forUser   bool // false for client credentials, where subject is the client
	audience  []string
	scopes    []string
	issuedAt  time.Time
	expiresAt time.Time
}

// refreshToken is the server-side record of an opaque refresh token. The
// token itself is not kept: the record's id is its hash.
type refreshToken struct {
	id        string
	grantID   string
	clientID  string
	subject   string
	sid       string
	audience  []string
	scopes    []string
	amr       []string
	authTime  time.Time
	expiresAt time.Time
}

// refreshTokenRequest is what a presented refresh token stands for; it
// implements op.RefreshTokenRequest.
type refreshTokenRequest struct {
	refreshToken
	currentScopes []string
}

var _ op.RefreshTokenRequest = (*refreshTokenRequest)(nil)

// GetAMR implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAMR() []string { return r.amr }

// GetAudience implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAudience() []string { return r.audience }

// GetAuthTime implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAuthTime() time.Time { return r.authTime }

// GetClientID implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetClientID() string { return r.clientID }

// GetScopes implements op.RefreshTokenRequest: the scopes of this refresh,
// which the client may have narrowed.
func (r *refreshTokenRequest) GetScopes() []string { return r.currentScopes }

// GetSubject implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetSubject() string { return r.subject }

// SetCurrentScopes implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) SetCurrentScopes(scopes []string) { r.currentScopes = scopes }

// clientCredentialsRequest is a client_credentials grant; it implements
// op.TokenRequest. The subject is the client itself.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

// GetSubject implements op.TokenRequest.
func (r *clientCredentialsRequest) GetSubject() string { return r.clientID }

// GetAudience implements op.TokenRequest.
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.clientID} }

// GetScopes implements op.TokenRequest.
func (r *clientCredentialsRequest) GetScopes() []string { return r.scopes }

// hashToken returns the id under which a refresh token is stored.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CreateAccessToken implements op.AuthStorage, for the code flow without
// offline_access and for client credentials.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)

	var at *accessToken
	switch r := req.(type) {
	case *authRequest:
		if err := s.checkSessionLocked(r.sid, now); err != nil {
			return "", time.Time{}, err
		}
		at = s.addAccessTokenLocked(accessToken{
			grantID:  newID(),
			clientID: r.clientID,
			subject:  r.subject,
			sid:      r.sid,
			forUser:  true,
			audience: r.GetAudience(),
			scopes:   r.scopes,
		}, now)
		s.stats.authCodeGrants.Add(1)
	case *clientCredentialsRequest:
		at = s.addAccessTokenLocked(accessToken{
			clientID: r.clientID,
			subject:  r.clientID,
			audience: r.GetAudience(),
			scopes:   r.scopes,
		}, now)
		s.stats.clientCredentialsGrants.Add(1)
	default:
		return "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("unsupported token request %T", req)
	}
	return at.id, at.expiresAt, nil
}

// CreateAccessAndRefreshTokens implements op.AuthStorage, for the code flow
// with offline_access and for the refresh_token grant. A refresh rotates:
// the presented token is consumed under the lock, so it works exactly once,
// even for concurrent requests; a second use gets invalid_grant.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)

	var rt refreshToken
	switch r := req.(type) {
	case *authRequest:
		if err := s.checkSessionLocked(r.sid, now); err != nil {
			return "", "", time.Time{}, err
		}
		rt = refreshToken{
			grantID:  newID(),
			clientID: r.clientID,
			subject:  r.subject,
			sid:      r.sid,
			audience: r.GetAudience(),
			scopes:   r.scopes,
			amr:      r.GetAMR(),
			authTime: r.authTime,
		}
		s.stats.authCodeGrants.Add(1)
	case *refreshTokenRequest:
		old, ok := s.refreshTokens[hashToken(current)]
		if current == "" || !ok || now.After(old.expiresAt) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid, expired, revoked or already used")
		}
		delete(s.refreshTokens, old.id)
		rt = *old // the original scopes, not the narrowed ones (RFC 6749, section 6)
		s.stats.refreshGrants.Add(1)
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("unsupported token request %T", req)
	}

	token := randomToken(32)
	rt.id = hashToken(token)
	rt.expiresAt = now.Add(s.refreshTokenLifetime)
	s.refreshTokens[rt.id] = &rt
	at := s.addAccessTokenLocked(accessToken{
		grantID:  rt.grantID,
		clientID: rt.clientID,
		subject:  rt.subject,
		sid:      rt.sid,
		forUser:  true,
		audience: rt.audience,
		scopes:   req.GetScopes(),
	}, now)
	return at.id, token, at.expiresAt, nil
}

// addAccessTokenLocked records a new access token described by at, giving it
// an id and its lifetime from now.
func (s *storage) addAccessTokenLocked(at accessToken, now time.Time) *accessToken {
	at.id = newID()
	at.audience = slices.Clone(at.audience)
	at.scopes = slices.Clone(at.scopes)
	at.issuedAt = now
	at.expiresAt = now.Add(s.accessTokenLifetime)
	s.accessTokens[at.id] = &at
	return &at
}

// validAccessToken returns a copy of the access token tokenID if it is
// known, unexpired and belongs to subject.
func (s *storage) validAccessToken(tokenID, subject string) (*accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || at.subject != subject || time.Now().After(at.expiresAt) {
		return nil, fmt.Errorf("access token: %w", errNotFound)
	}
	c := *at
	return &c, nil
}

// TokenRequestByRefreshToken implements op.AuthStorage.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[hashToken(token)]
	if !ok || time.Now().After(rt.expiresAt) {
		return nil, fmt.Errorf("refresh token: %w", errNotFound)
	}
	if _, ok := s.users.bySub(rt.subject); !ok {
		return nil, fmt.Errorf("user %q: %w", rt.subject, errNotFound)
	}
	return &refreshTokenRequest{refreshToken: *rt, currentScopes: rt.scopes}, nil
}

// GetRefreshTokenInfo implements op.AuthStorage, for the revocation
// endpoint.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[hashToken(token)]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.id, nil
}

// RevokeToken implements op.AuthStorage, for the revocation endpoint (RFC
// 7009). tokenOrID is a refresh token's id, an access token's id (jti), or a
// raw token zitadel could not identify. Revoking a refresh token revokes its
// whole grant. An unknown token is not an error.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.stats.revocations.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()

	rt, ok := s.refreshTokens[tokenOrID]
	if !ok {
		rt, ok = s.refreshTokens[hashToken(tokenOrID)]
	}
	if ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		s.revokeLocked(func(grantID, _, _ string) bool { return grantID == rt.grantID })
		return nil
	}
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, at.id)
	}
	return nil
}

// revokeUserTokens revokes every token issued to the user sub.
func (s *storage) revokeUserTokens(sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(func(_, subject, _ string) bool { return subject == sub })
}

// revokeLocked deletes the user tokens (refresh and access) that match.
func (s *storage) revokeLocked(match func(grantID, subject, sid string) bool) {
	for id, rt := range s.refreshTokens {
		if match(rt.grantID, rt.subject, rt.sid) {
			delete(s.refreshTokens, id)
		}
	}
	for id, at := range s.accessTokens {
		if at.forUser && match(at.grantID, at.subject, at.sid) {
			delete(s.accessTokens, id)
		}
	}
}
