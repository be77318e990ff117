package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Tokens are the tokens of a token response.
type Tokens struct {
	AccessToken  string
	TokenType    string
	Expiry       time.Time // of the access token; zero when the OP gave no expires_in
	RefreshToken string
	IDToken      string
	Scope        string
}

// String, GoString and LogValue keep tokens out of anything that formats
// them by accident.
func (t Tokens) String() string { return "[tokens redacted]" }

// GoString implements fmt.GoStringer; see String.
func (t Tokens) GoString() string { return t.String() }

// LogValue implements slog.LogValuer; see String.
func (t Tokens) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Result is the outcome of a code exchange or a refresh.
type Result struct {
	Tokens Tokens
	// IDToken is the validated ID token; nil after a refresh whose response
	// had none.
	IDToken *IDToken
	// Claims are the ID token's claims completed from the userinfo endpoint.
	Claims Claims
}

// Exchange redeems an authorization code (RFC 6749, section 4.1.3) with the
// PKCE verifier of req, authenticating as a confidential client, validates
// the ID token against req's nonce (see VerifyIDToken), and completes the
// claims from the userinfo endpoint, whose sub must match (Core 5.3.2).
func (rp *RelyingParty) Exchange(ctx context.Context, code string, req AuthRequest) (*Result, error) {
	d, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := d.oauth2.Exchange(rp.withClient(ctx), code, oauth2.VerifierOption(req.CodeVerifier))
	if err != nil {
		return nil, tokenEndpointError("token", err)
	}
	tokens, err := rp.tokensOf(tok)
	if err != nil {
		return nil, err
	}
	id, err := rp.verifyIDToken(ctx, d, tokens.IDToken, idTokenCheck{nonce: req.Nonce, accessToken: tokens.AccessToken})
	if err != nil {
		return nil, err
	}
	claims, err := rp.completeClaims(ctx, d, id, tokens)
	if err != nil {
		return nil, err
	}
	return &Result{Tokens: tokens, IDToken: id, Claims: claims}, nil
}

// Refresh uses a refresh token (RFC 6749, section 6). previousIDToken is the
// session's current raw ID token: a refreshed ID token must keep its iss,
// sub, aud and azp (Core 12.2). When the OP does not rotate the refresh
// token, the result keeps the old one. A dead refresh token gives an error
// matching ErrInvalidGrant. When the refreshed ID token is invalid, Refresh
// returns the *ValidationError together with a result holding the tokens
// the OP issued (and no ID token), so that the caller can revoke the new
// refresh token it will not keep.
func (rp *RelyingParty) Refresh(ctx context.Context, refreshToken, previousIDToken string) (*Result, error) {
	if refreshToken == "" {
		return nil, errors.New("oidc: no refresh token")
	}
	d, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	src := d.oauth2.TokenSource(rp.withClient(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return nil, tokenEndpointError("refresh", err)
	}
	tokens, err := rp.tokensOf(tok)
	if err != nil {
		return nil, err
	}
	if tokens.RefreshToken == "" {
		tokens.RefreshToken = refreshToken
	}
	res := &Result{Tokens: tokens}
	if tokens.IDToken == "" {
		tokens.IDToken = previousIDToken
		res.Tokens = tokens
		return res, nil
	}
	check := idTokenCheck{accessToken: tokens.AccessToken, refreshed: true}
	if previousIDToken != "" {
		if check.previous, err = unverifiedIDToken(previousIDToken); err != nil {
			return &Result{Tokens: Tokens{RefreshToken: tokens.RefreshToken}}, fmt.Errorf("oidc: reading the previous ID token: %w", err)
		}
	}
	id, err := rp.verifyIDToken(ctx, d, tokens.IDToken, check)
	if err != nil {
		return &Result{Tokens: Tokens{RefreshToken: tokens.RefreshToken}}, err
	}
	res.IDToken = id
	res.Claims = id.Claims
	return res, nil
}

// tokensOf reads an oauth2.Token, checking that its type is one bff can
// present (RFC 6750; RFC 6749, section 7.1). The expiry counts expires_in
// from the relying party's clock, which x/oauth2 does not know.
func (rp *RelyingParty) tokensOf(tok *oauth2.Token) (Tokens, error) {
	t := Tokens{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		Expiry:       tok.Expiry,
		RefreshToken: tok.RefreshToken,
	}
	if tok.ExpiresIn > 0 {
		t.Expiry = rp.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if t.AccessToken == "" {
		return Tokens{}, invalid(RuleTokenType, "the token response has no access_token")
	}
	if t.TokenType == "" || strings.EqualFold(t.TokenType, "bearer") {
		t.TokenType = "Bearer"
	} else {
		return Tokens{}, invalid(RuleTokenType, "token type %q is not supported", t.TokenType)
	}
	if s, ok := tok.Extra("id_token").(string); ok {
		t.IDToken = s
	}
	if s, ok := tok.Extra("scope").(string); ok {
		t.Scope = s
	}
	return t, nil
}

// tokenEndpointError turns an error of golang.org/x/oauth2 into a
// *ProtocolError (the OP said no), or an *UnavailableError (network failure
// or a server error). It never keeps the response body, which a broken OP
// might fill with anything.
func tokenEndpointError(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if status >= 500 || status == http.StatusTooManyRequests {
			return &UnavailableError{Op: op, Err: fmt.Errorf("status %d %s", status, re.ErrorCode)}
		}
		if re.ErrorCode != "" {
			return &ProtocolError{Code: re.ErrorCode, Description: re.ErrorDescription}
		}
		return &ProtocolError{Code: fmt.Sprintf("http_%d", status)}
	}
	// A network failure, a timeout, or a response x/oauth2 could not read.
	return &UnavailableError{Op: op, Err: err}
}
