package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
)

// maxUserinfoBytes bounds the userinfo response bff reads.
const maxUserinfoBytes = 1 << 20

// completeClaims returns the ID token's claims followed by those only the
// userinfo endpoint has, unless userinfo is off or the OP has no endpoint.
// The userinfo sub must equal the ID token's (Core 5.3.2): otherwise an OP
// (or whoever answers for it) could swap in another user's profile.
func (rp *RelyingParty) completeClaims(ctx context.Context, d *discovered, id *IDToken, tokens Tokens) (Claims, error) {
	if rp.cfg.SkipUserInfo || d.meta.UserinfoEndpoint == "" {
		return id.Claims, nil
	}
	info, err := rp.userinfo(ctx, d, tokens.AccessToken)
	if err != nil {
		return nil, err
	}
	if sub := info.String("sub"); sub != id.Subject {
		return nil, invalid(RuleUserinfoSub, "userinfo sub %q is not the ID token's %q", sub, id.Subject)
	}
	return id.Claims.Merge(info), nil
}

func (rp *RelyingParty) userinfo(ctx context.Context, d *discovered, accessToken string) (Claims, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.meta.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("oidc: userinfo request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json, application/jwt")
	resp, err := rp.client.Do(req)
	if err != nil {
		return nil, &UnavailableError{Op: "userinfo", Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserinfoBytes))
	if err != nil {
		return nil, &UnavailableError{Op: "userinfo", Err: err}
	}
	if resp.StatusCode >= 500 {
		return nil, &UnavailableError{Op: "userinfo", Err: fmt.Errorf("status %s", resp.Status)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidc: userinfo: status %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/jwt" {
		// A signed userinfo response (Core 5.3.2) must come from the issuer
		// and be meant for this client.
		payload, err := d.verifier.Verify(rp.withClient(ctx), string(body))
		if err != nil {
			return nil, classifyVerifyError(err)
		}
		var raw json.RawMessage
		if err := payload.Claims(&raw); err != nil {
			return nil, fmt.Errorf("oidc: userinfo: %w", err)
		}
		if !slices.Contains(payload.Audience, rp.cfg.ClientID) {
			return nil, invalid(RuleAudience, "signed userinfo is not for this client")
		}
		body = raw
	}
	claims, err := ParseClaims(body)
	if err != nil {
		return nil, fmt.Errorf("oidc: userinfo: %w", err)
	}
	return claims, nil
}
