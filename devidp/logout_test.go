package devidp_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gobff/bff/devidp"
)

// endSessionURL builds an RP-initiated logout request.
func (f *fixture) endSessionURL(params url.Values) string {
	return f.endpoints.EndSessionEndpoint + "?" + params.Encode()
}

// nextLogoutToken returns the next logout token the back-channel receiver
// got. Delivery happens before end_session answers, so it is already there;
// the timeout only keeps a broken test from hanging.
func (f *fixture) nextLogoutToken(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-f.logoutTokens:
		return tok
	case <-time.After(5 * time.Second):
		t.Fatal("no logout token delivered")
		return ""
	}
}

// requireNoSession checks that b has no usable OP session any more.
func (f *fixture) requireNoSession(t *testing.T, b *browser) {
	t.Helper()
	a := f.newAuthRequest(oauth2.SetAuthURLParam("prompt", "none"))
	if q := a.callback(t, b.get(a.url)); q.Get("error") != "login_required" {
		t.Fatalf("OP session still usable: %v", q)
	}
}

// requireEnded checks that the browsers have no OP session and the
// sessions' refresh tokens are dead, while alive's still works.
func (f *fixture) requireEnded(t *testing.T, browsers []*browser, ended []session, alive session) {
	t.Helper()
	for _, b := range browsers {
		f.requireNoSession(t, b)
	}
	for _, s := range ended {
		_, err := f.refresh(t.Context(), s.token.RefreshToken)
		requireOAuthError(t, err, "invalid_grant")
	}
	if _, err := f.refresh(t.Context(), alive.token.RefreshToken); err != nil {
		t.Fatalf("the other user's refresh: %v", err)
	}
}

// verifyLogoutToken checks a logout token against OpenID Connect
// Back-Channel Logout 1.0, section 2.4, and returns its sub and sid.
func (f *fixture) verifyLogoutToken(t *testing.T, raw string) (sub, sid string) {
	t.Helper()
	lt, err := f.verifier.VerifyLogout(t.Context(), raw)
	if err != nil {
		t.Fatalf("VerifyLogout: %v", err)
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", typ)
	}
	var claims map[string]any
	if err := lt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("logout token has a nonce")
	}
	events, _ := claims["events"].(map[string]any)
	if ev, ok := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok || len(ev) != 0 {
		t.Errorf("events = %v", claims["events"])
	}
	for _, c := range []string{"iss", "aud", "iat", "exp", "jti", "sub", "sid"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("logout token lacks %s", c)
		}
	}
	if lt.Issuer != f.issuer || len(lt.Audience) != 1 || lt.Audience[0] != webClientID {
		t.Errorf("iss %q aud %v", lt.Issuer, lt.Audience)
	}
	if d := lt.Expiry.Sub(lt.IssuedAt); d <= 0 || d > 2*time.Minute {
		t.Errorf("logout token lifetime %v, want about 2m", d)
	}
	return lt.Subject, lt.SessionID
}

func TestEndSessionWithRegisteredRedirect(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	s := f.signIn(t, b, f.alice, offlineAccess)

	p := b.get(f.endSessionURL(url.Values{
		"id_token_hint":            {s.rawID},
		"post_logout_redirect_uri": {rpPostLogout},
		"state":                    {"bye & thanks"},
	}))
	if p.status != http.StatusFound {
		t.Fatalf("end_session: status %d:\n%s", p.status, p.body)
	}
	want := rpPostLogout + "?" + url.Values{"state": {"bye & thanks"}}.Encode()
	if p.location != want {
		t.Fatalf("redirected to %q, want %q", p.location, want)
	}

	sub, sid := f.verifyLogoutToken(t, f.nextLogoutToken(t))
	if sub != f.alice.Subject || sid != s.claims.SID {
		t.Errorf("logout token sub %q sid %q, want %q %q", sub, sid, f.alice.Subject, s.claims.SID)
	}
	if st := f.idp.Stats(); st.BackChannelLogoutsSent != 1 || st.BackChannelLogoutsFailed != 0 {
		t.Errorf("stats = %+v", st)
	}

	f.requireNoSession(t, b)
	_, err := f.refresh(t.Context(), s.token.RefreshToken)
	requireOAuthError(t, err, "invalid_grant")
	if _, err := f.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(s.token)); err == nil {
		t.Error("userinfo accepts an access token of the ended session")
	}
}

func TestEndSessionWithUnregisteredRedirect(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	s := f.signIn(t, b, f.alice)

	evil := "http://127.0.0.1:9/elsewhere"
	p := b.get(f.endSessionURL(url.Values{
		"id_token_hint":            {s.rawID},
		"post_logout_redirect_uri": {evil},
		"state":                    {"s"},
	}))
	// The browser followed the redirect to the provider's own signed-out page.
	if p.status != http.StatusOK || !strings.Contains(p.body, "Signed out") || !strings.Contains(p.body, "not registered") {
		t.Fatalf("want the signed-out page, got %d (location %q):\n%s", p.status, p.location, p.body)
	}
	if strings.Contains(p.location, evil) {
		t.Fatalf("redirected to the unregistered %q", p.location)
	}
	// The session ended all the same.
	f.nextLogoutToken(t)
	f.requireNoSession(t, b)
}

func TestEndSessionWithoutHintUsesTheCookie(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	s := f.signIn(t, b, f.bob)

	// No id_token_hint: the client is unknown, so no redirect to the RP.
	p := b.get(f.endSessionURL(url.Values{"post_logout_redirect_uri": {rpPostLogout}}))
	if p.status != http.StatusOK || !strings.Contains(p.body, "Signed out") {
		t.Fatalf("want the signed-out page, got %d:\n%s", p.status, p.body)
	}
	sub, sid := f.verifyLogoutToken(t, f.nextLogoutToken(t))
	if sub != f.bob.Subject || sid != s.claims.SID {
		t.Errorf("logout token sub %q sid %q", sub, sid)
	}
	f.requireNoSession(t, b)

	// With client_id instead of a hint, the registered URI is honoured.
	f.signIn(t, b, f.bob)
	p = b.get(f.endSessionURL(url.Values{
		"client_id":                {webClientID},
		"post_logout_redirect_uri": {rpPostLogout},
	}))
	if p.status != http.StatusFound || p.location != rpPostLogout {
		t.Fatalf("want a redirect to %q, got %d %q", rpPostLogout, p.status, p.location)
	}
	f.nextLogoutToken(t)
	f.requireNoSession(t, b)
}

func TestEndSessionsByAdministrator(t *testing.T) {
	f := newFixture(t, false, nil)
	b1, b2 := f.newBrowser(t), f.newBrowser(t)
	s1 := f.signIn(t, b1, f.alice, offlineAccess)
	s2 := f.signIn(t, b2, f.alice, offlineAccess)
	bob := f.signIn(t, f.newBrowser(t), f.bob, offlineAccess)
	if s1.claims.SID == s2.claims.SID {
		t.Fatal("two browsers share an OP session")
	}

	if err := f.idp.EndSessions(t.Context(), f.alice.Subject); err != nil {
		t.Fatalf("EndSessions: %v", err)
	}
	sids := map[string]bool{}
	for range 2 {
		sub, sid := f.verifyLogoutToken(t, f.nextLogoutToken(t))
		if sub != f.alice.Subject {
			t.Errorf("logout token for %q", sub)
		}
		sids[sid] = true
	}
	if !sids[s1.claims.SID] || !sids[s2.claims.SID] {
		t.Errorf("logout tokens for sids %v, want %q and %q", sids, s1.claims.SID, s2.claims.SID)
	}
	f.requireEnded(t, []*browser{b1, b2}, []session{s1, s2}, bob)
	if st := f.idp.Stats(); st.BackChannelLogoutsSent != 2 {
		t.Errorf("BackChannelLogoutsSent = %d, want 2", st.BackChannelLogoutsSent)
	}
}

func TestBackChannelFailureIsReported(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(refusing.Close)
	f := newFixture(t, false, func(c *devidp.Config) {
		c.Clients[0].BackChannelLogoutURI = refusing.URL
	})
	b := f.newBrowser(t)
	f.signIn(t, b, f.alice)

	// EndSessions reports the failure; the session ends all the same.
	if err := f.idp.EndSessions(t.Context(), f.alice.Subject); err == nil {
		t.Fatal("EndSessions reported no error for a refusing receiver")
	}
	f.requireNoSession(t, b)
	if st := f.idp.Stats(); st.BackChannelLogoutsFailed != 1 || st.BackChannelLogoutsSent != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSignedOutPage(t *testing.T) {
	f := newFixture(t, false, nil)
	p := f.newBrowser(t).get(f.issuer + "/logged-out")
	if p.status != http.StatusOK || !strings.Contains(p.body, "Signed out") || strings.Contains(p.body, "not registered") {
		t.Fatalf("signed-out page: %d:\n%s", p.status, p.body)
	}
}
