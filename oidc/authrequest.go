package oidc

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"slices"

	"golang.org/x/oauth2"
)

// AuthRequest holds the secrets of one authorization request, which the
// caller keeps (bound to the browser) until the callback.
type AuthRequest struct {
	// State is sent to the OP and comes back in the response; the caller
	// looks the request up by it (RFC 6749, section 10.12).
	State string
	// Nonce is sent to the OP and must come back in the ID token
	// (Core 3.1.2.1 and 3.1.3.7, rule 11).
	Nonce string
	// CodeVerifier is the PKCE secret; only its S256 challenge is sent
	// (RFC 7636, section 4).
	CodeVerifier string
}

// NewAuthRequest returns an AuthRequest with fresh random values: 128 bits
// for state and nonce, 256 bits for the PKCE verifier.
func NewAuthRequest() AuthRequest {
	return AuthRequest{
		State:        rand.Text(),
		Nonce:        rand.Text(),
		CodeVerifier: oauth2.GenerateVerifier(),
	}
}

// AuthOptions are per-request options of the authorization request.
type AuthOptions struct {
	// Prompt is passed as the prompt parameter when not empty (Core 3.1.2.1).
	Prompt string
	// MaxAge, when positive, is passed as max_age in seconds.
	MaxAge int
}

// Prompts are the prompt values of OpenID Connect Core 3.1.2.1 and
// Initiating User Registration 1.0.
var Prompts = []string{"none", "login", "consent", "select_account", "create"}

// AuthCodeURL returns the URL of the authorization request for req:
// response_type=code with state, nonce and a PKCE S256 challenge. PKCE is
// sent even when the OP does not advertise it, as RFC 9700 section 2.1.1
// asks of every client.
func (rp *RelyingParty) AuthCodeURL(ctx context.Context, req AuthRequest, opts AuthOptions) (string, error) {
	d, err := rp.discover(ctx)
	if err != nil {
		return "", err
	}
	if len(d.meta.CodeChallengeMethods) > 0 && !slices.Contains(d.meta.CodeChallengeMethods, "S256") {
		return "", fmt.Errorf("oidc: the provider does not support PKCE S256 (it lists %v)", d.meta.CodeChallengeMethods)
	}
	params := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(req.CodeVerifier),
		oauth2.SetAuthURLParam("nonce", req.Nonce),
	}
	if opts.Prompt != "" {
		if !slices.Contains(Prompts, opts.Prompt) {
			return "", fmt.Errorf("oidc: unknown prompt %q", opts.Prompt)
		}
		params = append(params, oauth2.SetAuthURLParam("prompt", opts.Prompt))
	}
	if opts.MaxAge > 0 {
		params = append(params, oauth2.SetAuthURLParam("max_age", fmt.Sprint(opts.MaxAge)))
	}
	return d.oauth2.AuthCodeURL(req.State, params...), nil
}

// CheckAuthResponse validates the parameters of the authorization response
// at the callback, whose state the caller has already matched to req, and
// returns the code. It applies RFC 9207: an iss parameter must equal the
// issuer, and must be present when the OP advertises
// authorization_response_iss_parameter_supported. An error response from
// the OP comes back as a *ProtocolError (after the iss check, which RFC 9207
// applies to error responses too).
func (rp *RelyingParty) CheckAuthResponse(ctx context.Context, query url.Values) (string, error) {
	d, err := rp.discover(ctx)
	if err != nil {
		return "", err
	}
	if iss, ok := query["iss"]; ok {
		if len(iss) != 1 || iss[0] != rp.cfg.Issuer {
			return "", invalid(RuleIssParam, "iss parameter %q is not the issuer %q", iss, rp.cfg.Issuer)
		}
	} else if d.meta.AuthorizationResponseIssSupported {
		return "", invalid(RuleIssParam, "the provider sends iss in authorization responses, and this one has none")
	}
	if code := query.Get("error"); code != "" {
		return "", &ProtocolError{Code: code, Description: query.Get("error_description")}
	}
	codes := query["code"]
	if len(codes) != 1 || codes[0] == "" {
		return "", invalid(RuleCode, "authorization response has %d code parameters", len(codes))
	}
	return codes[0], nil
}
