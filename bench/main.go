// Command bench is bff's load benchmark. In one process, on loopback, it
// starts an upstream that answers with 1 KB of JSON, a bare
// httputil.ReverseProxy in front of it, an OpenID Provider, and bff with
// each session store (memory, bolt, and the Redis and PostgreSQL servers of
// the machine) with a logged-in session, and drives each with the same
// load: first as fast as the connections allow (peak throughput), then at
// half of the bare proxy's peak rate (latency under normal load). It prints
// requests/s, p50 and p99 and the bff/bare ratios, all from one run.
//
//	go run ./bench -duration 30s -slice 2s -conns 64
//	go run ./bench -stores memory,bolt      # without the Redis and PostgreSQL servers
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"
)

func main() {
	duration := flag.Duration("duration", 30*time.Second, "load `time` per target and phase")
	slice := flag.Duration("slice", 2*time.Second, "the targets take turns in slices this long")
	conns := flag.Int("conns", 64, "concurrent keep-alive connections")
	quiet := flag.Bool("q", false, "print only the table")
	stores := flag.String("stores", "memory,bolt,redis,postgres", "comma-separated session `stores` to measure bff with")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "`address` of the Redis server for the redis store")
	postgresURL := flag.String("postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "`URL` of the PostgreSQL database for the postgres store")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "bff-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	if *quiet {
		logf = func(string, ...any) {}
	}
	results, err := Run(ctx, Options{Duration: *duration, Slice: *slice, Conns: *conns, DataDir: dir, Logf: logf,
		Stores: strings.Split(*stores, ","), RedisAddr: *redisAddr, PostgresURL: *postgresURL})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	Print(os.Stdout, results, *duration, *slice, *conns)
}

// Print writes the results as a Markdown table with the ratios to the bare
// proxy (the first result).
func Print(w io.Writer, results []Result, d, slice time.Duration, conns int) {
	fmt.Fprintf(w, "%d CPUs, %s %s/%s; %d keep-alive connections; %v of load per target and phase, in %v slices taken in turn\n\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, conns, d, slice)
	fmt.Fprintf(w, "Half of the bare proxy's peak: %.0f req/s.\n\n", results[0].RPS/2)
	fmt.Fprintln(w, "| target | req/s (slowest-fastest slice) | / bare | / bare+pool | p50 | p99 | p50 @ half peak | p99 @ half peak | p99 added @ half peak | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	bare, pooled := results[0], results[1]
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %.0f (%.0f-%.0f) | %.3f | %.3f | %v | %v | %v | %v | %v | %d |\n",
			r.Target, r.RPS, r.MinRPS, r.MaxRPS, r.RPS/bare.RPS, r.RPS/pooled.RPS,
			r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
			r.HalfP50.Round(time.Microsecond), r.HalfP99.Round(time.Microsecond),
			(r.HalfP99 - bare.HalfP99).Round(time.Microsecond), r.Errors)
	}
}
