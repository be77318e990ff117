// Command bff is the Backend-for-Frontend server.
//
//	bff serve --config bff.yaml   run bff from a configuration file
//	bff dev [--listen ADDR]       bff with an embedded OpenID Provider, a
//	                              sample API and a sample SPA, on loopback
//	bff sessions list|revoke      see or end users' sessions in the store
//	bff keygen                    print a new key for the keys list
//	bff version                   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// cli is the process's environment, passed in so tests can run commands.
type cli struct {
	stdout, stderr io.Writer
	environ        []string
	// ready, when set, is called with the listening address once a server
	// accepts connections.
	ready func(addr net.Addr)
}

const usage = `bff: a Backend-for-Frontend for single-page applications

Usage:
  bff serve --config FILE   run bff from a YAML configuration file
  bff dev [--listen ADDR]   run bff with an embedded OpenID Provider, a sample
                            API and a sample SPA (loopback only)
  bff sessions list --config FILE --sub SUB
                            list a user's sessions in the configured store
  bff sessions revoke --config FILE --sub SUB | --sid SID
                            end a user's sessions (or one OP session's)
  bff keygen                print a new random key for the keys list
  bff version               print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}
	if err := c.run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bff:", err)
		}
		os.Exit(2)
	}
}

func (c *cli) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return c.serve(ctx, args[1:])
	case "dev":
		return c.dev(ctx, args[1:])
	case "sessions":
		return c.sessions(ctx, args[1:])
	case "keygen":
		return c.keygen(args[1:])
	case "version", "--version", "-version":
		return c.version()
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, usage)
		return nil
	default:
		fmt.Fprint(c.stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("bff "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}
