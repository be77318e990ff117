package main

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gobff/bff/devidp"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// newChromium starts a headless Chromium with a fresh profile. A missing
// Chromium fails the test rather than skipping it, unless BFF_SKIP_BROWSER
// is set: a real browser is the only judge of whether it keeps bff's
// __Host- cookies.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("BFF_SKIP_BROWSER") != "" {
			t.Skip("BFF_SKIP_BROWSER is set and there is no Chromium")
		}
		t.Fatalf("browser tests need %s (Debian package chromium; .ci/run installs it): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// TestDevInChromium drives the sample SPA of `bff dev` in headless
// Chromium over http://localhost: log in as alice with the OP's form, see
// her name, call the API through bff, check that script cannot read the
// session cookie, log in again silently in an iframe, log out, and be
// logged out by the OP over the back channel.
func TestDevInChromium(t *testing.T) {
	srv := start(t, nil, "dev", "--listen", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(srv.addr.String())
	origin := "http://localhost:" + port
	ctx := newChromium(t)

	login := chromedp.CSS("#login")
	// logInAsAlice clicks the SPA's login link, fills in the embedded OP's
	// form and waits until the SPA shows the user.
	logInAsAlice := chromedp.Steps(
		chromedp.Click(login),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "alice"),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS("#user")),
	)
	err := chromedp.Do(ctx,
		chromedp.Navigate(origin+"/"),
		chromedp.WaitVisible(login),
		logInAsAlice,
		chromedp.Click(chromedp.CSS("#call-api")),
	)
	if err != nil {
		t.Fatalf("login in Chromium: %v\nserver log:\n%s", err, srv.stderr.String())
	}
	status := text(t, ctx, "#status")
	name := text(t, ctx, "#name")
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("api-result").textContent.includes("Hello")`)); err != nil {
		t.Fatalf("waiting for the API result: %v", err)
	}
	apiResult := text(t, ctx, "#api-result")
	scriptCookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	alice := devidp.DefaultUsers()[0].Name
	if status != "You are logged in." || name != alice {
		t.Fatalf("SPA shows status %q name %q", status, name)
	}
	if !strings.HasPrefix(apiResult, "200") || !strings.Contains(apiResult, "Hello, "+alice) {
		t.Fatalf("API result %q", apiResult)
	}
	if strings.Contains(scriptCookies, "__Host-bff") {
		t.Fatalf("script can read the session cookie: %q", scriptCookies)
	}

	// Chromium kept the session cookie with every attribute bff set.
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == "__Host-bff" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("Chromium holds no session cookie; it has %d cookies", len(cookies))
	}
	if !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/" || session.Domain != "localhost" {
		t.Errorf("session cookie in Chromium: %+v", session)
	}

	// Silent login: without its bff session, the SPA finds the OP session
	// through a hidden iframe and the page's postMessage, with no form.
	if _, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "__Host-bff", URL: origin + "/"}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.CSS("#user"))); err != nil {
		t.Fatalf("silent login in Chromium: %v\nserver log:\n%s", err, srv.stderr.String())
	}
	if status := text(t, ctx, "#status"); !strings.Contains(status, "silently") {
		t.Fatalf("after silent login the SPA shows %q", status)
	}

	// Log out through the OP and back; the silent login then finds no OP
	// session either.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(login)); err != nil {
		t.Fatalf("logout in Chromium: %v", err)
	}
	status = text(t, ctx, "#status")
	if status != "You are not logged in." {
		t.Fatalf("after logout the SPA shows %q", status)
	}

	// Back-channel logout: log in again, end the OP session on the OP's
	// admin page; bff hears of it over the back channel, and the SPA is
	// logged out at its next look.
	err = chromedp.Do(ctx,
		logInAsAlice,
		chromedp.Navigate(origin+"/idp/admin"),
		chromedp.Click(chromedp.CSS(`button[value="end-session"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)),
		chromedp.Navigate(origin+"/"),
		chromedp.WaitVisible(login),
	)
	if err != nil {
		t.Fatalf("back-channel logout in Chromium: %v\nserver log:\n%s", err, srv.stderr.String())
	}
	if status := text(t, ctx, "#status"); status != "You are not logged in." {
		t.Fatalf("after the OP ended the session the SPA shows %q", status)
	}
	if !strings.Contains(srv.stderr.String(), "back-channel logout") {
		t.Fatalf("no back-channel logout in the server log:\n%s", srv.stderr.String())
	}
}

// text returns the visible text of the element selector matches.
func text(t *testing.T, ctx context.Context, selector string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("text of %s: %v", selector, err)
	}
	return s
}
