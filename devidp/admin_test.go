package devidp_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestEndOneSessionByAdministrator(t *testing.T) {
	f := newFixture(t, false, nil)
	b1, b2 := f.newBrowser(t), f.newBrowser(t)
	s1 := f.signIn(t, b1, f.alice, offlineAccess)
	s2 := f.signIn(t, b2, f.alice, offlineAccess)
	if len(f.idp.Sessions()) != 2 {
		t.Fatalf("Sessions() = %+v, want 2", f.idp.Sessions())
	}
	if err := f.idp.EndSession(t.Context(), s1.claims.SID); err != nil {
		t.Fatal(err)
	}
	sub, sid := f.verifyLogoutToken(t, f.nextLogoutToken(t))
	if sub != f.alice.Subject || sid != s1.claims.SID {
		t.Fatalf("logout token sub %q sid %q, want the first session", sub, sid)
	}
	f.requireNoSession(t, b1)
	if _, err := f.refresh(t.Context(), s2.token.RefreshToken); err != nil {
		t.Fatalf("the other session's refresh: %v", err)
	}
	if got := f.idp.Sessions(); len(got) != 1 || got[0].SID != s2.claims.SID || got[0].Username != "alice" {
		t.Fatalf("Sessions() = %+v", got)
	}
	if err := f.idp.EndSession(t.Context(), s1.claims.SID); err == nil {
		t.Fatal("ending an ended session reported no error")
	}
}

// TestLogoutUser: one logout token per client, naming the user and no sid,
// ends all of the user's sessions.
func TestLogoutUser(t *testing.T) {
	f := newFixture(t, false, nil)
	b1, b2 := f.newBrowser(t), f.newBrowser(t)
	s1 := f.signIn(t, b1, f.alice, offlineAccess)
	s2 := f.signIn(t, b2, f.alice, offlineAccess)
	bob := f.signIn(t, f.newBrowser(t), f.bob, offlineAccess)
	if err := f.idp.LogoutUser(t.Context(), f.alice.Subject); err != nil {
		t.Fatal(err)
	}
	lt, err := f.verifier.VerifyLogout(t.Context(), f.nextLogoutToken(t))
	if err != nil {
		t.Fatal(err)
	}
	if lt.Subject != f.alice.Subject || lt.SessionID != "" {
		t.Fatalf("logout token sub %q sid %q, want alice and no sid", lt.Subject, lt.SessionID)
	}
	select {
	case tok := <-f.logoutTokens:
		t.Fatalf("a second logout token: %.40s…", tok)
	default:
	}
	f.requireEnded(t, []*browser{b1, b2}, []session{s1, s2}, bob)
}

var hiddenInput = regexp.MustCompile(`name="(token|sid)" value="([^"]+)"`)

func TestAdminPage(t *testing.T) {
	f := newFixture(t, false, nil)
	b := f.newBrowser(t)
	s := f.signIn(t, b, f.alice, offlineAccess)
	admin := f.issuer + "/admin"
	p := b.get(admin)
	if p.status != http.StatusOK || !strings.Contains(p.body, "alice") || !strings.Contains(p.body, webClientID) {
		t.Fatalf("admin page: %d\n%s", p.status, p.body)
	}
	form := url.Values{"do": {"end-session"}}
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], m[2])
	}
	if form.Get("sid") != s.claims.SID || form.Get("token") == "" {
		t.Fatalf("admin form fields %v", form)
	}
	forged := url.Values{"do": {"end-session"}, "sid": {s.claims.SID}, "token": {"guessed"}}
	resp, err := http.PostForm(admin, forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(f.idp.Sessions()) != 1 {
		t.Fatalf("forged admin form: %d, sessions %d", resp.StatusCode, len(f.idp.Sessions()))
	}
	resp, err = http.PostForm(admin, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(f.idp.Sessions()) != 0 {
		t.Fatalf("admin end-session: %d, sessions %d", resp.StatusCode, len(f.idp.Sessions()))
	}
	if _, sid := f.verifyLogoutToken(t, f.nextLogoutToken(t)); sid != s.claims.SID {
		t.Fatalf("logout token for sid %q", sid)
	}
}
