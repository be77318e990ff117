package pgstore

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// queries are the store's SQL statements with its schema's table names
// filled in. They are built once per Store, so the pool's statement cache
// prepares each once per connection.
//
// A session is live while now < least(expires_at, idle_expires_at), the
// negation of [session.Record.Expired]; statements spell the expression
// exactly as bff_sessions_ends_at_idx does so that the planner can match the
// index. Lookups by sid repeat the partial index's predicate, that sid is
// not empty, because a generic plan of a prepared statement cannot infer it
// from sid = $2.
type queries struct {
	get, create, update, version, touch, delete string
	deleteBySID, deleteBySub, listBySub         string
	deleteExpiredSessions                       string
	deleteExpiredLocks, deleteExpiredJTI        string
	lock, release, seenJTI, forgetJTI           string
}

// recordColumns are the columns scanRecord reads, in its order.
const recordColumns = `key, version, iss, sub, sid, created_at, expires_at, idle_expires_at, data`

const (
	sqlGet = `SELECT ` + recordColumns + ` FROM {sessions}
		WHERE key = $1 AND least(expires_at, idle_expires_at) > $2`

	// An expired row under the key is taken over (the store may delete
	// expired sessions at any time, so this is as if it had been); a live
	// one stops the INSERT, and no row is affected.
	sqlCreate = `INSERT INTO {sessions} AS s (` + recordColumns + `)
		VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (key) DO UPDATE SET
			version = 1, iss = excluded.iss, sub = excluded.sub, sid = excluded.sid,
			created_at = excluded.created_at, expires_at = excluded.expires_at,
			idle_expires_at = excluded.idle_expires_at, data = excluded.data
		WHERE least(s.expires_at, s.idle_expires_at) <= $9`

	// The compare-and-set. Under READ COMMITTED a concurrent writer's
	// commit is waited for and the WHERE re-checked against its row, so of
	// two Updates at one version exactly one matches.
	sqlUpdate = `UPDATE {sessions} SET
			version = version + 1, iss = $3, sub = $4, sid = $5,
			expires_at = $6, idle_expires_at = $7, data = $8
		WHERE key = $1 AND version = $2 AND least(expires_at, idle_expires_at) > $9
		RETURNING version`

	// sqlVersion tells why an Update matched no row: a live row means a
	// version conflict, none means the session is gone.
	sqlVersion = `SELECT version FROM {sessions}
		WHERE key = $1 AND least(expires_at, idle_expires_at) > $2`

	sqlTouch = `UPDATE {sessions} SET idle_expires_at = least($2::timestamptz, expires_at)
		WHERE key = $1 AND least(expires_at, idle_expires_at) > $3`

	sqlDelete = `DELETE FROM {sessions} WHERE key = $1`

	// Deleted rows of expired sessions are counted out of the result, not
	// out of the DELETE: they go too.
	sqlDeleteBySID = `WITH gone AS (
			DELETE FROM {sessions} WHERE iss = $1 AND sid = $2 AND sid <> ''
			RETURNING ` + recordColumns + `)
		SELECT ` + recordColumns + ` FROM gone WHERE least(expires_at, idle_expires_at) > $3`

	sqlDeleteBySub = `WITH gone AS (
			DELETE FROM {sessions} WHERE iss = $1 AND sub = $2
			RETURNING ` + recordColumns + `)
		SELECT ` + recordColumns + ` FROM gone WHERE least(expires_at, idle_expires_at) > $3`

	sqlListBySub = `SELECT ` + recordColumns + ` FROM {sessions}
		WHERE iss = $1 AND sub = $2 AND least(expires_at, idle_expires_at) > $3`

	// One batch of DeleteExpired. SKIP LOCKED leaves rows that a request
	// is writing (and may be extending) alone, and lets several instances
	// sweep at once without waiting on each other.
	sqlDeleteExpiredSessions = `DELETE FROM {sessions} WHERE key IN (
			SELECT key FROM {sessions}
			WHERE least(expires_at, idle_expires_at) <= $1
			LIMIT $2 FOR UPDATE SKIP LOCKED)`

	sqlDeleteExpiredLocks = `DELETE FROM {locks} WHERE name IN (
			SELECT name FROM {locks} WHERE expires_at <= now()
			LIMIT $1 FOR UPDATE SKIP LOCKED)`

	sqlDeleteExpiredJTI = `DELETE FROM {jti} WHERE id IN (
			SELECT id FROM {jti} WHERE expires_at <= now()
			LIMIT $1 FOR UPDATE SKIP LOCKED)`

	// A lock row is taken when there is none or when its holder's ttl has
	// passed. Concurrent takers of one name queue on the row, and each
	// re-checks the WHERE against the winner's row, so exactly one wins.
	sqlLock = `INSERT INTO {locks} AS l (name, token, expires_at)
		VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
		WHERE l.expires_at <= now()`

	sqlRelease = `DELETE FROM {locks} WHERE name = $1 AND token = $2`

	sqlForgetJTI = `DELETE FROM {jti} WHERE id = $1`

	// As sqlLock: a row is written only for a new or an expired id.
	sqlSeenJTI = `INSERT INTO {jti} AS j (id, expires_at)
		VALUES ($1, now() + $2::bigint * interval '1 microsecond')
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE j.expires_at <= now()`
)

func newQueries(schema string) queries {
	r := strings.NewReplacer(
		"{sessions}", pgx.Identifier{schema, "bff_sessions"}.Sanitize(),
		"{locks}", pgx.Identifier{schema, "bff_locks"}.Sanitize(),
		"{jti}", pgx.Identifier{schema, "bff_jti"}.Sanitize(),
	)
	return queries{
		get:                   r.Replace(sqlGet),
		create:                r.Replace(sqlCreate),
		update:                r.Replace(sqlUpdate),
		version:               r.Replace(sqlVersion),
		touch:                 r.Replace(sqlTouch),
		delete:                r.Replace(sqlDelete),
		deleteBySID:           r.Replace(sqlDeleteBySID),
		deleteBySub:           r.Replace(sqlDeleteBySub),
		listBySub:             r.Replace(sqlListBySub),
		deleteExpiredSessions: r.Replace(sqlDeleteExpiredSessions),
		deleteExpiredLocks:    r.Replace(sqlDeleteExpiredLocks),
		deleteExpiredJTI:      r.Replace(sqlDeleteExpiredJTI),
		lock:                  r.Replace(sqlLock),
		release:               r.Replace(sqlRelease),
		seenJTI:               r.Replace(sqlSeenJTI),
		forgetJTI:             r.Replace(sqlForgetJTI),
	}
}
