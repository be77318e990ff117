package devidp_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestCodeFlowWithPKCE(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	s := f.signIn(t, b, f.alice)

	c := s.claims
	if c.Sub != f.alice.Subject {
		t.Errorf("sub = %q, want %q", c.Sub, f.alice.Subject)
	}
	if c.SID == "" {
		t.Error("ID token has no sid")
	}
	if c.AZP != webClientID {
		t.Errorf("azp = %q, want %q", c.AZP, webClientID)
	}
	if c.AuthTime == 0 || c.AtHash == "" {
		t.Errorf("auth_time %d / at_hash %q missing", c.AuthTime, c.AtHash)
	}
	if c.Name != f.alice.Name || c.GivenName != f.alice.GivenName || c.FamilyName != f.alice.FamilyName ||
		c.PreferredUsername != f.alice.Username {
		t.Errorf("profile claims %+v do not match %+v", c, f.alice)
	}
	if c.Email != f.alice.Email || c.EmailVerified == nil || !*c.EmailVerified {
		t.Errorf("email claims %q / %v do not match %+v", c.Email, c.EmailVerified, f.alice)
	}
	if !slices.Equal(s.idToken.Audience, []string{webClientID}) {
		t.Errorf("ID token aud = %v", s.idToken.Audience)
	}
	if s.token.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}

	// The access token is a JWT for the client, verifiable with the JWKS.
	at, err := f.provider.Verifier(&oidc.Config{ClientID: webClientID}).Verify(t.Context(), s.token.AccessToken)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	var atClaims struct {
		Sub      string `json:"sub"`
		Scope    string `json:"scope"`
		ClientID string `json:"client_id"`
	}
	if err := at.Claims(&atClaims); err != nil {
		t.Fatal(err)
	}
	if atClaims.Sub != f.alice.Subject || atClaims.ClientID != webClientID || atClaims.Scope != "openid profile email" {
		t.Errorf("access token claims %+v", atClaims)
	}

	// Userinfo tells the same.
	info, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(s.token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var infoClaims idClaims
	if err := info.Claims(&infoClaims); err != nil {
		t.Fatal(err)
	}
	if info.Subject != c.Sub || info.Email != f.alice.Email || !info.EmailVerified || infoClaims.Name != f.alice.Name {
		t.Errorf("userinfo %+v / %+v does not match the ID token %+v", info, infoClaims, c)
	}

	st := f.idp.Stats()
	if st.Logins != 1 || st.AuthCodeGrants != 1 || st.RefreshGrants != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCodeCanBeRedeemedOnce(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	a := f.newAuthRequest()
	code := a.code(t, b.submitLogin(b.get(a.url), f.alice.Username, f.alice.Password))
	f.exchange(t, a, code)
	_, err := f.rp.Exchange(t.Context(), code, oauth2.VerifierOption(a.verifier))
	requireOAuthError(t, err, "invalid_grant")
}

func TestClientSecretPost(t *testing.T) {
	f := newFixture(t, false, nil)
	f.rp.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	s := f.signIn(t, f.newBrowser(t), f.bob, offlineAccess)
	if s.claims.Sub != f.bob.Subject {
		t.Fatalf("sub = %q, want %q", s.claims.Sub, f.bob.Subject)
	}
	if s.claims.EmailVerified == nil || *s.claims.EmailVerified {
		t.Errorf("email_verified = %v, want false for bob", s.claims.EmailVerified)
	}
	if _, err := f.refresh(t.Context(), s.token.RefreshToken); err != nil {
		t.Fatalf("refresh with client_secret_post: %v", err)
	}
}

func TestWrongClientSecret(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	a := f.newAuthRequest()
	code := a.code(t, b.submitLogin(b.get(a.url), f.alice.Username, f.alice.Password))
	f.rp.ClientSecret = "wrong"
	_, err := f.rp.Exchange(t.Context(), code, oauth2.VerifierOption(a.verifier))
	requireOAuthError(t, err, "invalid_client")
}

func TestWrongPasswordShowsTheFormAgain(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	a := f.newAuthRequest()
	form := b.get(a.url)
	if form.status != http.StatusOK || !isLoginForm(form) {
		t.Fatalf("want the login form, got %d:\n%s", form.status, form.body)
	}

	again := b.submitLogin(form, "alice", "not-alice")
	if again.status != http.StatusUnauthorized || !isLoginForm(again) {
		t.Fatalf("want the form again with 401, got %d:\n%s", again.status, again.body)
	}
	if !strings.Contains(again.body, "Invalid username or password") {
		t.Error("the form shows no error")
	}
	if authReqIDRE.FindStringSubmatch(again.body)[1] != authReqIDRE.FindStringSubmatch(form.body)[1] {
		t.Error("the form lost its auth request id")
	}

	// What the user typed is escaped.
	evil := b.submitLogin(again, `"><script>alert(1)</script>`, "x")
	if strings.Contains(evil.body, "<script>alert(1)") || !strings.Contains(evil.body, "&lt;script&gt;") {
		t.Fatalf("username not escaped:\n%s", evil.body)
	}

	// The right password still works for the same request.
	s := f.exchange(t, a, a.code(t, b.submitLogin(evil, f.alice.Username, f.alice.Password)))
	if s.claims.Sub != f.alice.Subject {
		t.Fatalf("sub = %q", s.claims.Sub)
	}
	if st := f.idp.Stats(); st.Logins != 1 {
		t.Errorf("Logins = %d, want 1", st.Logins)
	}
}

func TestUnknownAuthRequestAtTheLoginForm(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	p := b.get(f.issuer + "/login?authRequestID=nope")
	if p.status != http.StatusBadRequest || isLoginForm(p) {
		t.Fatalf("status = %d, want 400 without a form", p.status)
	}
	p = b.submitLogin(page{status: http.StatusOK, body: `<form method="post" action="/idp/login">` +
		`<input type="hidden" name="authRequestID" value="nope"> name="username" name="password"`}, "alice", "alice")
	if p.status != http.StatusBadRequest {
		t.Fatalf("POST for an unknown request: status = %d, want 400", p.status)
	}
}

func TestPKCEWrongVerifierFails(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	a := f.newAuthRequest()
	code := a.code(t, b.submitLogin(b.get(a.url), f.alice.Username, f.alice.Password))
	_, err := f.rp.Exchange(t.Context(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	requireOAuthError(t, err, "invalid_grant")
}

func TestPKCEPlainIsRefused(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	state := "plain-state"
	p := b.get(f.rp.AuthCodeURL(state,
		oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	q := authRequest{state: state}.callback(t, p)
	if q.Get("error") != "invalid_request" {
		t.Fatalf("error = %q, want invalid_request", q.Get("error"))
	}
}

func TestPromptNone(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)

	// Without an OP session: login_required at the redirect URI, with state.
	a := f.newAuthRequest(oauth2.SetAuthURLParam("prompt", "none"))
	q := a.callback(t, b.get(a.url))
	if q.Get("error") != "login_required" || q.Get("code") != "" {
		t.Fatalf("want error=login_required, got %v", q)
	}

	first := f.signIn(t, b, f.alice)

	// With the OP session: a code without the form, in the same session.
	a = f.newAuthRequest(oauth2.SetAuthURLParam("prompt", "none"))
	s := f.exchange(t, a, a.code(t, b.get(a.url)))
	if s.claims.Sub != f.alice.Subject || s.claims.SID != first.claims.SID {
		t.Fatalf("silent sign-in gave sub %q sid %q, want %q %q", s.claims.Sub, s.claims.SID, f.alice.Subject, first.claims.SID)
	}
	if s.claims.AuthTime != first.claims.AuthTime {
		t.Errorf("auth_time changed from %d to %d without a login", first.claims.AuthTime, s.claims.AuthTime)
	}

	// Without prompt, the OP session signs in silently too (SSO).
	a = f.newAuthRequest()
	f.exchange(t, a, a.code(t, b.get(a.url)))

	// Another browser has no session.
	a = f.newAuthRequest(oauth2.SetAuthURLParam("prompt", "none"))
	if q := a.callback(t, f.newBrowser(t).get(a.url)); q.Get("error") != "login_required" {
		t.Fatalf("other browser: want login_required, got %v", q)
	}

	if st := f.idp.Stats(); st.Logins != 1 || st.AuthCodeGrants != 3 {
		t.Errorf("stats = %+v, want 1 login and 3 code grants", st)
	}
}

func TestPromptLoginForcesTheForm(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	first := f.signIn(t, b, f.alice, offlineAccess)

	a := f.newAuthRequest(oauth2.SetAuthURLParam("prompt", "login"))
	form := b.get(a.url)
	if !isLoginForm(form) {
		t.Fatalf("prompt=login: want the form, got %d:\n%s", form.status, form.body)
	}
	s := f.exchange(t, a, a.code(t, b.submitLogin(form, f.alice.Username, f.alice.Password)))
	if s.claims.SID != first.claims.SID {
		t.Errorf("re-authenticating the same user changed the sid from %q to %q", first.claims.SID, s.claims.SID)
	}

	// Signing in as someone else replaces the session.
	a = f.newAuthRequest(oauth2.SetAuthURLParam("prompt", "login"))
	s = f.exchange(t, a, a.code(t, b.submitLogin(b.get(a.url), f.bob.Username, f.bob.Password)))
	if s.claims.Sub != f.bob.Subject || s.claims.SID == first.claims.SID {
		t.Errorf("switching user gave sub %q sid %q", s.claims.Sub, s.claims.SID)
	}
	_, err := f.refresh(t.Context(), first.token.RefreshToken)
	requireOAuthError(t, err, "invalid_grant")
	if st := f.idp.Stats(); st.Logins != 3 {
		t.Errorf("Logins = %d, want 3", st.Logins)
	}
}

func TestMaxAgeZeroForcesTheForm(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	f.signIn(t, b, f.alice)
	a := f.newAuthRequest(oauth2.SetAuthURLParam("max_age", "0"))
	if p := b.get(a.url); !isLoginForm(p) {
		t.Fatalf("max_age=0: want the form, got %d", p.status)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	a := f.newAuthRequest()
	form := b.get(a.url)
	action := formActionRE.FindStringSubmatch(form.body)
	id := authReqIDRE.FindStringSubmatch(form.body)
	if action == nil || id == nil {
		t.Fatalf("no login form:\n%s", form.body)
	}
	body := "authRequestID=" + id[1] + "&username=alice&password=alice"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.origin+action[1], strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), f.issuer+"/authorize/callback?") {
		t.Fatalf("login answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("want one cookie, got %v", cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != issuerPathPart || c.Secure || c.MaxAge <= 0 {
		t.Fatalf("cookie attributes: %s", c.String())
	}
}
