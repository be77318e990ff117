package testredis

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start and Restart wait for a server to
// answer PING (loading a large append-only file included).
const startTimeout = 30 * time.Second

// Options configure a server of [Start].
type Options struct {
	// Persist keeps the server's data in an append-only file written with
	// an fsync before every reply (appendonly yes, appendfsync always), so
	// that every acknowledged write survives Stop and Restart. Without it
	// the server keeps nothing on disk and restarts empty.
	Persist bool
	// Args are further redis-server arguments, such as "--maxmemory",
	// "10mb".
	Args []string

	// cluster enables cluster mode, with the cluster bus on a port of its
	// own (the default, port+10000, may not exist).
	cluster bool
}

// Server is a private redis-server process of one test, listening on a
// loopback port with a temporary directory of its own. Its methods must be
// called from the test's goroutine.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of the server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// Start starts a private redis-server on a free loopback port and stops it
// when the test ends. It skips the test (fails it with
// BFF_REQUIRE_SERVICES=1) when there is no redis-server binary.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	return launch(t, func(dir string, port int) ([]string, error) {
		args := []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--logfile", "redis.log",
			"--daemonize", "no",
			"--save", "",
		}
		if opts.Persist {
			args = append(args, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			args = append(args, "--appendonly", "no")
		}
		if opts.cluster {
			bus, err := freePort()
			if err != nil {
				return nil, err
			}
			args = append(args,
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
				"--cluster-port", strconv.Itoa(bus))
		}
		return append(args, opts.Args...), nil
	})
}

// StartSentinel starts a private Redis Sentinel that monitors the primary
// at masterAddr under the name master, with a quorum of 1, and stops it
// when the test ends; it returns the Sentinel's address. The Sentinel
// authenticates to the primary with masterPassword if it is not empty.
// Missing binaries skip the test as in Start.
func StartSentinel(t testing.TB, master, masterAddr, masterPassword string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(masterAddr)
	if err != nil {
		t.Fatalf("testredis: primary address %q: %v", masterAddr, err)
	}
	s := launch(t, func(dir string, sport int) ([]string, error) {
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %q\nlogfile \"redis.log\"\n"+
			"sentinel monitor %s %s %s 1\n", sport, dir, master, host, port)
		if masterPassword != "" {
			conf += fmt.Sprintf("sentinel auth-pass %s %s\n", master, masterPassword)
		}
		path := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		return []string{path, "--sentinel"}, nil
	})
	return s.Addr()
}

// launch starts a server with the arguments args returns for its directory
// and a free port, trying other ports if the one it picked was taken
// before the server could bind it.
func launch(t testing.TB, args func(dir string, port int) ([]string, error)) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.kill) // registered after t.TempDir's cleanup: runs before it
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testredis: %v", err)
		}
		s.port = port
		if s.args, err = args(s.dir, port); err != nil {
			t.Fatalf("testredis: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("testredis: starting redis-server: %v", lastErr)
	return nil
}

// Addr returns the server's address, host:port. It stays the same across
// Stop and Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Dir returns the server's working directory, which holds its log
// (redis.log) and, with Persist, its append-only file.
func (s *Server) Dir() string { return s.dir }

// Stop kills the server with SIGKILL, as a crash or a pulled plug would,
// and waits until it has exited: clients see refused connections from then
// on. The server writes nothing on its way out, so what survives for
// Restart is what it had written before: with Persist, every acknowledged
// write; without, nothing. Stopping a stopped server is a no-op.
func (s *Server) Stop() {
	s.t.Helper()
	s.kill()
}

// Pause freezes the server with SIGSTOP: it still accepts connections (the
// kernel does) but answers nothing, as a server stuck or behind a network
// partition would, until Resume. Commands clients sent meanwhile run on
// Resume, unless the clients closed their connections.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume lets a paused server go on with SIGCONT.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("testredis: %v to a stopped server", sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("testredis: %v: %v", sig, err)
	}
}

// Restart starts the server again on the same port and directory, after
// stopping it if it runs, and waits until it answers PING (with Persist,
// after it has loaded its data).
func (s *Server) Restart() {
	s.t.Helper()
	s.kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("testredis: restarting redis-server on %s: %v", s.Addr(), err)
	}
}

// start runs the server and waits until it answers PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	var out bytes.Buffer // redis-server writes here only before it opens its log
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var err error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		err = ping(pctx, s.Addr())
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			s.mu.Lock()
			s.proc = nil
			s.mu.Unlock()
			return fmt.Errorf("redis-server exited: %s%s", out.String(), s.logTail())
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("no answer after %v: %v%s", startTimeout, err, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill SIGKILLs the server if it runs and waits for it to exit.
func (s *Server) kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nredis.log:\n" + string(b)
}

// StartCluster starts n (at least 3) private cluster-mode redis-servers,
// joins them into a cluster of n primaries without replicas with redis-cli
// --cluster create, waits until every node reports cluster_state:ok, and
// returns their addresses. The servers are killed when the test ends. It
// skips the test (fails it with BFF_REQUIRE_SERVICES=1) when the binaries
// are missing.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	if n < 3 {
		t.Fatalf("testredis: a Redis cluster needs at least 3 primaries, not %d", n)
	}
	cli := lookPath(t, "redis-cli")
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = Start(t, Options{cluster: true}).Addr()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		for {
			reply, err := Do(ctx, addr, "CLUSTER", "INFO")
			info, _ := reply.(string)
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("testredis: cluster node %s not ok: %v\n%s", addr, err, info)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return addrs
}

// lookPath finds a binary on $PATH, or skips or fails the test.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "no %s binary: %v", name, err)
	}
	return p
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
