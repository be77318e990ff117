package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"
)

// sessions lets an operator see and end users' sessions in the configured
// store:
//
//	bff sessions list   --config FILE --sub SUB
//	bff sessions revoke --config FILE --sub SUB   every session of the user
//	bff sessions revoke --config FILE --sid SID   the sessions of one OP session
//
// Ended sessions' refresh tokens are revoked at the OP. With a bolt store
// this works only while no bff serves the file (bolt serves one process);
// with Redis or PostgreSQL it works beside running instances, which see
// the change at their next request.
func (c *cli) sessions(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		return errors.New("sessions: want `bff sessions list --sub SUB` or `bff sessions revoke --sub SUB | --sid SID`")
	}
	verb := args[0]
	fs := c.flags("sessions " + verb)
	path := fs.String("config", lookupEnv(c.environ, "BFF_CONFIG"), "the YAML configuration `file` (or $BFF_CONFIG)")
	sub := fs.String("sub", "", "the user's subject (sub claim) at the configured OP")
	sid := fs.String("sid", "", "the OP session id (sid claim); revoke only")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sessions %s: unexpected arguments %v", verb, fs.Args())
	}
	switch {
	case verb == "list" && (*sub == "" || *sid != ""):
		return errors.New("sessions list: give --sub")
	case verb == "revoke" && (*sub == "") == (*sid == ""):
		return errors.New("sessions revoke: give --sub or --sid")
	}
	app, err := c.open(ctx, *path, false)
	if err != nil {
		return err
	}
	defer app.store.Close()
	b := app.bff

	if verb == "list" {
		list, err := b.UserSessions(ctx, *sub)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tLAST SEEN\tEXPIRES\tBROWSER\tOP SESSION")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Created.Format(time.RFC3339), s.LastSeen.Format(time.RFC3339),
				s.Expires.Format(time.RFC3339), orDash(s.UserAgent), orDash(s.SID))
		}
		tw.Flush()
		fmt.Fprintf(c.stdout, "%d session(s) of %s\n", len(list), *sub)
		return nil
	}

	var n int
	if *sub != "" {
		n, err = b.EndUserSessions(ctx, *sub)
	} else {
		n, err = b.EndOPSession(ctx, *sid)
	}
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		app.log.Warn("refresh token revocation unfinished", "error", err)
	}
	fmt.Fprintf(c.stdout, "ended %d session(s)\n", n)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
