package testredis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gobff/bff/internal/testredis"
)

func do(t *testing.T, addr string, args ...string) any {
	t.Helper()
	reply, err := testredis.Do(t.Context(), addr, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return reply
}

func TestAddrAndPrefix(t *testing.T) {
	addr := testredis.Addr(t)
	var prefix string
	t.Run("uses", func(t *testing.T) {
		prefix = testredis.Prefix(t, addr)
		if !strings.HasPrefix(prefix, "bfftest:") || !strings.HasSuffix(prefix, ":") {
			t.Fatalf("Prefix = %q", prefix)
		}
		for _, k := range []string{"a", "b{x}", "c"} {
			if got := do(t, addr, "SET", prefix+k, "v"); got != "OK" {
				t.Fatalf("SET = %v", got)
			}
		}
	})
	if n, err := testredis.DeletePrefix(context.Background(), addr, prefix); err != nil || n != 0 {
		t.Fatalf("after the test, DeletePrefix(%q) = %d, %v; want the keys gone already", prefix, n, err)
	}
	if _, err := testredis.DeletePrefix(t.Context(), addr, "bad*"); err == nil {
		t.Fatal("DeletePrefix accepted a glob character")
	}
}

func TestDoReplies(t *testing.T) {
	addr := testredis.Addr(t)
	key := testredis.Prefix(t, addr) + "list"
	do(t, addr, "RPUSH", key, "a", "", "c")
	if got := do(t, addr, "LLEN", key); got != int64(3) {
		t.Fatalf("LLEN = %#v", got)
	}
	got, _ := do(t, addr, "LRANGE", key, "0", "-1").([]any)
	if len(got) != 3 || got[0] != "a" || got[1] != "" || got[2] != "c" {
		t.Fatalf("LRANGE = %#v", got)
	}
	if got := do(t, addr, "GET", key+"-missing"); got != nil {
		t.Fatalf("GET of a missing key = %#v", got)
	}
	if _, err := testredis.Do(t.Context(), addr, "GET", key); err == nil {
		t.Fatal("GET of a list succeeded")
	} else if _, ok := err.(testredis.ServerError); !ok {
		t.Fatalf("GET of a list: %T %v, want a ServerError", err, err)
	}
}

// A persistent server keeps its data across a SIGKILL and restarts on the
// same address; a volatile one restarts empty.
func TestStartStopRestart(t *testing.T) {
	for _, persist := range []bool{true, false} {
		srv := testredis.Start(t, testredis.Options{Persist: persist})
		do(t, srv.Addr(), "SET", "k", "v")
		srv.Stop()
		if _, err := testredis.Do(t.Context(), srv.Addr(), "PING"); err == nil {
			t.Fatal("PING of a stopped server succeeded")
		}
		srv.Stop() // a no-op
		srv.Restart()
		want := any("v")
		if !persist {
			want = nil
		}
		if got := do(t, srv.Addr(), "GET", "k"); got != want {
			t.Fatalf("Persist %v: GET after Restart = %#v, want %#v", persist, got, want)
		}
		srv.Restart() // of a running server
		do(t, srv.Addr(), "PING")
	}
}

func TestPauseResume(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	srv.Pause()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := testredis.Do(ctx, srv.Addr(), "PING"); err == nil {
		t.Fatal("PING of a paused server succeeded")
	}
	srv.Resume()
	do(t, srv.Addr(), "PING")
}

func TestStartCluster(t *testing.T) {
	addrs := testredis.StartCluster(t, 3)
	if len(addrs) != 3 {
		t.Fatalf("StartCluster returned %d addresses", len(addrs))
	}
	for _, addr := range addrs {
		info, _ := do(t, addr, "CLUSTER", "INFO").(string)
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
			t.Fatalf("CLUSTER INFO of %s:\n%s", addr, info)
		}
	}
	// A key lives on exactly one node; the others redirect.
	moved := 0
	for _, addr := range addrs {
		if _, err := testredis.Do(t.Context(), addr, "SET", "some-key", "v"); err != nil {
			if !strings.Contains(err.Error(), "MOVED") {
				t.Fatalf("SET on %s: %v", addr, err)
			}
			moved++
		}
	}
	if moved != 2 {
		t.Fatalf("%d of 3 nodes redirected SET, want 2", moved)
	}
}

func TestStartSentinel(t *testing.T) {
	primary := testredis.Start(t, testredis.Options{Args: []string{"--requirepass", "pw"}})
	sentinel := testredis.StartSentinel(t, "mymaster", primary.Addr(), "pw")
	got, _ := do(t, sentinel, "SENTINEL", "get-master-addr-by-name", "mymaster").([]any)
	if len(got) != 2 || got[0].(string)+":"+got[1].(string) != primary.Addr() {
		t.Fatalf("Sentinel knows mymaster at %v, want %s", got, primary.Addr())
	}
	if _, err := testredis.Do(t.Context(), primary.Addr(), "GET", "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("GET without AUTH: %v, want NOAUTH", err)
	}
}
