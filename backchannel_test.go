package bff_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/bfftest"
	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
)

// postLogoutToken posts a back-channel logout request to the app.
func postLogoutToken(t *testing.T, a *app, token string) (*http.Response, string) {
	t.Helper()
	return rawPost(t, a, "/bff/backchannel", "application/x-www-form-urlencoded", url.Values{"logout_token": {token}}.Encode())
}

func rawPost(t *testing.T, a *app, path, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.url(path), strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	return doRaw(t, req)
}

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

func doRaw(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestBackchannelLogoutWithRealOP: alice is logged in twice, in two
// browsers, each with its own OP session. She logs out at the OP in the
// first browser (as from another application of the same OP): the OP's
// logout token ends that bff session at once, and only that one. Then an
// administrator logs her out everywhere with a sub-only token: the other
// session ends too. The refresh tokens of both were revoked.
func TestBackchannelLogoutWithRealOP(t *testing.T) {
	op, a := newDevOPApp(t, devOPOptions{backchannel: true})
	first, second := newBrowser(t, a), newBrowser(t, a)
	first.Login("/", "alice", "alice")
	second.Login("/", "alice", "alice")
	s1, s2 := a.sessionOf(first), a.sessionOf(second)
	if s1.SID == "" || s1.SID == s2.SID {
		t.Fatalf("sids %q and %q: want two OP sessions", s1.SID, s2.SID)
	}

	resp, _ := first.Get(op.Issuer() + "/end_session?client_id=bff-e2e")
	if resp.StatusCode >= 400 {
		t.Fatalf("end_session at the OP: %d", resp.StatusCode)
	}
	if st := op.Stats(); st.BackChannelLogoutsSent != 1 || st.BackChannelLogoutsFailed != 0 {
		t.Fatalf("back-channel deliveries: %+v", st)
	}
	// Delivery is synchronous: the session is gone by the time the OP
	// has answered the browser.
	if _, err := a.store.Get(t.Context(), s1.Key); err == nil {
		t.Fatal("the first session outlived its OP session")
	}
	if resp, _ := first.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/user in the first browser: %d, want 401", resp.StatusCode)
	}
	if resp, _ := second.User(); resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user in the second browser: %d, want 200", resp.StatusCode)
	}
	revoked := op.Stats().Revocations
	if revoked != 1 {
		t.Fatalf("%d revocations after the first logout, want 1 (its refresh token)", revoked)
	}

	if err := op.LogoutUser(t.Context(), devidp.DefaultUsers()[0].Subject); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.Get(t.Context(), s2.Key); err == nil {
		t.Fatal("a sub-only logout token left a session of the user")
	}
	if resp, _ := second.User(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/bff/user in the second browser: %d, want 401", resp.StatusCode)
	}
	if got := op.Stats().Revocations; got != 2 {
		t.Fatalf("%d revocations, want 2", got)
	}
	if !strings.Contains(a.logs.String(), `"msg":"back-channel logout"`) {
		t.Fatal("no log line for the back-channel logouts")
	}
	first.AssertNoTokenLeak(a.logs.String(), "", s1.Tokens.AccessToken, s1.Tokens.RefreshToken, s2.Tokens.RefreshToken)
}

// TestBackchannelAllSessions: with BackchannelAllSessions, a logout token
// for one OP session ends every session of that user, and no one else's.
func TestBackchannelAllSessions(t *testing.T) {
	op, a := newDevOPApp(t, devOPOptions{backchannel: true}, func(c *bff.Config) { c.OIDC.BackchannelAllSessions = true })
	one, two, bob := newBrowser(t, a), newBrowser(t, a), newBrowser(t, a)
	one.Login("/", "alice", "alice")
	two.Login("/", "alice", "alice")
	bob.Login("/", "bob", "bob")
	if err := op.EndSession(t.Context(), a.sessionOf(one).SID); err != nil {
		t.Fatal(err)
	}
	for _, br := range []*browser{one, two} {
		if resp, _ := br.User(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("alice's session after a logout with all_sessions: %d", resp.StatusCode)
		}
	}
	if resp, _ := bob.User(); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's session: %d", resp.StatusCode)
	}
}

// TestBackchannelRejections posts logout tokens that each break one rule,
// and requests that are not logout token posts: each is a 400 with
// Cache-Control: no-store and a log line, and no session ends.
func TestBackchannelRejections(t *testing.T) {
	op := bfftest.NewOP(t)
	op.ClientSecret = "a client secret long enough for HS256" // go-jose's minimum HMAC key
	_, a := newTestOPAppFor(t, op)
	br := newBrowser(t, a)
	br.Login("/", "", "")
	s := a.sessionOf(br)
	if s.SID != op.SID || s.Subject != op.Subject {
		t.Fatalf("session sid %q sub %q", s.SID, s.Subject)
	}
	_, kid := op.Key()
	valid := func() map[string]any {
		var claims map[string]any
		op.LogoutToken(func(_, c map[string]any) { claims = c })
		return claims
	}
	edit := op.LogoutToken
	hour := time.Hour

	tokens := []struct{ name, rule, token string }{
		{"bad signature", oidc.RuleSignature, bfftest.SignJWT(bfftest.OtherKey(), map[string]any{"alg": "RS256", "kid": kid, "typ": "logout+jwt"}, valid())},
		{"alg none", oidc.RuleAlgorithm, bfftest.UnsignedJWT(valid())},
		{"HS256 with the client secret", oidc.RuleAlgorithm, bfftest.HMACJWT([]byte(op.ClientSecret), valid())},
		{"wrong iss", oidc.RuleIssuer, edit(func(_, c map[string]any) { c["iss"] = "https://evil.example" })},
		{"wrong aud", oidc.RuleAudience, edit(func(_, c map[string]any) { c["aud"] = "another-client" })},
		{"expired", oidc.RuleExpiry, edit(func(_, c map[string]any) { c["exp"] = time.Now().Add(-hour).Unix() })},
		{"missing events", oidc.RuleLogoutEvent, edit(func(_, c map[string]any) { delete(c, "events") })},
		{"wrong event", oidc.RuleLogoutEvent, edit(func(_, c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		})},
		{"nonce present", oidc.RuleNonce, edit(func(_, c map[string]any) { c["nonce"] = "n" })},
		{"neither sub nor sid", oidc.RuleLogoutSubject, edit(func(_, c map[string]any) { delete(c, "sub"); delete(c, "sid") })},
		{"an ID token", oidc.RuleLogoutEvent, s.Tokens.IDToken},
	}
	logged := 0 // how much of the log earlier requests wrote
	wantRefused := func(t *testing.T, resp *http.Response, body, rule string) {
		t.Helper()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(body, `"error"`) {
			t.Fatalf("got %d, Cache-Control %q, body %s; want 400, no-store and an error document", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
		logs := a.logs.String()
		if !strings.Contains(logs[logged:], `"rule":"`+rule+`"`) {
			t.Fatalf("no log line naming the rule %q", rule)
		}
		logged = len(logs)
		if _, err := a.store.Get(t.Context(), s.Key); err != nil {
			t.Fatalf("a refused request ended the session: %v", err)
		}
	}
	for _, c := range tokens {
		t.Run(c.name, func(t *testing.T) {
			resp, body := postLogoutToken(t, a, c.token)
			wantRefused(t, resp, body, c.rule)
		})
	}
	t.Run("wrong typ in strict mode", func(t *testing.T) {
		_, strict := newTestOPAppFor(t, op, func(c *bff.Config) {
			c.OIDC.BackchannelStrictTyp = true
			c.Session.Store = a.store
			c.Keys = a.cfg.Keys
		})
		resp, body := postLogoutToken(t, strict, edit(func(h, _ map[string]any) { h["typ"] = "JWT" }))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"error"`) || !strings.Contains(strict.logs.String(), `"rule":"typ"`) {
			t.Fatalf("typ JWT in strict mode: %d %s", resp.StatusCode, body)
		}
		if _, err := a.store.Get(t.Context(), s.Key); err != nil {
			t.Fatal("the session ended")
		}
	})
	t.Run("GET instead of POST", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, a.url("/bff/backchannel?logout_token="+url.QueryEscape(edit(nil))), nil)
		resp, body := doRaw(t, req)
		wantRefused(t, resp, body, "method")
	})
	t.Run("JSON instead of a form", func(t *testing.T) {
		resp, body := rawPost(t, a, "/bff/backchannel", "application/json", `{"logout_token":"`+edit(nil)+`"}`)
		wantRefused(t, resp, body, "content_type")
	})
	t.Run("no logout_token", func(t *testing.T) {
		resp, body := rawPost(t, a, "/bff/backchannel", "application/x-www-form-urlencoded", "token=x")
		wantRefused(t, resp, body, "logout_token")
	})
	t.Run("two logout_tokens", func(t *testing.T) {
		tok := edit(nil)
		resp, body := rawPost(t, a, "/bff/backchannel", "application/x-www-form-urlencoded", url.Values{"logout_token": {tok, tok}}.Encode())
		wantRefused(t, resp, body, "logout_token")
	})

	// The valid token ends the session; its replay, once alice has logged
	// in again within the same OP session, is refused and ends nothing.
	t.Run("replayed jti", func(t *testing.T) {
		tok := edit(nil)
		resp, body := postLogoutToken(t, a, tok)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("valid logout token: %d %s", resp.StatusCode, body)
		}
		if _, err := a.store.Get(t.Context(), s.Key); err == nil {
			t.Fatal("a valid logout token left the session")
		}
		if got := op.Revoked(); len(got) != 1 || got[0] != s.Tokens.RefreshToken {
			t.Fatalf("revoked %d tokens, want the session's refresh token", len(got))
		}
		br.Login("/", "", "")
		again := a.sessionOf(br)
		resp, body = postLogoutToken(t, a, tok)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(a.logs.String(), `"rule":"jti_replay"`) {
			t.Fatalf("replayed logout token: %d %s", resp.StatusCode, body)
		}
		if _, err := a.store.Get(t.Context(), again.Key); err != nil {
			t.Fatal("a replayed logout token ended the new session")
		}
	})
}

// newTestOPAppFor starts another app for an existing bfftest OP.
func newTestOPAppFor(t *testing.T, op *bfftest.OP, edit ...func(*bff.Config)) (*bfftest.OP, *app) {
	t.Helper()
	return op, newApp(t, op.Issuer, op.ClientID, op.ClientSecret, edit...)
}

// failingDelete is a store whose first DeleteBySID fails, as in a blip of
// the store's network.
type failingDelete struct {
	session.Store
	failed atomic.Bool
}

func (f *failingDelete) DeleteBySID(ctx context.Context, iss, sid string) ([]*session.Record, error) {
	if !f.failed.Swap(true) {
		return nil, errors.New("store blip")
	}
	return f.Store.DeleteBySID(ctx, iss, sid)
}

// TestBackchannelRetryAfterAStoreFailure: when the sessions cannot be
// deleted, the answer invites a retry, and the OP's retry of the same
// token is not refused as a replay: it ends the session.
func TestBackchannelRetryAfterAStoreFailure(t *testing.T) {
	op, a := newTestOPApp(t, func(c *bff.Config) { c.Session.Store = &failingDelete{Store: c.Session.Store} })
	br := newBrowser(t, a)
	br.Login("/", "", "")
	s := a.sessionOf(br)
	tok := op.LogoutToken(nil)
	resp, body := postLogoutToken(t, a, tok)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("logout token with the store failing: %d %s", resp.StatusCode, body)
	}
	if _, err := a.store.Get(t.Context(), s.Key); err != nil {
		t.Fatal("the session is gone although the delete failed")
	}
	resp, body = postLogoutToken(t, a, tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the OP's retry: %d %s, want 200", resp.StatusCode, body)
	}
	if _, err := a.store.Get(t.Context(), s.Key); err == nil {
		t.Fatal("the retry left the session")
	}
	if resp, _ := postLogoutToken(t, a, tok); resp.StatusCode != http.StatusBadRequest {
		t.Fatal("a third post of the token was not refused as a replay")
	}
}
