package testpg_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gobff/bff/internal/testpg"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func schemaExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// Schema names are fresh for every call, and each is dropped, with what it
// holds, when its test ends.
func TestSchema(t *testing.T) {
	url := testpg.URL(t)
	conn := connect(t, url)
	var name string
	t.Run("inner", func(t *testing.T) {
		name = testpg.Schema(t, url)
		if other := testpg.Schema(t, url); other == name {
			t.Fatalf("two calls of Schema returned %q", name)
		}
		if schemaExists(t, conn, name) {
			t.Fatalf("schema %s exists before the test created it", name)
		}
		_, err := conn.Exec(t.Context(), "CREATE SCHEMA "+name+"; CREATE TABLE "+name+".t (x int)")
		if err != nil {
			t.Fatal(err)
		}
	})
	if schemaExists(t, conn, name) {
		t.Fatalf("schema %s still exists after its test ended", name)
	}
}

// A private server keeps its data and its port across Stop, Crash and
// Restart, and refuses connections while stopped.
func TestServer(t *testing.T) {
	srv := testpg.Start(t)
	url := srv.URL()
	conn := connect(t, url)
	ctx := t.Context()
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
		t.Fatalf("fsync = %q, %v; want on", fsync, err)
	}
	conn.Close(ctx)

	srv.Stop()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if c, err := pgx.Connect(cctx, url); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	srv.Restart()
	if srv.URL() != url {
		t.Fatalf("URL after Restart = %s, want %s", srv.URL(), url)
	}
	conn = connect(t, url)
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	srv.Crash()
	srv.Restart()
	conn = connect(t, url)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows after Stop, Crash and Restarts = %d, %v; want 2", n, err)
	}
}
