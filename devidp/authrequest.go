package devidp

import (
	"log/slog"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// authRequestLifetime is how long a user has to sign in after the
	// authorize request.
	authRequestLifetime = 10 * time.Minute
	// codeLifetime is how long an authorization code can be redeemed.
	codeLifetime = time.Minute
)

// authRequest is a validated authorize request, from the authorize endpoint
// through the login to the redemption of its code. The storage hands out
// copies; it changes the stored value only under its lock.
type authRequest struct {
	id            string
	createdAt     time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	prompt        []string
	maxAge        *uint // seconds; zitadel sets 0 for prompt=login
	loginHint     string
	hintSubject   string // sub of a valid id_token_hint
	codeChallenge *oidc.CodeChallenge

	// Set when the user has signed in (or an SSO session was used).
	done     bool
	subject  string
	sid      string
	authTime time.Time

	// Set when the code is issued and redeemed.
	code         string
	codeIssuedAt time.Time
	codeRedeemed bool
}

var (
	_ op.AuthRequest    = (*authRequest)(nil)
	_ op.LogAuthRequest = (*authRequest)(nil)
)

// newAuthRequest converts a request zitadel has validated.
func newAuthRequest(id string, req *oidc.AuthRequest, hintSubject string, now time.Time) *authRequest {
	ar := &authRequest{
		id:           id,
		createdAt:    now,
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone([]string(req.Scopes)),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		prompt:       slices.Clone([]string(req.Prompt)),
		maxAge:       req.MaxAge,
		loginHint:    req.LoginHint,
		hintSubject:  hintSubject,
	}
	if req.CodeChallenge != "" {
		ar.codeChallenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	return ar
}

// loginExpired reports whether it is too late to sign in for the request.
func (a *authRequest) loginExpired(now time.Time) bool {
	return now.After(a.createdAt.Add(authRequestLifetime))
}

// codeExpired reports whether the request's code can no longer be redeemed.
func (a *authRequest) codeExpired(now time.Time) bool {
	return a.code == "" || now.After(a.codeIssuedAt.Add(codeLifetime))
}

// hasPrompt reports whether the request carries the prompt value p.
func (a *authRequest) hasPrompt(p string) bool { return slices.Contains(a.prompt, p) }

// GetID implements op.AuthRequest.
func (a *authRequest) GetID() string { return a.id }

// GetACR implements op.AuthRequest.
func (a *authRequest) GetACR() string { return "" }

// GetAMR implements op.AuthRequest: users sign in with a password.
func (a *authRequest) GetAMR() []string {
	if a.done {
		return []string{"pwd"}
	}
	return nil
}

// GetAudience implements op.AuthRequest: tokens are for the client.
func (a *authRequest) GetAudience() []string { return []string{a.clientID} }

// GetAuthTime implements op.AuthRequest.
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }

// GetClientID implements op.AuthRequest.
func (a *authRequest) GetClientID() string { return a.clientID }

// GetCodeChallenge implements op.AuthRequest.
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }

// GetNonce implements op.AuthRequest.
func (a *authRequest) GetNonce() string { return a.nonce }

// GetRedirectURI implements op.AuthRequest.
func (a *authRequest) GetRedirectURI() string { return a.redirectURI }

// GetResponseType implements op.AuthRequest.
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.responseType }

// GetResponseMode implements op.AuthRequest.
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.responseMode }

// GetScopes implements op.AuthRequest.
func (a *authRequest) GetScopes() []string { return a.scopes }

// GetState implements op.AuthRequest.
func (a *authRequest) GetState() string { return a.state }

// GetSubject implements op.AuthRequest.
func (a *authRequest) GetSubject() string { return a.subject }

// Done implements op.AuthRequest.
func (a *authRequest) Done() bool { return a.done }

// LogValue implements slog.LogValuer, leaving out state, nonce and code.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.id),
		slog.String("client_id", a.clientID),
		slog.String("redirect_uri", a.redirectURI),
		slog.Any("scopes", a.scopes),
		slog.Bool("done", a.done),
	)
}
