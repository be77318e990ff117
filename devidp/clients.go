package devidp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Client is a confidential OAuth 2.0 / OpenID Connect client (a relying
// party) registered at the provider. It authenticates at the token,
// revocation and introspection endpoints with client_secret_basic or
// client_secret_post, and may use the authorization_code (with or without
// PKCE S256), refresh_token and client_credentials grants.
type Client struct {
	// ID and Secret are the client's credentials. Both are required.
	ID, Secret string
	// RedirectURIs are the exact redirect_uri values the client may use.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the exact post_logout_redirect_uri values
	// the end_session endpoint redirects to for this client.
	PostLogoutRedirectURIs []string
	// BackChannelLogoutURI, when set, receives a logout token (OpenID Connect
	// Back-Channel Logout 1.0) whenever an OP session in which the client
	// took part ends.
	BackChannelLogoutURI string
}

// validate reports a client that cannot work.
func (c *Client) validate() error {
	if c.ID == "" {
		return errors.New("client ID is empty")
	}
	if c.Secret == "" {
		return fmt.Errorf("client %q: secret is empty", c.ID)
	}
	for _, u := range c.RedirectURIs {
		if err := checkAbsoluteURL(u); err != nil {
			return fmt.Errorf("client %q: redirect URI: %w", c.ID, err)
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := checkAbsoluteURL(u); err != nil {
			return fmt.Errorf("client %q: post-logout redirect URI: %w", c.ID, err)
		}
	}
	if c.BackChannelLogoutURI != "" {
		if err := checkAbsoluteURL(c.BackChannelLogoutURI); err != nil {
			return fmt.Errorf("client %q: back-channel logout URI: %w", c.ID, err)
		}
	}
	return nil
}

// checkAbsoluteURL reports whether raw is an absolute http(s) URL without a
// fragment.
func checkAbsoluteURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q has a fragment", raw)
	}
	return nil
}

// checkSecret compares secret with the client's secret in constant time.
func (c *Client) checkSecret(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) == 1
}

// opClient presents a registered Client to zitadel's op package.
type opClient struct {
	*Client
	loginURL        func(authRequestID string) string
	idTokenLifetime time.Duration
}

var _ op.Client = (*opClient)(nil)

// GetID implements op.Client.
func (c *opClient) GetID() string { return c.ID }

// RedirectURIs implements op.Client.
func (c *opClient) RedirectURIs() []string { return c.Client.RedirectURIs }

// PostLogoutRedirectURIs implements op.Client.
func (c *opClient) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }

// ApplicationType implements op.Client: every client is a confidential web
// client, which zitadel allows http redirect URIs for the code flow.
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

// AuthMethod implements op.Client. zitadel checks the secret of a
// client_secret_basic client wherever it was sent, header or form, so with
// op.Config.AuthMethodPost set both methods work.
func (c *opClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }

// ResponseTypes implements op.Client: only the code flow.
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes implements op.Client. The refresh_token grant is what lets
// zitadel issue a refresh token when offline_access is requested.
func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{
		oidc.GrantTypeCode,
		oidc.GrantTypeRefreshToken,
		oidc.GrantTypeClientCredentials,
	}
}

// LoginURL implements op.Client: the provider's own login form.
func (c *opClient) LoginURL(authRequestID string) string { return c.loginURL(authRequestID) }

// AccessTokenType implements op.Client: JWT access tokens, verifiable by a
// resource server with the provider's JWKS.
func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// IDTokenLifetime implements op.Client.
func (c *opClient) IDTokenLifetime() time.Duration { return c.idTokenLifetime }

// DevMode implements op.Client. It stays off: zitadel allows http redirect
// URIs for confidential code-flow clients anyway.
func (c *opClient) DevMode() bool { return false }

// RestrictAdditionalIdTokenScopes implements op.Client without restriction.
func (c *opClient) RestrictAdditionalIdTokenScopes() func(scopes []string) []string {
	return func(scopes []string) []string { return scopes }
}

// RestrictAdditionalAccessTokenScopes implements op.Client without restriction.
func (c *opClient) RestrictAdditionalAccessTokenScopes() func(scopes []string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed implements op.Client: custom scopes (for example API
// scopes) are kept in the request and end up in the access token's "scope"
// claim.
func (c *opClient) IsScopeAllowed(string) bool { return true }

// IDTokenUserinfoClaimsAssertion implements op.Client: the profile and email
// claims go into the ID token too, not only to the userinfo endpoint.
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew implements op.Client.
func (c *opClient) ClockSkew() time.Duration { return 0 }
