package bff_test

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gobff/bff"
)

const (
	firefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	chromeWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
	safariIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
)

func listSessions(t *testing.T, br *browser) []bff.SessionInfo {
	t.Helper()
	resp, body := br.Get(br.app.url("/bff/sessions"), "X-CSRF", "1")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("/bff/sessions: %d %s", resp.StatusCode, body)
	}
	var list []bff.SessionInfo
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

func revokeSessions(t *testing.T, br *browser, body string) (int, string) {
	t.Helper()
	resp, out := br.Post(br.app.url("/bff/sessions/revoke"), "application/json", body, "X-CSRF", "1")
	return resp.StatusCode, out
}

// TestSessionsListAndRevoke: alice has three sessions and bob one. Alice
// sees her three, the current one marked, with their browsers and no value
// that could stand in for a cookie or a store key; she ends one by its id,
// cannot end bob's, ends all her others, and finally her current one.
func TestSessionsListAndRevoke(t *testing.T) {
	op, a := newDevOPApp(t, devOPOptions{})
	alice := map[string]*browser{}
	for _, ua := range []string{firefoxLinux, chromeWindows, safariIPhone} {
		br := newBrowser(t, a)
		br.UserAgent = ua
		br.Login("/", "alice", "alice")
		alice[ua] = br
	}
	bob := newBrowser(t, a)
	bob.Login("/", "bob", "bob")
	cur := alice[firefoxLinux]

	if resp, _ := cur.Get(a.url("/bff/sessions")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/sessions without X-CSRF: %d, want 401", resp.StatusCode)
	}
	if resp, _ := newBrowser(t, a).Get(a.url("/bff/sessions"), "X-CSRF", "1"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/sessions without a session: %d, want 401", resp.StatusCode)
	}

	list := listSessions(t, cur)
	if len(list) != 3 {
		t.Fatalf("alice sees %d sessions, want 3: %+v", len(list), list)
	}
	byAgent := map[string]bff.SessionInfo{}
	currents := 0
	for _, s := range list {
		byAgent[s.UserAgent] = s
		if s.Current {
			currents++
		}
		if s.Created.IsZero() || s.LastSeen.Before(s.Created) || !s.Expires.After(s.LastSeen) {
			t.Fatalf("times of %+v", s)
		}
	}
	if currents != 1 || !byAgent["Firefox on Linux"].Current || byAgent["Chrome on Windows"].ID == "" || byAgent["Safari on iOS"].ID == "" {
		t.Fatalf("sessions: %+v", list)
	}
	_, body := cur.Get(a.url("/bff/sessions"), "X-CSRF", "1")
	for _, br := range alice {
		s := a.sessionOf(br)
		for _, secret := range []string{br.SessionCookie(), hex.EncodeToString(s.Key[:]), s.Key.String(), s.SID, s.LogoutID} {
			if strings.Contains(body, secret) {
				t.Fatalf("/bff/sessions shows a replayable value or the OP's sid: %s", body)
			}
		}
	}

	// Another user's session cannot be ended, even knowing its id.
	bobID := a.sessionOf(bob).Key.Handle()
	if code, out := revokeSessions(t, cur, `{"id":"`+bobID+`"}`); code != http.StatusNotFound {
		t.Fatalf("revoking bob's session: %d %s, want 404", code, out)
	}
	if resp, _ := bob.User(); resp.StatusCode != http.StatusOK {
		t.Fatal("bob's session ended")
	}

	revokedBefore := op.Stats().Revocations
	chrome := alice[chromeWindows]
	if code, out := revokeSessions(t, cur, `{"id":"`+byAgent["Chrome on Windows"].ID+`"}`); code != http.StatusOK || !strings.Contains(out, `"ended":1`) {
		t.Fatalf("revoking one session: %d %s", code, out)
	}
	if resp, _ := chrome.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked session: %d, want 401", resp.StatusCode)
	}
	if got := op.Stats().Revocations; got != revokedBefore+1 {
		t.Fatalf("%d revocations at the OP, want %d", got, revokedBefore+1)
	}
	if len(listSessions(t, cur)) != 2 {
		t.Fatal("the list still shows the revoked session")
	}

	if code, out := revokeSessions(t, cur, `{"others":true}`); code != http.StatusOK || !strings.Contains(out, `"ended":1`) {
		t.Fatalf("revoking the others: %d %s", code, out)
	}
	if resp, _ := alice[safariIPhone].User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatal("an other session survived")
	}
	if list := listSessions(t, cur); len(list) != 1 || !list[0].Current {
		t.Fatalf("after revoking the others: %+v", list)
	}
	if resp, _ := bob.User(); resp.StatusCode != http.StatusOK {
		t.Fatal("bob's session ended with alice's others")
	}

	// Ending the current session logs this browser out.
	if code, _ := revokeSessions(t, cur, `{"id":"`+a.sessionOf(cur).Key.Handle()+`"}`); code != http.StatusOK {
		t.Fatalf("revoking the current session: %d", code)
	}
	if cur.SessionCookie() != "" {
		t.Fatal("the current session's cookie was not cleared")
	}
	if resp, _ := cur.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatal("the current session survived")
	}
}

func TestSessionsRevokeRefusals(t *testing.T) {
	_, a := newDevOPApp(t, devOPOptions{})
	br := newBrowser(t, a)
	br.Login("/", "alice", "alice")
	for _, c := range []struct {
		name, contentType, body string
		header                  []string
		want                    int
	}{
		{"no X-CSRF", "application/json", `{"others":true}`, nil, http.StatusUnauthorized},
		{"a form", "application/x-www-form-urlencoded", `others=true`, []string{"X-CSRF", "1"}, http.StatusBadRequest},
		{"both", "application/json", `{"id":"x","others":true}`, []string{"X-CSRF", "1"}, http.StatusBadRequest},
		{"neither", "application/json", `{}`, []string{"X-CSRF", "1"}, http.StatusBadRequest},
		{"unknown field", "application/json", `{"others":true,"all":true}`, []string{"X-CSRF", "1"}, http.StatusBadRequest},
		{"trailing data", "application/json", `{"others":true}{}`, []string{"X-CSRF", "1"}, http.StatusBadRequest},
		{"unknown id", "application/json", `{"id":"nope"}`, []string{"X-CSRF", "1"}, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := br.Post(a.url("/bff/sessions/revoke"), c.contentType, c.body, c.header...)
			if resp.StatusCode != c.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, c.want)
			}
			if r, _ := br.User(); r.StatusCode != http.StatusOK {
				t.Fatal("a refused revocation ended the session")
			}
		})
	}
	if resp, _ := br.Get(a.url("/bff/sessions/revoke?others=true"), "X-CSRF", "1"); resp.StatusCode < 400 {
		t.Fatalf("GET /bff/sessions/revoke: %d", resp.StatusCode)
	}
}
