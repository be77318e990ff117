package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gobff/bff"
	"github.com/gobff/bff/config"
	"github.com/gobff/bff/session/storeurl"
)

// serve runs bff from a configuration file (and BFF_* variables).
func (c *cli) serve(ctx context.Context, args []string) error {
	fs := c.flags("serve")
	path := fs.String("config", lookupEnv(c.environ, "BFF_CONFIG"), "the YAML configuration `file` (or $BFF_CONFIG); BFF_* variables override it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %v", fs.Args())
	}
	f, err := config.Load(*path, c.environ)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	log := f.Logger(c.stderr)
	store, err := storeurl.Open(ctx, f.Session.Store)
	if err != nil {
		return &config.Error{Key: "session.store", Err: err}
	}
	defer store.Close()
	cfg, err := f.BFFConfig(store, log)
	if err != nil {
		return err
	}
	if cfg.Frontend, err = f.FrontendHandler(log); err != nil {
		return err
	}
	b, err := bff.New(cfg)
	if err != nil {
		return err
	}
	// Check the OP now so a misconfiguration shows at start-up; but an OP
	// that is down only delays logins, which retry discovery themselves.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := b.Discover(dctx); err != nil {
		log.Error("the OpenID Provider cannot be used yet; logins will retry", "issuer", f.OIDC.Issuer, "error", err)
	}
	cancel()
	go b.RunMaintenance(ctx, 0)

	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return &config.Error{Key: "listen", Err: err}
	}
	log.Info("bff serving", "addr", ln.Addr().String(), "public_url", f.PublicURL, "issuer", f.OIDC.Issuer,
		"store", f.Session.Store, "redirect_uri", b.RedirectURL(), "post_logout_redirect_uri", b.PostLogoutRedirectURL())
	// The BFF is the whole handler: it routes API paths on the raw path,
	// which a ServeMux in front would clean (and redirect) first.
	return c.listenAndServe(ctx, ln, b, log)
}

func lookupEnv(environ []string, name string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}
