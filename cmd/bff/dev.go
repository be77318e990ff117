package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/config"
	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/examples/spa"
	"github.com/gobff/bff/frontend"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
)

// devClientID is the client bff dev registers at its embedded OP.
const devClientID = "bff-dev"

// dev runs bff with an embedded OpenID Provider, a sample API and the
// sample SPA on one loopback port: everything a newcomer needs to log in
// within a minute, nothing to configure. Sessions live in memory and the
// keys are new at every start.
func (c *cli) dev(ctx context.Context, args []string) error {
	fs := c.flags("dev")
	listen := fs.String("listen", "127.0.0.1:8080", "loopback `address` to listen on")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: bff dev listens on loopback only (127.0.0.1, ::1 or localhost)", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// The browser's origin is localhost, which browsers treat as a secure
	// context: they keep the __Host- cookie, Secure flag and all, on http.
	publicURL := "http://localhost:" + port
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		publicURL = "http://[::1]:" + port
	}

	log := (&config.File{Log: config.Log{Level: *logLevel}}).Logger(c.stderr)
	secret := rand.Text()
	idp, err := devidp.New(devidp.Config{
		Issuer: publicURL + "/idp",
		Clients: []devidp.Client{{
			ID:                     devClientID,
			Secret:                 secret,
			RedirectURIs:           []string{publicURL + bff.DefaultCallbackPath},
			PostLogoutRedirectURIs: []string{publicURL + bff.DefaultSignoutCallbackPath},
			BackChannelLogoutURI:   publicURL + "/bff/backchannel",
		}},
		Logger: log.With("component", "devidp"),
	})
	if err != nil {
		return err
	}
	// The sample API listens on a loopback port of its own; only bff
	// calls it, through the /api route.
	sampleLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("sample API: %w", err)
	}
	sampleURL := "http://" + sampleLn.Addr().String()
	sampleSrv := &http.Server{Handler: newSampleAPI(idp.Issuer(), devClientID), ReadHeaderTimeout: 10 * time.Second}
	go sampleSrv.Serve(sampleLn)
	defer sampleSrv.Close()

	front, err := devFrontend(idp, []string{"/bff", "/api", bff.DefaultCallbackPath, bff.DefaultSignoutCallbackPath})
	if err != nil {
		return err
	}
	key := make([]byte, session.KeySize)
	_, _ = rand.Read(key)
	store := memstore.New()
	defer store.Close()
	b, err := bff.New(bff.Config{
		PublicURL: publicURL,
		OIDC: bff.OIDCConfig{
			Issuer:       idp.Issuer(),
			ClientID:     devClientID,
			ClientSecret: secret,
		},
		Session:  bff.SessionConfig{Store: store},
		Keys:     [][]byte{key},
		APIs:     []bff.APIConfig{{Path: "/api", Upstream: sampleURL, Token: bff.TokenUser}},
		Frontend: front,
		Logger:   log,
	})
	if err != nil {
		return err
	}
	go b.RunMaintenance(ctx, time.Minute)

	fmt.Fprintf(c.stdout, `
  bff dev is running: open %s

  demo users        alice / alice, bob / bob
  OpenID Provider   %s
  OP sessions       %s/admin (end one: bff hears of it by back-channel logout)
  sample API        %s/api/hello, proxied by bff to %s with the user's access token
                    (the browser needs its session and X-CSRF: 1)

  Sessions are in memory; press Ctrl+C to stop.

`, publicURL, idp.Issuer(), idp.Issuer(), publicURL, sampleURL)
	err = c.listenAndServe(ctx, ln, canonicalHost(publicURL, withProbes(b)), log)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	_ = b.Shutdown(sctx)
	return err
}

// devFrontend serves the embedded OP under /idp/ and the sample SPA
// everywhere else, with a strict Content-Security-Policy: the page loads
// only its own script and style and talks only to its origin.
func devFrontend(idp http.Handler, noFallback []string) (http.Handler, error) {
	spaHandler, err := frontend.FS(spa.Files, frontend.Options{NoFallback: noFallback})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", idp)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		spaHandler.ServeHTTP(w, r)
	}))
	return mux, nil
}

// canonicalHost sends a browser that came by another name of this loopback
// host (127.0.0.1 for localhost) to the public URL, since the OP knows only
// that redirect URI and cookies are per host.
func canonicalHost(publicURL string, next http.Handler) http.Handler {
	host := strings.TrimPrefix(publicURL, "http://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != host && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.Redirect(w, r, publicURL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		next.ServeHTTP(w, r)
	})
}
