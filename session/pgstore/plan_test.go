package pgstore

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gobff/bff/internal/testpg"
)

// Every statement finds its rows through an index, never a scan of the
// table, even in the generic plan that a prepared statement settles on
// after a few executions (a plan that cannot see the parameters' values,
// which matters for the partial sid index).
//
// With sequential scans disabled, the planner takes an index whenever one
// fits; a plan that still has a Seq Scan has none to take.
func TestQueryPlans(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	s := mustOpen(t, url, WithSchema(schema))
	c := conn(t, url)
	ctx := t.Context()
	if _, err := c.Exec(ctx, "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	params := regexp.MustCompile(`\$([0-9]+)`)
	for _, q := range []struct {
		name, sql string
		indexes   []string
	}{
		{"get", s.q.get, []string{"bff_sessions_pkey"}},
		{"update", s.q.update, []string{"bff_sessions_pkey"}},
		{"version", s.q.version, []string{"bff_sessions_pkey"}},
		{"touch", s.q.touch, []string{"bff_sessions_pkey"}},
		{"delete", s.q.delete, []string{"bff_sessions_pkey"}},
		{"deleteBySID", s.q.deleteBySID, []string{"bff_sessions_iss_sid_idx"}},
		{"deleteBySub", s.q.deleteBySub, []string{"bff_sessions_iss_sub_idx"}},
		{"listBySub", s.q.listBySub, []string{"bff_sessions_iss_sub_idx"}},
		{"deleteExpiredSessions", s.q.deleteExpiredSessions, []string{"bff_sessions_ends_at_idx", "bff_sessions_pkey"}},
		{"deleteExpiredJTI", s.q.deleteExpiredJTI, []string{"bff_jti_expires_at_idx", "bff_jti_pkey"}},
		{"release", s.q.release, []string{"bff_locks_pkey"}},
	} {
		n := 0
		for _, m := range params.FindAllStringSubmatch(q.sql, -1) {
			i, _ := strconv.Atoi(m[1])
			n = max(n, i)
		}
		nulls := strings.TrimSuffix(strings.Repeat("NULL,", n), ",")
		if _, err := c.Exec(ctx, "PREPARE p AS "+q.sql); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		rows, err := c.Query(ctx, "EXPLAIN EXECUTE p("+nulls+")", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		if _, err := c.Exec(ctx, "DEALLOCATE p"); err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		for _, idx := range q.indexes {
			if !strings.Contains(plan, " "+idx+" ") && !strings.HasSuffix(plan, " "+idx) {
				t.Errorf("%s does not use %s:\n%s", q.name, idx, plan)
			}
		}
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s scans a table:\n%s", q.name, plan)
		}
	}
}
