package pgstore

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gobff/bff/internal/testpg"
	"github.com/gobff/bff/session"
)

// The table refuses rows the store could not read, and should one exist
// anyway (a hand-edited table with its constraints dropped) the store
// reports an error instead of panicking or inventing a record.
func TestMalformedRows(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	s := mustOpen(t, url, WithSchema(schema))
	c := conn(t, url)
	ctx := t.Context()
	table := pgx.Identifier{schema, "bff_sessions"}.Sanitize()
	insert := `INSERT INTO ` + table + ` (key, version, iss, sub, sid, created_at, expires_at, idle_expires_at, data)
		VALUES ($1, $2, 'iss', $3, 'sid', now(), $4::timestamptz, $4::timestamptz, '')`
	future := time.Now().Add(time.Hour)

	type row struct {
		key     []byte
		version int64
		end     any // time.Time or "infinity"
	}
	longKey := make([]byte, 40)
	longKey[0] = 1
	negKey, infKey := session.KeyOf("negative"), session.KeyOf("infinite")
	rows := map[string]row{ // by sub
		"short-key":    {[]byte("short"), 1, future},
		"long-key":     {longKey, 1, future},
		"zero-version": {make([]byte, 32), 0, future},
		"negative":     {negKey[:], -5, future},
		"infinite":     {infKey[:], 1, "infinity"},
	}
	for sub, r := range rows {
		_, err := c.Exec(ctx, insert, r.key, r.version, sub, r.end)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" { // check_violation
			t.Errorf("insert of the %s row: %v, want a check violation", sub, err)
		}
	}

	_, err := c.Exec(ctx, `ALTER TABLE `+table+` DROP CONSTRAINT bff_sessions_key_length,
		DROP CONSTRAINT bff_sessions_version_positive, DROP CONSTRAINT bff_sessions_times_finite`)
	if err != nil {
		t.Fatal(err)
	}
	for sub, r := range rows {
		if _, err := c.Exec(ctx, insert, r.key, r.version, sub, r.end); err != nil {
			t.Fatal(err)
		}
	}
	wantErr := func(op string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s: %v, want a decoding error", op, err)
			return
		}
		t.Logf("%s: %v", op, err)
	}
	for _, key := range []string{"zero-version", "negative", "infinite"} {
		wantErr("Get of the "+key+" row", second(s.Get(ctx, session.Key(rows[key].key))))
	}
	for sub := range rows {
		wantErr("ListBySub of the "+sub+" row", second(s.ListBySub(ctx, "iss", sub)))
		wantErr("DeleteBySub of the "+sub+" row", second(s.DeleteBySub(ctx, "iss", sub)))
	}
}

func second[T any](_ T, err error) error { return err }
