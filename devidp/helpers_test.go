package devidp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gobff/bff/devidp"
)

const (
	webClientID     = "web"
	webClientSecret = "web-secret"
	otherClientID   = "other"
	otherSecret     = "other-secret"
	// rpOrigin is the relying party's origin. The test browser stops at
	// redirects leaving the provider, so nothing needs to listen there.
	rpOrigin       = "http://127.0.0.1:9"
	rpRedirectURI  = rpOrigin + "/callback"
	rpPostLogout   = rpOrigin + "/signed-out"
	issuerPathPart = "/idp"
)

// fixture is a running provider with a registered web client, a
// back-channel logout receiver and a go-oidc relying party.
type fixture struct {
	idp          *devidp.Provider
	issuer       string
	alice, bob   devidp.User
	provider     *oidc.Provider
	verifier     *oidc.IDTokenVerifier
	rp           *oauth2.Config
	endpoints    discovery
	logoutTokens chan string
}

// discovery is the part of the discovery document the tests use beyond
// go-oidc's.
type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods              []string `json:"code_challenge_methods_supported"`
	GrantTypes                        []string `json:"grant_types_supported"`
	BackChannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackChannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
}

// newFixture starts a provider whose issuer has the path /idp (or none with
// atRoot), after letting configure adjust the Config.
func newFixture(t *testing.T, atRoot bool, configure func(*devidp.Config)) *fixture {
	t.Helper()
	f := &fixture{logoutTokens: make(chan string, 16)}

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad back-channel request", http.StatusBadRequest)
			return
		}
		f.logoutTokens <- r.PostFormValue("logout_token")
	}))
	t.Cleanup(receiver.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.issuer = "http://" + ln.Addr().String()
	if !atRoot {
		f.issuer += issuerPathPart
	}
	users := devidp.DefaultUsers()
	f.alice, f.bob = users[0], users[1]
	cfg := devidp.Config{
		Issuer: f.issuer,
		Clients: []devidp.Client{
			{
				ID:                     webClientID,
				Secret:                 webClientSecret,
				RedirectURIs:           []string{rpRedirectURI},
				PostLogoutRedirectURIs: []string{rpPostLogout},
				BackChannelLogoutURI:   receiver.URL + "/backchannel-logout",
			},
			{ID: otherClientID, Secret: otherSecret, RedirectURIs: []string{rpRedirectURI}},
		},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(&cfg)
	}
	f.idp, err = devidp.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	if atRoot {
		mux.Handle("/", f.idp)
	} else {
		mux.Handle(issuerPathPart+"/", f.idp)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	ctx := t.Context()
	f.provider, err = oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	if err := f.provider.Claims(&f.endpoints); err != nil {
		t.Fatal(err)
	}
	f.verifier = f.provider.Verifier(&oidc.Config{ClientID: webClientID})
	endpoint := f.provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	f.rp = &oauth2.Config{
		ClientID:     webClientID,
		ClientSecret: webClientSecret,
		Endpoint:     endpoint,
		RedirectURL:  rpRedirectURI,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
	}
	return f
}

// page is a response as the test browser saw it.
type page struct {
	status   int
	location string
	body     string
}

// browser is a cookie-keeping HTTP client that follows redirects within the
// provider and stops at the first redirect elsewhere (to the RP).
type browser struct {
	t      *testing.T
	client *http.Client
	origin string // the provider's scheme://host
}

func (f *fixture) newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{
		t:      t,
		origin: u.Scheme + "://" + u.Host,
		client: &http.Client{
			Jar: jar,
			CheckRedirect: func(req *http.Request, _ []*http.Request) error {
				if req.URL.Host != u.Host {
					return http.ErrUseLastResponse
				}
				return nil
			},
		},
	}
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body)}
}

func (b *browser) get(rawURL string) page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	authReqIDRE  = regexp.MustCompile(`<input type="hidden" name="authRequestID" value="([^"]+)">`)
)

// isLoginForm reports whether p is the provider's login form.
func isLoginForm(p page) bool {
	return authReqIDRE.MatchString(p.body) && strings.Contains(p.body, `name="username"`) &&
		strings.Contains(p.body, `name="password"`)
}

// submitLogin posts the login form on p with the credentials.
func (b *browser) submitLogin(p page, username, password string) page {
	b.t.Helper()
	action := formActionRE.FindStringSubmatch(p.body)
	id := authReqIDRE.FindStringSubmatch(p.body)
	if (p.status != http.StatusOK && p.status != http.StatusUnauthorized) || action == nil || id == nil {
		b.t.Fatalf("not a login form (status %d):\n%s", p.status, p.body)
	}
	form := url.Values{"authRequestID": {id[1]}, "username": {username}, "password": {password}}
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodPost, b.origin+action[1], strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// authRequest is one run of the authorization code flow.
type authRequest struct {
	state, nonce, verifier string
	url                    string
}

// newAuthRequest builds an authorize URL with state, nonce and PKCE S256.
func (f *fixture) newAuthRequest(extra ...oauth2.AuthCodeOption) authRequest {
	a := authRequest{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce)}, extra...)
	a.url = f.rp.AuthCodeURL(a.state, opts...)
	return a
}

// callback checks that p redirects to the RP with the request's state and
// returns the redirect's query.
func (a authRequest) callback(t *testing.T, p page) url.Values {
	t.Helper()
	if p.status != http.StatusFound && p.status != http.StatusSeeOther {
		t.Fatalf("want a redirect to the RP, got status %d:\n%s", p.status, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != rpRedirectURI {
		t.Fatalf("redirected to %q, want %q", p.location, rpRedirectURI)
	}
	q := u.Query()
	if q.Get("state") != a.state {
		t.Fatalf("state = %q, want %q", q.Get("state"), a.state)
	}
	return q
}

// code returns the authorization code of a successful redirect p.
func (a authRequest) code(t *testing.T, p page) string {
	t.Helper()
	q := a.callback(t, p)
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("want a code, got %v", q)
	}
	return q.Get("code")
}

// session is what a relying party holds after a successful sign-in.
type session struct {
	token   *oauth2.Token
	rawID   string
	idToken *oidc.IDToken
	claims  idClaims
}

// idClaims are the ID token claims the tests look at.
type idClaims struct {
	Sub               string `json:"sub"`
	SID               string `json:"sid"`
	Nonce             string `json:"nonce"`
	AZP               string `json:"azp"`
	AuthTime          int64  `json:"auth_time"`
	AtHash            string `json:"at_hash"`
	Name              string `json:"name"`
	GivenName         string `json:"given_name"`
	FamilyName        string `json:"family_name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
	EmailVerified     *bool  `json:"email_verified"`
}

// exchange redeems the code and verifies the ID token with go-oidc.
func (f *fixture) exchange(t *testing.T, a authRequest, code string) session {
	t.Helper()
	tok, err := f.rp.Exchange(t.Context(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	s := f.verifyTokens(t, tok)
	if s.idToken.Nonce != a.nonce {
		t.Fatalf("nonce = %q, want %q", s.idToken.Nonce, a.nonce)
	}
	return s
}

// verifyTokens verifies the ID token of a token response.
func (f *fixture) verifyTokens(t *testing.T, tok *oauth2.Token) session {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		t.Fatal("token response has no id_token")
	}
	idToken, err := f.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	s := session{token: tok, rawID: raw, idToken: idToken}
	if err := idToken.Claims(&s.claims); err != nil {
		t.Fatal(err)
	}
	return s
}

// signIn runs the whole code flow in b, signing in at the form.
func (f *fixture) signIn(t *testing.T, b *browser, user devidp.User, extra ...oauth2.AuthCodeOption) session {
	t.Helper()
	a := f.newAuthRequest(extra...)
	form := b.get(a.url)
	if !isLoginForm(form) {
		t.Fatalf("want the login form, got status %d:\n%s", form.status, form.body)
	}
	return f.exchange(t, a, a.code(t, b.submitLogin(form, user.Username, user.Password)))
}

// offlineAccess asks for a refresh token.
var offlineAccess = oauth2.SetAuthURLParam("scope", "openid profile email offline_access")

// refresh runs the refresh_token grant.
func (f *fixture) refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return f.rp.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// requireOAuthError checks that err is a token endpoint error with code.
func requireOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want OAuth error %q, got %v", code, err)
	}
	if re.ErrorCode != code {
		t.Fatalf("OAuth error = %q (%s), want %q", re.ErrorCode, re.ErrorDescription, code)
	}
}

// postForm POSTs a form with HTTP basic client authentication.
func postForm(t *testing.T, endpoint, clientID, secret string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(body)}
}
