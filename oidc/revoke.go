package oidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// ErrNoRevocationEndpoint is returned by Revoke when the OP advertises no
// revocation_endpoint.
var ErrNoRevocationEndpoint = errors.New("oidc: the provider has no revocation endpoint")

// Revoke asks the OP to revoke a token (RFC 7009, section 2.1), with
// tokenTypeHint "refresh_token" or "access_token". golang.org/x/oauth2 has no
// revocation, hence this request by hand. Revoking a token the OP no longer
// knows is a success (section 2.2).
func (rp *RelyingParty) Revoke(ctx context.Context, token, tokenTypeHint string) error {
	d, err := rp.discover(ctx)
	if err != nil {
		return err
	}
	if d.meta.RevocationEndpoint == "" {
		return ErrNoRevocationEndpoint
	}
	form := url.Values{"token": {token}}
	if tokenTypeHint != "" {
		form.Set("token_type_hint", tokenTypeHint)
	}
	if d.oauth2.Endpoint.AuthStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", rp.cfg.ClientID)
		form.Set("client_secret", rp.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.meta.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("oidc: revocation request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if d.oauth2.Endpoint.AuthStyle != oauth2.AuthStyleInParams {
		// RFC 6749, section 2.3.1: form-encode the id and secret first.
		req.SetBasicAuth(url.QueryEscape(rp.cfg.ClientID), url.QueryEscape(rp.cfg.ClientSecret))
	}
	resp, err := rp.client.Do(req)
	if err != nil {
		return &UnavailableError{Op: "revocation", Err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode >= 500:
		return &UnavailableError{Op: "revocation", Err: fmt.Errorf("status %s", resp.Status)}
	default:
		return fmt.Errorf("oidc: revocation: status %s", resp.Status)
	}
}
