package bff_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gobff/bff"
	"github.com/gobff/bff/devidp"
)

// newDevIDPApp starts the real embedded OP (zitadel's op package) on its own
// loopback server, with an issuer that has a path, and a BFF that is its
// client.
func newDevIDPApp(t *testing.T, edit ...func(*bff.Config)) (*devidp.Provider, *app) {
	t.Helper()
	op, a := newDevOPApp(t, devOPOptions{}, edit...)
	return op.Provider, a
}

// devOPOptions adjust the embedded OP of newDevOPApp.
type devOPOptions struct {
	// idp may change the OP's configuration before devidp.New.
	idp func(*devidp.Config)
	// backchannel registers the BFF's /bff/backchannel as the client's
	// back-channel logout URI.
	backchannel bool
}

// devOP is the real embedded OP on its own loopback server, which a test can
// stop and start again on the same address; the OP's state (grants,
// sessions, keys) lives on in the Provider meanwhile.
type devOP struct {
	*devidp.Provider
	t      *testing.T
	addr   string
	server *httptest.Server
}

// Stop closes the OP's server: connections to it are refused.
func (o *devOP) Stop() { o.server.Close() }

// Start serves the OP again on its address.
func (o *devOP) Start() {
	o.t.Helper()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		o.t.Fatalf("restarting the OP on %s: %v", o.addr, err)
	}
	handler := o.server.Config.Handler
	o.server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler}}
	o.server.Start()
}

// newDevOPApp is newDevIDPApp with options for the OP, and the OP's server
// under the test's control.
func newDevOPApp(t *testing.T, opts devOPOptions, edit ...func(*bff.Config)) (*devOP, *app) {
	t.Helper()
	opServer := httptest.NewUnstartedServer(nil)
	issuer := "http://" + opServer.Listener.Addr().String() + "/idp"
	a := newApp(t, issuer, "bff-e2e", "e2e-secret", edit...)
	client := devidp.Client{
		ID:                     "bff-e2e",
		Secret:                 "e2e-secret",
		RedirectURIs:           []string{a.bff.RedirectURL()},
		PostLogoutRedirectURIs: []string{a.bff.PostLogoutRedirectURL()},
	}
	if opts.backchannel {
		client.BackChannelLogoutURI = a.url("/bff/backchannel")
	}
	cfg := devidp.Config{Issuer: issuer, Clients: []devidp.Client{client}}
	if opts.idp != nil {
		opts.idp(&cfg)
	}
	idp, err := devidp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", idp)
	opServer.Config.Handler = mux
	opServer.Start()
	op := &devOP{Provider: idp, t: t, addr: opServer.Listener.Addr().String(), server: opServer}
	t.Cleanup(func() { op.server.Close() })
	return op, a
}

// TestEndToEndWithRealOP logs alice in through the login form of the real
// OP, reads her claims from /bff/user, calls a protected API, logs out
// through the OP's end-session endpoint, and checks that /bff/user is then
// 401 and that no token leaked into a response or a log line.
func TestEndToEndWithRealOP(t *testing.T) {
	idp, a := newDevIDPApp(t)
	br := newBrowser(t, a)

	resp := br.Login("/welcome", "alice", "alice")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/welcome" {
		t.Fatalf("login ended with %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	s := a.sessionOf(br)
	alice := devidp.DefaultUsers()[0]
	if s.Subject != alice.Subject || s.SID == "" || s.Tokens.RefreshToken == "" {
		t.Fatalf("session: sub %q sid %q refresh token %t", s.Subject, s.SID, s.Tokens.RefreshToken != "")
	}
	tokens := s.Tokens

	resp, body := br.User()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user: %d %s", resp.StatusCode, body)
	}
	claims := userClaims(t, body)
	if claimString(t, claims, "sub") != alice.Subject || claimString(t, claims, "name") != alice.Name ||
		claimString(t, claims, "email") != alice.Email || claimString(t, claims, "sid") != s.SID {
		t.Fatalf("/bff/user claims: %s", body)
	}
	if resp, body := br.Get(a.url("/api/me"), "X-CSRF", "1"); resp.StatusCode != http.StatusOK || !strings.Contains(body, alice.Subject) {
		t.Fatalf("protected API: %d %s", resp.StatusCode, body)
	}

	// Log out: bff → OP end_session → bff signout callback → returnUrl.
	logoutURL := claimString(t, claims, "bff:logout_url")
	resp, _ = br.Get(a.url(logoutURL + "&returnUrl=/goodbye"))
	endSession := follow(t, resp)
	if !strings.HasPrefix(endSession, idp.Issuer()+"/end_session?") {
		t.Fatalf("logout went to %s", endSession)
	}
	resp, body = br.Get(endSession)
	back := follow(t, resp)
	if !strings.HasPrefix(back, a.bff.PostLogoutRedirectURL()+"?") {
		t.Fatalf("OP sent the browser to %s (%s)", back, body)
	}
	resp, _ = br.Get(back)
	if got := resp.Header.Get("Location"); got != "/goodbye" {
		t.Fatalf("signout callback redirected to %q", got)
	}
	if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/user after logout: %d", resp.StatusCode)
	}
	if _, err := a.store.Get(context.Background(), s.Key); err == nil {
		t.Fatal("session still in the store")
	}
	if st := idp.Stats(); st.Revocations != 1 {
		t.Errorf("the OP saw %d revocations, want 1 (the refresh token)", st.Revocations)
	}
	br.AssertNoTokenLeak(a.logs.String(), idp.Issuer()+"/end_session", tokens.AccessToken, tokens.RefreshToken, tokens.IDToken)

	// The OP session ended too: a new login shows the form again.
	resp, _ = br.Get(a.url("/bff/login"))
	resp, _ = br.Get(follow(t, resp))
	for resp.StatusCode == http.StatusFound {
		resp, _ = br.Get(follow(t, resp))
	}
	if u, _ := url.Parse(resp.Request.URL.String()); !strings.HasSuffix(u.Path, "/login") {
		t.Fatalf("after logout the OP did not ask for a password: ended at %s", u.Redacted())
	}
}

func TestEndToEndWrongPasswordKeepsTheUserOut(t *testing.T) {
	_, a := newDevIDPApp(t)
	br := newBrowser(t, a)
	resp, _ := br.Get(a.url("/bff/login"))
	for resp.StatusCode == http.StatusFound {
		resp, _ = br.Get(follow(t, resp))
	}
	loginPage := resp.Request.URL
	q := loginPage.Query()
	resp, body := br.PostForm(loginPage.String(), url.Values{"username": {"alice"}, "password": {"wrong"}, "authRequestID": {q.Get("authRequestID")}})
	if resp.StatusCode == http.StatusFound || !strings.Contains(body, `name="password"`) {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if r, _ := br.User(); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/user: %d", r.StatusCode)
	}
}

func TestEndToEndTwoUsers(t *testing.T) {
	_, a := newDevIDPApp(t)
	alice, bob := newBrowser(t, a), newBrowser(t, a)
	alice.Login("/", "alice", "alice")
	bob.Login("/", "bob", "bob")
	_, aliceBody := alice.User()
	_, bobBody := bob.User()
	if claimString(t, userClaims(t, aliceBody), "sub") != devidp.DefaultUsers()[0].Subject ||
		claimString(t, userClaims(t, bobBody), "sub") != devidp.DefaultUsers()[1].Subject {
		t.Fatalf("alice sees %s, bob sees %s", aliceBody, bobBody)
	}
}

// silentLogin runs /bff/silent-login as a hidden iframe would, following
// the redirects through the OP, and returns bff's answer at the callback.
func silentLogin(t *testing.T, br *browser) (*http.Response, string) {
	t.Helper()
	resp, body := br.Get(br.app.url("/bff/silent-login"), "Sec-Fetch-Dest", "iframe")
	for range 8 {
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return resp, body
		}
		resp, body = br.Navigate(follow(t, resp))
	}
	t.Fatal("silent login did not end in 8 steps")
	return nil, ""
}

// TestSilentLoginWithRealOP: without a session at the OP, silent login
// reports isLoggedIn false and starts no session; with one, it reports true
// and starts a bff session without any form.
func TestSilentLoginWithRealOP(t *testing.T) {
	op, a := newDevOPApp(t, devOPOptions{})
	br := newBrowser(t, a)
	resp, body := silentLogin(t, br)
	checkSilentPage(t, a, resp, body, false)
	if br.SessionCookie() != "" {
		t.Fatal("a failed silent login set a session cookie")
	}

	br.Login("/", "alice", "alice")
	logins := op.Stats().Logins
	br.SetCookie("__Host-bff", "") // the bff session is gone; the OP's is not
	if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/user without the session cookie: %d", resp.StatusCode)
	}
	resp, body = silentLogin(t, br)
	checkSilentPage(t, a, resp, body, true)
	if resp, _ := br.User(); resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user after silent login: %d", resp.StatusCode)
	}
	if op.Stats().Logins != logins {
		t.Fatal("silent login showed the login form")
	}
}
