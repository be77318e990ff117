package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/examples/spa"
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

	log := (&devLog{level: *logLevel}).logger(c.stderr)
	secret := rand.Text()
	idp, err := devidp.New(devidp.Config{
		Issuer: publicURL + "/idp",
		Clients: []devidp.Client{{
			ID:                     devClientID,
			Secret:                 secret,
			RedirectURIs:           []string{publicURL + bff.DefaultCallbackPath},
			PostLogoutRedirectURIs: []string{publicURL + bff.DefaultSignoutCallbackPath},
		}},
		Logger: log.With("component", "devidp"),
	})
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
		Session: bff.SessionConfig{Store: store},
		Keys:    [][]byte{key},
		Logger:  log,
	})
	if err != nil {
		return err
	}
	go b.RunMaintenance(ctx, time.Minute)

	mux := http.NewServeMux()
	mux.Handle("/idp/", idp)
	mux.Handle("/bff/", b)
	mux.Handle(bff.DefaultCallbackPath, b)
	mux.Handle(bff.DefaultSignoutCallbackPath, b)
	mux.Handle("/api/hello", b.ProtectAPI(http.HandlerFunc(sampleAPI)))
	mux.Handle("/api/", b.ProtectAPI(http.NotFoundHandler()))
	mux.Handle("/", staticSPA())

	fmt.Fprintf(c.stdout, `
  bff dev is running: open %s

  demo users        alice / alice, bob / bob
  OpenID Provider   %s
  sample API        %s/api/hello (through bff, needs the session and X-CSRF: 1)

  Sessions are in memory; press Ctrl+C to stop.

`, publicURL, idp.Issuer(), publicURL)
	return c.listenAndServe(ctx, ln, canonicalHost(publicURL, mux), log)
}

// sampleAPI is the local API of bff dev: it greets the user that bff found
// for the request.
func sampleAPI(w http.ResponseWriter, r *http.Request) {
	u, _ := bff.UserFrom(r.Context())
	claims, _ := u.Claims()
	name := claims.String("name")
	if name == "" {
		name = u.Subject
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"message": "Hello, " + name + ", from the sample API behind bff.",
		"sub":     u.Subject,
		"time":    time.Now().UTC().Format(time.RFC3339),
	})
}

// staticSPA serves the sample SPA with a strict Content-Security-Policy:
// the page loads only its own script and style and talks only to its
// origin.
func staticSPA() http.Handler {
	files := http.FileServerFS(spa.Files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if _, err := fs.Stat(spa.Files, strings.TrimPrefix(r.URL.Path, "/")); r.URL.Path != "/" && err != nil {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/" {
			h.Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
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
