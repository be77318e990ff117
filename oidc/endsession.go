package oidc

import (
	"context"
	"net/url"
)

// EndSessionURL returns the URL of an RP-initiated logout request
// (OpenID Connect RP-Initiated Logout 1.0, section 2) with id_token_hint,
// client_id, post_logout_redirect_uri and state, or "" when the OP has no
// end_session_endpoint. Empty arguments are left out.
func (rp *RelyingParty) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirectURI, state string) (string, error) {
	d, err := rp.discover(ctx)
	if err != nil {
		return "", err
	}
	if d.meta.EndSessionEndpoint == "" {
		return "", nil
	}
	u, err := url.Parse(d.meta.EndSessionEndpoint)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", rp.cfg.ClientID)
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
