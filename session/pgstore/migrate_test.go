package pgstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gobff/bff/internal/testpg"
)

// The embedded migrations are well formed and numbered from 1.
func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].version != 1 || ms[0].name != "0001_sessions" || ms[0].sql == "" {
		t.Fatalf("first migration = %d %q (%d bytes of SQL)", ms[0].version, ms[0].name, len(ms[0].sql))
	}
}

// appliedMigrations returns the version table's rows of schema.
func appliedMigrations(t *testing.T, c *pgx.Conn, schema string) []string {
	t.Helper()
	rows, err := c.Query(t.Context(), `SELECT version || ' ' || name || ' ' || applied_at FROM `+
		pgx.Identifier{schema, versionTable}.Sanitize()+` ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// relations returns the tables and indexes in schema.
func relations(t *testing.T, c *pgx.Conn, schema string) []string {
	t.Helper()
	rows, err := c.Query(t.Context(), `SELECT c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'i') ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func schemaExists(t *testing.T, c *pgx.Conn, schema string) bool {
	t.Helper()
	var ok bool
	err := c.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// New creates a missing schema with every table and index, and records the
// migration.
func TestMigrateFresh(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	c := conn(t, url)
	mustOpen(t, url, WithSchema(schema))
	want := []string{
		"bff_jti", "bff_jti_expires_at_idx", "bff_jti_pkey",
		"bff_locks", "bff_locks_pkey",
		"bff_schema_migrations", "bff_schema_migrations_pkey",
		"bff_sessions", "bff_sessions_ends_at_idx", "bff_sessions_iss_sid_idx", "bff_sessions_iss_sub_idx", "bff_sessions_pkey",
	}
	if got := relations(t, c, schema); !slices.Equal(got, want) {
		t.Errorf("relations in the migrated schema:\n got %q\nwant %q", got, want)
	}
	applied := appliedMigrations(t, c, schema)
	if len(applied) != 1 || !strings.HasPrefix(applied[0], "1 0001_sessions ") {
		t.Errorf("applied migrations = %q, want 0001_sessions", applied)
	}
}

// A second New on an up-to-date schema changes nothing and does not even
// take the migration lock: it starts while another process holds it.
func TestMigrateNoop(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	c := conn(t, url)
	mustOpen(t, url, WithSchema(schema))
	before := appliedMigrations(t, c, schema)

	// A session-level advisory lock conflicts with the transaction-level
	// one of the same key.
	lock := strings.Replace(migrateLockSQL, "pg_advisory_xact_lock", "pg_advisory_lock", 1)
	if _, err := c.Exec(t.Context(), lock, schema); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, migrate := range []bool{true, false} {
		s, err := Open(ctx, url, WithSchema(schema), WithMigrate(migrate))
		if err != nil {
			t.Fatalf("New (migrate %v) of an up-to-date schema: %v", migrate, err)
		}
		s.Close()
	}
	if after := appliedMigrations(t, c, schema); !slices.Equal(after, before) {
		t.Fatalf("applied migrations changed from %q to %q", before, after)
	}
}

// With migrations off, New of a schema that is missing, empty or behind
// fails with ErrMigrationsPending, naming the migration, and changes
// nothing.
func TestMigrateOff(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	c := conn(t, url)
	ctx := t.Context()

	wantPending := func(what, detail string) {
		t.Helper()
		s, err := Open(ctx, url, WithSchema(schema), WithMigrate(false))
		if err == nil {
			s.Close()
			t.Fatalf("New without migrations of a %s schema succeeded", what)
		}
		if !errors.Is(err, ErrMigrationsPending) {
			t.Fatalf("New without migrations of a %s schema: %v, want ErrMigrationsPending", what, err)
		}
		for _, want := range []string{schema, detail, "0001_sessions"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("New without migrations of a %s schema: error %q does not mention %q", what, err, want)
			}
		}
		t.Logf("%s schema: %v", what, err)
	}

	wantPending("missing", "does not exist")
	if schemaExists(t, c, schema) {
		t.Fatal("New without migrations created the schema")
	}
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	wantPending("empty", "has no bff_schema_migrations table")
	if rels := relations(t, c, schema); len(rels) != 0 {
		t.Fatalf("New without migrations created %q", rels)
	}

	// Migrate, as an operator's command would, then forget the migration.
	pool := newPool(t, url)
	if err := Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, pool, WithSchema(schema), WithMigrate(false))
	if err != nil {
		t.Fatalf("New without migrations after Migrate: %v", err)
	}
	s.Close()
	if _, err := c.Exec(ctx, "DELETE FROM "+pgx.Identifier{schema, versionTable}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	wantPending("behind", "is at version 0")
}

// A schema migrated by a newer bff (a version this one does not know) is
// left alone and used: migrations only add.
func TestMigrateNewerSchema(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	c := conn(t, url)
	mustOpen(t, url, WithSchema(schema))
	_, err := c.Exec(t.Context(), "INSERT INTO "+pgx.Identifier{schema, versionTable}.Sanitize()+
		" (version, name) VALUES (99, '0099_future')")
	if err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{true, false} {
		mustOpen(t, url, WithSchema(schema), WithMigrate(migrate))
	}
}

// Instances starting together on a fresh schema all succeed, and the
// migration is applied once.
func TestMigrateConcurrent(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	pool := newPool(t, url)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := New(t.Context(), pool, WithSchema(schema))
			if err != nil {
				t.Errorf("concurrent New: %v", err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	if applied := appliedMigrations(t, conn(t, url), schema); len(applied) != 1 {
		t.Fatalf("applied migrations = %q, want one", applied)
	}
}

// Schema names are quoted, and names PostgreSQL would alter are refused.
func TestSchemaNames(t *testing.T) {
	url := testpg.URL(t)
	odd := testpg.Schema(t, url) + `_"Odd"; DROP TABLE x; --`
	c := conn(t, url)
	t.Cleanup(func() { // after the store's Close, before c's
		_, err := c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{odd}.Sanitize()+" CASCADE")
		if err != nil {
			t.Error(err)
		}
	})
	s := mustOpen(t, url, WithSchema(odd))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListBySub(t.Context(), "iss", "sub"); err != nil {
		t.Fatalf("ListBySub in schema %q: %v", odd, err)
	}
	for _, bad := range []string{"", "a\x00b", strings.Repeat("s", 64), "\xff"} {
		if err := checkSchemaName(bad); err == nil {
			t.Errorf("schema name %q accepted", bad)
		}
		if _, err := Open(t.Context(), url, WithSchema(bad)); err == nil {
			t.Errorf("Open with schema %q succeeded", bad)
		}
	}
	if err := checkSchemaName(strings.Repeat("s", 63)); err != nil {
		t.Errorf("63-byte schema name refused: %v", err)
	}
}
