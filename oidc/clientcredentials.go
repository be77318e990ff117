package oidc

import (
	"context"
	"net/url"

	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentials gets an access token for bff itself (RFC 6749, section
// 4.4), for API routes that call on behalf of the application rather than a
// user. resource, when not empty, is sent as the RFC 8707 resource
// parameter. The result has no ID token.
func (rp *RelyingParty) ClientCredentials(ctx context.Context, scopes []string, resource string) (*Tokens, error) {
	d, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	cc := clientcredentials.Config{
		ClientID:     rp.cfg.ClientID,
		ClientSecret: rp.cfg.ClientSecret,
		TokenURL:     d.meta.TokenEndpoint,
		Scopes:       scopes,
		AuthStyle:    d.oauth2.Endpoint.AuthStyle,
	}
	if resource != "" {
		cc.EndpointParams = url.Values{"resource": {resource}}
	}
	tok, err := cc.Token(rp.withClient(ctx))
	if err != nil {
		return nil, tokenEndpointError("client_credentials", err)
	}
	t, err := rp.tokensOf(tok)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
