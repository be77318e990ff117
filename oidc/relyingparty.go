package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Defaults of [Config].
const (
	DefaultIDTokenMaxAge      = 10 * time.Minute
	DefaultClockSkew          = time.Minute
	DefaultJWKSRefetchMinimum = 10 * time.Second
	defaultRetryDiscovery     = 5 * time.Second
)

// Config configures a [RelyingParty].
type Config struct {
	// Issuer is the OP's issuer identifier. Discovery must report exactly
	// this value (OpenID Connect Discovery 1.0, section 4.3).
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback URL registered at the OP.
	RedirectURL string
	// Scopes to request; "openid" is added when missing.
	Scopes []string

	// TrustedAudiences are audiences besides ClientID that an ID token may
	// carry. Any other extra audience is rejected (Core 3.1.3.7, rule 3).
	TrustedAudiences []string
	// SigningAlgorithms is the allow-list of ID token signature algorithms.
	// Default: the asymmetric algorithms the OP advertises, or RS256. "none"
	// and the HMAC algorithms are never accepted.
	SigningAlgorithms []string
	// IDTokenMaxAge bounds how old an ID token's iat may be; default 10m.
	IDTokenMaxAge time.Duration
	// ClockSkew is the tolerance for exp and iat against the local clock;
	// default 1m.
	ClockSkew time.Duration
	// SkipUserInfo turns off the userinfo request after login. By default
	// the userinfo endpoint, when the OP has one, completes the ID token's
	// claims, and its sub must equal the ID token's (Core 5.3.2).
	SkipUserInfo bool
	// JWKSRefetchMinimum is the least time between two JWKS fetches caused
	// by an unknown key id; default 10s.
	JWKSRefetchMinimum time.Duration

	// HTTPClient for every request to the OP; default a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// allowedAlgorithms are the asymmetric JWS algorithms bff accepts (RFC 7518,
// section 3.1, and RFC 8037). HS* would make the client secret a signing
// key; "none" is no signature at all.
var allowedAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

// RelyingParty is an OpenID Connect confidential client of one OP. It
// discovers the OP lazily, on first use, and retries a failed discovery at
// most every few seconds, so bff starts even while its OP is down.
type RelyingParty struct {
	cfg    Config
	client *http.Client
	now    func() time.Time

	mu          sync.Mutex
	disc        *discovered
	lastFailure time.Time
	lastErr     error
}

// discovered is what a successful discovery yields.
type discovered struct {
	meta     Metadata
	provider *gooidc.Provider
	oauth2   oauth2.Config
	verifier *gooidc.IDTokenVerifier
	algs     []string
}

// Metadata is the part of the OP's discovery document bff uses.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	IDTokenSigningAlgs                []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethods              []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseIssSupported bool     `json:"authorization_response_iss_parameter_supported"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
}

// New returns a relying party for cfg. It checks cfg but does not contact
// the OP; call [RelyingParty.Discover] to do that up front.
func New(cfg Config) (*RelyingParty, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("oidc: issuer is required")
	case cfg.ClientID == "":
		return nil, errors.New("oidc: client id is required")
	case cfg.RedirectURL == "":
		return nil, errors.New("oidc: redirect URL is required")
	}
	for _, alg := range cfg.SigningAlgorithms {
		if !slices.Contains(allowedAlgorithms, alg) {
			return nil, fmt.Errorf("oidc: signing algorithm %q is not allowed; use one of %v", alg, allowedAlgorithms)
		}
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		cfg.Scopes = append([]string{"openid"}, cfg.Scopes...)
	}
	if cfg.IDTokenMaxAge <= 0 {
		cfg.IDTokenMaxAge = DefaultIDTokenMaxAge
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.JWKSRefetchMinimum <= 0 {
		cfg.JWKSRefetchMinimum = DefaultJWKSRefetchMinimum
	}
	rp := &RelyingParty{cfg: cfg, client: cfg.HTTPClient, now: cfg.Now}
	if rp.client == nil {
		rp.client = &http.Client{
			Timeout: 10 * time.Second,
			// A redirect from the token endpoint would re-send the code,
			// the verifier and the client's credentials to wherever it
			// points; the OP's endpoints do not redirect.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if rp.now == nil {
		rp.now = time.Now
	}
	return rp, nil
}

// Issuer returns the configured issuer.
func (rp *RelyingParty) Issuer() string { return rp.cfg.Issuer }

// ClientID returns the configured client id.
func (rp *RelyingParty) ClientID() string { return rp.cfg.ClientID }

// Discover fetches the OP's metadata and checks it, if that has not been
// done yet. Every other method calls it as needed.
func (rp *RelyingParty) Discover(ctx context.Context) (*Metadata, error) {
	d, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	meta := d.meta
	return &meta, nil
}

// withClient puts the relying party's HTTP client in ctx the way
// golang.org/x/oauth2 and go-oidc look for it.
func (rp *RelyingParty) withClient(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, rp.client)
	return gooidc.ClientContext(ctx, rp.client)
}

func (rp *RelyingParty) discover(ctx context.Context) (*discovered, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.disc != nil {
		return rp.disc, nil
	}
	if rp.lastErr != nil && rp.now().Sub(rp.lastFailure) < defaultRetryDiscovery {
		return nil, rp.lastErr
	}
	// Discovery serves every request waiting here, so it runs on its own
	// deadline, not on the request that happened to come first: a browser
	// that gives up must not fail discovery for everyone.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	d, err := rp.fetchDiscovery(dctx)
	if err != nil {
		rp.lastErr, rp.lastFailure = err, rp.now()
		return nil, err
	}
	rp.disc, rp.lastErr = d, nil
	return d, nil
}

func (rp *RelyingParty) fetchDiscovery(ctx context.Context) (*discovered, error) {
	// go-oidc's NewProvider refuses a document whose issuer is not exactly
	// the configured one (Discovery 1.0, section 4.3).
	provider, err := gooidc.NewProvider(rp.withClient(ctx), rp.cfg.Issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("oidc: discovery: %w", err)
		}
		return nil, &UnavailableError{Op: "discovery", Err: err}
	}
	var meta Metadata
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: discovery document: %w", err)
	}
	if meta.AuthorizationEndpoint == "" || meta.TokenEndpoint == "" || meta.JWKSURI == "" {
		return nil, errors.New("oidc: discovery document lacks authorization_endpoint, token_endpoint or jwks_uri")
	}

	style, err := authStyle(meta.TokenEndpointAuthMethods)
	if err != nil {
		return nil, err
	}
	algs := rp.signingAlgorithms(meta.IDTokenSigningAlgs)
	if len(algs) == 0 {
		return nil, fmt.Errorf("oidc: the provider signs ID tokens only with %v, none of which is allowed", meta.IDTokenSigningAlgs)
	}
	keys := newKeySet(meta.JWKSURI, rp.client, rp.cfg.JWKSRefetchMinimum, rp.now)
	verifier := gooidc.NewVerifier(rp.cfg.Issuer, keys, &gooidc.Config{
		ClientID:             rp.cfg.ClientID,
		SupportedSigningAlgs: algs,
		// exp is judged with the configured skew: a token counts as
		// expired once now-skew is past exp.
		Now: func() time.Time { return rp.now().Add(-rp.cfg.ClockSkew) },
	})
	return &discovered{
		meta:     meta,
		provider: provider,
		verifier: verifier,
		algs:     algs,
		oauth2: oauth2.Config{
			ClientID:     rp.cfg.ClientID,
			ClientSecret: rp.cfg.ClientSecret,
			RedirectURL:  rp.cfg.RedirectURL,
			Scopes:       rp.cfg.Scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL:   meta.AuthorizationEndpoint,
				TokenURL:  meta.TokenEndpoint,
				AuthStyle: style,
			},
		},
	}, nil
}

// authStyle picks client_secret_basic, the default of OpenID Connect
// Discovery when the OP lists nothing, and falls back to client_secret_post
// only when the OP lists that but not basic.
func authStyle(methods []string) (oauth2.AuthStyle, error) {
	switch {
	case len(methods) == 0 || slices.Contains(methods, "client_secret_basic"):
		return oauth2.AuthStyleInHeader, nil
	case slices.Contains(methods, "client_secret_post"):
		return oauth2.AuthStyleInParams, nil
	default:
		return 0, fmt.Errorf("oidc: the provider supports neither client_secret_basic nor client_secret_post (it lists %v)", methods)
	}
}

// signingAlgorithms returns the algorithms to accept: the configured
// allow-list, or else the allowed algorithms the OP advertises, or RS256,
// the one every OP must support (Core 15.1).
func (rp *RelyingParty) signingAlgorithms(advertised []string) []string {
	if len(rp.cfg.SigningAlgorithms) > 0 {
		return rp.cfg.SigningAlgorithms
	}
	if len(advertised) == 0 {
		return []string{"RS256"}
	}
	var algs []string
	for _, alg := range advertised {
		if slices.Contains(allowedAlgorithms, alg) {
			algs = append(algs, alg)
		}
	}
	return algs
}
