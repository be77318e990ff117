package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds how long Start and Restart wait for the server to
// accept connections, and Stop for it to shut down.
const startTimeout = 60 * time.Second

// Server is a private PostgreSQL cluster of one test: its own data directory
// in a temporary directory, a postmaster on a free loopback port, trust
// authentication for user postgres, fsync on. Stop and Restart let the test
// take it away and bring it back on the same port with the same data; it is
// stopped and removed when the test ends.
//
// Its methods fail the test that called Start on error, so call them from
// that test's goroutine, not from its subtests or other goroutines.
type Server struct {
	t       testing.TB
	bin     string // directory of initdb and pg_ctl
	dir     string // holds data/ and server.log
	port    int
	runAs   string // OS user to run PostgreSQL as, "" for the test's own
	running bool
}

// Start initializes and starts a private cluster and waits until it accepts
// connections. It skips t (or fails it, see the package documentation) when
// no PostgreSQL server binaries are installed. It takes a second or two.
//
// PostgreSQL refuses to run as root, so a test running as root runs it as
// the postgres OS user (with runuser), which the server packages create.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinaries()
	if err != nil {
		unavailable(t, "testpg: %v", err)
	}
	s := &Server{t: t, bin: bin}
	var owner *user.User
	if os.Geteuid() == 0 {
		owner, err = user.Lookup("postgres")
		if err != nil {
			unavailable(t, "testpg: running as root, and no postgres OS user to run PostgreSQL as: %v", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			unavailable(t, "testpg: running as root, and no runuser to run PostgreSQL as postgres: %v", err)
		}
		s.runAs = owner.Username
	}
	// Not t.TempDir: its parent directory is private to the test's user,
	// and the server may run as another.
	s.dir, err = os.MkdirTemp("", "bff-testpg-")
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		// Whatever Start, Stop or Restart got to, a postmaster.pid means
		// a server may be running. Its data is going: no need for a
		// clean shutdown.
		if _, err := os.Stat(filepath.Join(s.dataDir(), "postmaster.pid")); err == nil {
			if err := s.pgCtl("stop", "-m", "immediate"); err != nil {
				t.Errorf("testpg: stop server: %v", err)
			}
		}
		if err := os.RemoveAll(s.dir); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			t.Fatalf("testpg: %v", err)
		}
	}
	if s.port, err = freePort(); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	// --no-sync only skips initdb's own final fsync of the fresh cluster;
	// the server itself runs with fsync on.
	if err := s.run(filepath.Join(bin, "initdb"), "-D", s.dataDir(), "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("testpg: initdb: %v", err)
	}
	conf := fmt.Sprintf(`
# testpg
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = on
shared_buffers = 32MB
`, s.port)
	if err := appendFile(filepath.Join(s.dataDir(), "postgresql.conf"), conf); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	s.start()
	return s
}

// URL returns the URL of the server's postgres database as user postgres.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Port returns the server's TCP port, the same across restarts.
func (s *Server) Port() int { return s.port }

// Stop shuts the server down as an operator would (fast shutdown: clients
// are disconnected, work in flight is rolled back) and returns once it is
// down. Connections to the port are refused until Restart.
func (s *Server) Stop() {
	s.t.Helper()
	s.stop("fast")
}

// Crash stops the server without a shutdown checkpoint, as a crash or a
// power cut would (immediate shutdown); Restart then recovers from the WAL.
// Committed data survives.
func (s *Server) Crash() {
	s.t.Helper()
	s.stop("immediate")
}

// Restart starts a stopped server again on the same port and data, and waits
// until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	if s.running {
		s.t.Fatal("testpg: Restart of a running server")
	}
	s.start()
}

func (s *Server) stop(mode string) {
	s.t.Helper()
	if !s.running {
		s.t.Fatal("testpg: stop of a stopped server")
	}
	if err := s.pgCtl("stop", "-m", mode); err != nil {
		s.t.Fatalf("testpg: stop server: %v", err)
	}
	s.running = false
}

func (s *Server) start() {
	s.t.Helper()
	if err := s.pgCtl("start", "-l", s.logFile()); err != nil {
		s.t.Fatalf("testpg: start server: %v\n%s", err, s.logTail())
	}
	s.running = true
	// pg_ctl -w waited for the postmaster to report itself ready; a
	// connection proves that the server takes clients on the port.
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			s.t.Fatalf("testpg: server on port %d does not accept connections: %v\n%s", s.port, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgCtl runs pg_ctl on the data directory and waits for the operation to
// complete.
func (s *Server) pgCtl(op string, args ...string) error {
	args = append([]string{op, "-D", s.dataDir(), "-w", "-t", strconv.Itoa(int(startTimeout / time.Second))}, args...)
	return s.run(filepath.Join(s.bin, "pg_ctl"), args...)
}

// run runs a server program, as s.runAs if set. Its output goes to a file,
// not a pipe: pg_ctl start leaves a postmaster behind, which must not keep
// a pipe of ours open.
func (s *Server) run(name string, args ...string) error {
	if s.runAs != "" {
		args = append([]string{"-u", s.runAs, "--", name}, args...)
		name = "runuser"
	}
	out, err := os.CreateTemp("", "bff-testpg-cmd-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logFile() string { return filepath.Join(s.dir, "server.log") }

// logTail returns the end of the server log, for failure messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logFile())
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "server log:\n" + string(b)
}

// findBinaries returns the directory of initdb and pg_ctl: the one on PATH,
// or else the newest of Debian's /usr/lib/postgresql/VERSION/bin.
func findBinaries() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
