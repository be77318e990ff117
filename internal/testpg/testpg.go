// Package testpg gives tests a PostgreSQL server to run against: the shared
// server of the machine ([URL], with a [Schema] of their own), or a private
// cluster that a test may stop and restart to see how its code weathers an
// outage ([Start]).
//
// A test of code that keeps state in PostgreSQL takes the shared server and
// a schema of its own:
//
//	func TestThing(t *testing.T) {
//		url := testpg.URL(t)             // skips if there is no server
//		schema := testpg.Schema(t, url)  // dropped when the test ends
//		s, err := pgstore.Open(t.Context(), url, pgstore.WithSchema(schema))
//		...
//	}
//
// and a test of how code weathers an outage starts a server of its own:
//
//	srv := testpg.Start(t)
//	... use srv.URL() ...
//	srv.Stop()     // connections refused from now on
//	srv.Restart()  // same port, same data
//
// Where no server is available, the helpers skip the test, saying why,
// unless the environment sets BFF_REQUIRE_SERVICES=1 (as CI does), when
// they fail it instead: a CI run must not pass by skipping.
//
// The package needs nothing but pgx and, for Start, PostgreSQL's server
// binaries (Debian's postgresql package).
package testpg

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables the package reads.
const (
	// EnvURL names the shared server; DefaultURL when unset.
	EnvURL = "BFF_TEST_POSTGRES_URL"
	// EnvRequire, set to 1, turns a skip for want of a server into a
	// failure.
	EnvRequire = "BFF_REQUIRE_SERVICES"
)

// DefaultURL is the shared server of the development and CI machines: trust
// authentication for user postgres, and a database named test.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// checkTimeout bounds the connection attempt that finds a server reachable.
const checkTimeout = 5 * time.Second

// URL returns the URL of the shared server after checking that it accepts
// connections. It skips t (or fails it, see the package documentation)
// when the server is unreachable.
//
// Tests that share the server must not step on each other: give each its own
// schema with [Schema].
func URL(t testing.TB) string {
	t.Helper()
	u := cmp.Or(os.Getenv(EnvURL), DefaultURL)
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		unavailable(t, "testpg: PostgreSQL at %s is unreachable: %v (start it, or set %s to one that runs)",
			redact(u), err, EnvURL)
	}
	conn.Close(ctx)
	return u
}

// Schema returns the name of a schema for t alone on the server at url:
// random, not yet created (the code under test may want to create it), and
// dropped with everything in it when t ends. Cleanups run last-in first-out,
// so call Schema before opening anything that uses the schema; it is then
// dropped after that was closed.
func Schema(t testing.TB, url string) string {
	t.Helper()
	name := "bfftest_" + strings.ToLower(rand.Text()[:16])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("testpg: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("testpg: drop schema %s: %v", name, err)
		}
	})
	return name
}

// unavailable skips t for want of a server, or fails it if EnvRequire is 1.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s [%s=1: required]", msg, EnvRequire)
	}
	t.Skipf("%s [skipped; %s=1 makes this a failure]", msg, EnvRequire)
}

// redact masks the password of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
