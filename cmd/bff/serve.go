package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff"
	"github.com/gobff/bff/config"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/boltstore"
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
	app, err := c.open(ctx, *path, true)
	if err != nil {
		return err
	}
	defer app.store.Close()
	f, b, log := app.file, app.bff, app.log
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
		"store", storeurl.Redact(f.Session.Store), "redirect_uri", b.RedirectURL(), "post_logout_redirect_uri", b.PostLogoutRedirectURL(),
		"backchannel_logout_uri", b.BackchannelLogoutURL())
	// The BFF is the whole handler: it routes API paths on the raw path,
	// which a ServeMux in front would clean (and redirect) first.
	err = c.listenAndServe(ctx, ln, withProbes(b), log)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if serr := b.Shutdown(sctx); serr != nil {
		log.Warn("stopping with work unfinished", "error", serr)
	}
	return err
}

// opened is a BFF built from the configuration, with what it was built of.
type opened struct {
	file  *config.File
	store session.Store
	log   *slog.Logger
	bff   *bff.BFF
}

// open loads the configuration at path (and the BFF_* variables), opens the
// session store and builds the BFF with its frontend when withFrontend. The
// caller closes the store.
func (c *cli) open(ctx context.Context, path string, withFrontend bool) (*opened, error) {
	f, err := config.Load(path, c.environ)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	log := f.Logger(c.stderr)
	// go-redis logs through a process-wide logger of its own; this is the
	// process.
	redis.SetLogger(redisLog{log})
	store, err := storeurl.Open(ctx, f.Session.Store)
	if err != nil {
		if errors.Is(err, boltstore.ErrLocked) {
			err = fmt.Errorf("%w (a running bff holds the file; bolt serves one process: stop it, or use a Redis or PostgreSQL store)", err)
		}
		return nil, &config.Error{Key: "session.store", Err: err}
	}
	cfg, err := f.BFFConfig(store, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	if withFrontend {
		if cfg.Frontend, err = f.FrontendHandler(log); err != nil {
			store.Close()
			return nil, err
		}
	}
	b, err := bff.New(cfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	return &opened{file: f, store: store, log: log, bff: b}, nil
}

func lookupEnv(environ []string, name string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}
