package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema's migrations, migrations/NNNN_name.sql,
// applied in the order of their number. A released migration never changes;
// a change to the schema is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrMigrationsPending is returned by [New] and [Open] with migrations turned
// off ([WithMigrate] false, or bff_migrate=false) when the schema lacks
// migrations this version of the store needs. Apply them with [Migrate].
var ErrMigrationsPending = errors.New("pgstore: schema needs migrations")

// versionTable records the migrations applied to a schema. It is kept by the
// code below rather than by a migration, because it is how migrations are
// found to be due.
const versionTable = "bff_schema_migrations"

// migrateLockSQL serializes migrations of one schema across every process
// connected to the database. The lock is a transaction-level advisory lock,
// so it is released by the commit or rollback, and a process that dies
// mid-migration cannot leave it held. Its key is a hash of the schema name:
// migrations of different schemas proceed in parallel, and a collision only
// makes one wait for the other.
const migrateLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('github.com/gobff/bff/session/pgstore migrate ' || $1::text, 0))`

// migration is one file of migrations/.
type migration struct {
	version int
	name    string // the file name without .sql, as in error messages
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations returns the embedded migrations in order. Versions must run
// 1, 2, 3, ... without gaps, so that a schema's version says exactly which
// migrations it has.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("pgstore: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("pgstore: migrations: file name %q is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("pgstore: migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: e.Name()[:len(e.Name())-len(".sql")], sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("pgstore: migrations: %s has version %d, want %d", m.name, m.version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("pgstore: migrations: none embedded")
	}
	return ms, nil
}

// Migrate brings the store's tables in schema up to date, creating the
// schema if it is missing. [New] calls it unless told not to; operators who
// apply schema changes themselves, with a more privileged role than bff's
// own, call it (through a bff command) before starting bff with migrations
// turned off.
//
// Migrations run in one transaction under an advisory lock, so several bff
// instances starting together apply each migration once, and a failed
// migration leaves the schema as it was. A schema that is up to date is
// recognised without the lock and without any DDL, so a role that may only
// read and write the tables can run Migrate too. A schema newer than this
// store knows is left alone: migrations only add, so during a rolling
// upgrade the older instances keep working.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if pool == nil {
		return errors.New("pgstore: migrate: nil pool")
	}
	if err := checkSchemaName(schema); err != nil {
		return err
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return migrate(ctx, pool, schema, ms)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, ms []migration) error {
	latest := ms[len(ms)-1].version
	st, err := readSchemaState(ctx, pool, schema)
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %q: %w", schema, err)
	}
	if st.version >= latest {
		return nil
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, migrateLockSQL, schema); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		// Another instance may have migrated while this one waited.
		st, err := readSchemaState(ctx, tx, schema)
		if err != nil {
			return err
		}
		if st.version >= latest {
			return nil
		}
		ident := pgx.Identifier{schema}.Sanitize()
		if !st.schemaExists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if !st.tableExists {
			_, err := tx.Exec(ctx, `CREATE TABLE `+pgx.Identifier{schema, versionTable}.Sanitize()+` (
				version    integer     PRIMARY KEY,
				name       text        NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`)
			if err != nil {
				return fmt.Errorf("create %s: %w", versionTable, err)
			}
		}
		// SET LOCAL ends with the transaction, so the pool's connection
		// goes back with its own search_path.
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident); err != nil {
			return err
		}
		for _, m := range ms[st.version:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, versionTable}.Sanitize()+
				` (version, name) VALUES ($1, $2)`, m.version, m.name)
			if err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %q: %w", schema, err)
	}
	return nil
}

// checkMigrated fails with ErrMigrationsPending if schema lacks any of ms. It
// changes nothing.
func checkMigrated(ctx context.Context, pool *pgxpool.Pool, schema string, ms []migration) error {
	st, err := readSchemaState(ctx, pool, schema)
	if err != nil {
		return fmt.Errorf("pgstore: check schema %q: %w", schema, err)
	}
	if latest := ms[len(ms)-1].version; st.version < latest {
		missing := ms[st.version]
		var at string
		switch {
		case !st.schemaExists:
			at = "does not exist"
		case !st.tableExists:
			at = "has no " + versionTable + " table"
		default:
			at = fmt.Sprintf("is at version %d", st.version)
		}
		return fmt.Errorf("%w: schema %q %s, this bff needs version %d: migration %s is not applied "+
			"(apply the migrations, or let bff apply them by leaving migrations on)",
			ErrMigrationsPending, schema, at, latest, missing.name)
	}
	return nil
}

// schemaState is what the database says about a schema's migrations.
type schemaState struct {
	schemaExists bool
	tableExists  bool
	version      int // 0 without a version table
}

// querier is what readSchemaState needs of a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readSchemaState(ctx context.Context, q querier, schema string) (schemaState, error) {
	var st schemaState
	err := q.QueryRow(ctx, `SELECT
			EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1::text),
			to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL`,
		schema, versionTable).Scan(&st.schemaExists, &st.tableExists)
	if err != nil {
		return st, err
	}
	if !st.tableExists {
		return st, nil
	}
	err = q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+
		pgx.Identifier{schema, versionTable}.Sanitize()).Scan(&st.version)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: dropped meanwhile
		st.tableExists = false
		return st, nil
	}
	return st, err
}

// checkSchemaName rejects names PostgreSQL would silently alter: it drops
// NUL bytes (as does pgx.Identifier.Sanitize) and truncates identifiers to
// 63 bytes, which could make two configured names one schema.
func checkSchemaName(schema string) error {
	switch {
	case schema == "":
		return errors.New("pgstore: empty schema name")
	case len(schema) > 63:
		return fmt.Errorf("pgstore: schema name %q is longer than PostgreSQL's 63 bytes", schema)
	case !utf8.ValidString(schema):
		return fmt.Errorf("pgstore: schema name %q is not valid UTF-8", schema)
	}
	for i := 0; i < len(schema); i++ {
		if schema[i] == 0 {
			return fmt.Errorf("pgstore: schema name %q contains a NUL byte", schema)
		}
	}
	return nil
}
