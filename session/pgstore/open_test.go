package pgstore

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff/internal/testpg"
)

// splitURL takes out Open's own parameters and leaves the rest of the URL
// as written.
func TestSplitURL(t *testing.T) {
	for _, c := range []struct {
		raw, want string
		schema    string // "" for the default
		migrate   bool
	}{
		{"postgres://h/db", "postgres://h/db", "", true},
		{"postgresql://u:p@h:5433/db?sslmode=disable", "postgresql://u:p@h:5433/db?sslmode=disable", "", true},
		{"postgres://h/db?bff_schema=bff", "postgres://h/db", "bff", true},
		{"postgres://h/db?sslmode=disable&bff_schema=my%20schema&application_name=x", "postgres://h/db?sslmode=disable&application_name=x", "my schema", true},
		{"postgres://h/db?bff_migrate=false&sslmode=disable", "postgres://h/db?sslmode=disable", "", false},
		{"postgres://h/db?bff_migrate=true&bff_schema=s", "postgres://h/db", "s", true},
		{"postgres://h/db?bff_migrate=0", "postgres://h/db", "", false},
		// Multi-host lists and odd escapes pass through untouched.
		{"postgres://a:5432,b:5433/db?target_session_attrs=read-write&bff_schema=s", "postgres://a:5432,b:5433/db?target_session_attrs=read-write", "s", true},
		{"postgres://h/db?options=-c%20search_path%3Dx&bff_schema=s", "postgres://h/db?options=-c%20search_path%3Dx", "s", true},
	} {
		got, opts, err := splitURL(c.raw)
		if err != nil {
			t.Errorf("splitURL(%q): %v", c.raw, err)
			continue
		}
		o := newOptions(opts)
		wantSchema := c.schema
		if wantSchema == "" {
			wantSchema = "public"
		}
		if got != c.want || o.schema != wantSchema || o.migrate != c.migrate {
			t.Errorf("splitURL(%q) = %q, schema %q, migrate %v; want %q, %q, %v",
				c.raw, got, o.schema, o.migrate, c.want, wantSchema, c.migrate)
		}
	}
}

// Malformed URLs and parameters fail with an error that says what is wrong
// and never shows the password.
func TestOpenBadURL(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"host=h dbname=db password=hunter2", "want a postgres:// or postgresql:// URL"},
		{"mysql://u:hunter2@h/db", `URL scheme "mysql"`},
		{"postgres://u:hunter2@h/db?bff_migrate=maybe", `bff_migrate="maybe": want true or false`},
		{"postgres://u:hunter2@h/db?bff_schema=", "empty schema name"},
		{"postgres://u:hunter2@h/db?bff_schema=a&bff_schema=b", "bff_schema given twice"},
		{"postgres://u:hunter2@h/db?bff_schema=%zz", "bff_schema"},
		{"postgres://u:hunter2@h:port/db", "cannot parse"},
		{"postgres://u:hunter2@h/db?sslmode=sometimes", "sslmode"},
		{"postgres://u:hunter2@h/db?connect_timeout=soon", "connect_timeout"},
	} {
		s, err := Open(t.Context(), c.raw)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", c.raw)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "pgstore: ") || !strings.Contains(msg, c.want) {
			t.Errorf("Open(%q): %q, want a pgstore error about %q", c.raw, msg, c.want)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("Open(%q): error %q shows the password", c.raw, msg)
		}
	}
}

// Open bounds connection attempts unless the URL does.
func TestConnectTimeout(t *testing.T) {
	for raw, want := range map[string]time.Duration{
		"postgres://h/db":                   DefaultConnectTimeout,
		"postgres://h/db?connect_timeout=2": 2 * time.Second,
		"postgres://h/db?connect_timeout=0": DefaultConnectTimeout,
	} {
		cfg, err := poolConfig(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.ConnConfig.ConnectTimeout; got != want {
			t.Errorf("poolConfig(%q): connect timeout %v, want %v", raw, got, want)
		}
	}
}

// Open takes bff_schema and bff_migrate from the URL, over the options.
func TestOpenURLParameters(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url)
	s := mustOpen(t, withParam(url, "bff_schema="+schema), WithSchema("not_this_one"))
	if s.Schema() != schema {
		t.Fatalf("Schema() = %q, want %q from the URL", s.Schema(), schema)
	}
	c := conn(t, url)
	if rels := relations(t, c, schema); len(rels) == 0 {
		t.Fatalf("Open with bff_schema=%s created nothing there", schema)
	}
	if schemaExists(t, c, "not_this_one") {
		t.Fatal("Open created the schema of the option the URL overrode")
	}

	fresh := testpg.Schema(t, url)
	_, err := Open(t.Context(), withParam(url, "bff_migrate=false&bff_schema="+fresh))
	if !errors.Is(err, ErrMigrationsPending) {
		t.Fatalf("Open with bff_migrate=false of a fresh schema: %v, want ErrMigrationsPending", err)
	}
	if schemaExists(t, c, fresh) {
		t.Fatal("Open with bff_migrate=false created the schema")
	}
}

// Open of a server that does not answer fails with the connection error.
func TestOpenUnreachable(t *testing.T) {
	port, err := freePortForTest()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), "postgres://postgres@127.0.0.1:"+port+"/db?sslmode=disable&bff_schema=s")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "connect") {
		t.Fatalf("Open of a closed port: %v, want a connection error", err)
	}
	t.Logf("Open of a closed port: %v", err)
}

// freePortForTest returns a loopback port nothing listens on.
func freePortForTest() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
