package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff"
	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/proxy"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/boltstore"
	"github.com/gobff/bff/session/memstore"
	"github.com/gobff/bff/session/pgstore"
	"github.com/gobff/bff/session/redisstore"
)

// Options of a benchmark run.
type Options struct {
	Duration time.Duration // of load per target and phase, cut into slices
	Slice    time.Duration // the targets take turns in slices this long
	Conns    int           // concurrent keep-alive connections
	DataDir  string        // for the bolt store
	// Stores are the session stores to measure bff with, each a target:
	// "memory", "bolt", "redis", "postgres". Default memory and bolt.
	Stores []string
	// RedisAddr and PostgresURL locate the servers of the shared stores;
	// the run uses a key prefix or schema of its own and removes it.
	RedisAddr   string
	PostgresURL string
	Logf        func(format string, args ...any)
}

// Result is one target's figures.
type Result struct {
	Target string
	RPS    float64
	P50    time.Duration
	P99    time.Duration
	// At half of the bare proxy's peak rate:
	HalfP50 time.Duration
	HalfP99 time.Duration
	Errors  int
	// MinRPS and MaxRPS are the slowest and fastest slice: the noise.
	MinRPS, MaxRPS float64
}

// target is something to send load to.
type target struct {
	name   string
	url    string
	header http.Header
}

// stack is the servers of one run: an upstream, a bare reverse proxy, an
// OP, and bff with each store.
type stack struct {
	servers []*http.Server
	targets []target
	closers []func()
}

func (s *stack) close() {
	for _, srv := range s.servers {
		srv.Close()
	}
	for _, c := range s.closers {
		c()
	}
}

// serve starts h on a fresh loopback port and returns its URL.
func (s *stack) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// upstreamBody is the 1 KB JSON document the upstream answers with.
var upstreamBody = func() []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d"}`, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}()

func newStack(ctx context.Context, opts Options) (_ *stack, err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	upURL, err := s.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(upstreamBody)
	}))
	if err != nil {
		return nil, err
	}
	up, _ := url.Parse(upURL)

	// The baseline: a bare httputil.ReverseProxy with the same transport.
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.SetXForwarded()
		},
		Transport: proxy.NewTransport(),
	}
	bareURL, err := s.serve(bare)
	if err != nil {
		return nil, err
	}
	s.targets = append(s.targets, target{name: "bare ReverseProxy", url: bareURL + "/api/items", header: http.Header{"X-Csrf": {"1"}}})
	// The same with a buffer pool, as bff's proxy has: a fairer baseline
	// for what bff's own work (session, token, checks) costs.
	pooled := &httputil.ReverseProxy{Rewrite: bare.Rewrite, Transport: proxy.NewTransport(), BufferPool: newBufferPool()}
	pooledURL, err := s.serve(pooled)
	if err != nil {
		return nil, err
	}
	s.targets = append(s.targets, target{name: "bare + buffer pool", url: pooledURL + "/api/items", header: http.Header{"X-Csrf": {"1"}}})

	// The OP, for a real login. Its access tokens outlive the run.
	opLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	issuer := "http://" + opLn.Addr().String()

	if len(opts.Stores) == 0 {
		opts.Stores = []string{"memory", "bolt"}
	}
	for _, kind := range opts.Stores {
		store, err := openStore(ctx, kind, opts)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { store.Close() })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		publicURL := "http://" + ln.Addr().String()
		ln.Close()
		key := make([]byte, session.KeySize)
		rand.Read(key)
		b, err := bff.New(bff.Config{
			PublicURL: publicURL,
			OIDC:      bff.OIDCConfig{Issuer: issuer, ClientID: "bench-" + kind, ClientSecret: "bench-secret"},
			Session:   bff.SessionConfig{Store: store},
			Keys:      [][]byte{key},
			APIs:      []bff.APIConfig{{Path: "/api", Upstream: upURL, Token: bff.TokenUser}},
			Logger:    slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return nil, err
		}
		// Listen again on the same port: the OP knows the redirect URI.
		ln, err = net.Listen("tcp", strings.TrimPrefix(publicURL, "http://"))
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go srv.Serve(ln)
		s.targets = append(s.targets, target{name: "bff, " + kind + " store", url: publicURL + "/api/items"})
	}

	var clients []devidp.Client
	for i, kind := range opts.Stores {
		public := strings.TrimSuffix(s.targets[2+i].url, "/api/items")
		clients = append(clients, devidp.Client{ID: "bench-" + kind, Secret: "bench-secret", RedirectURIs: []string{public + "/signin-oidc"}})
	}
	idp, err := devidp.New(devidp.Config{Issuer: issuer, Clients: clients, AccessTokenLifetime: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	opSrv := &http.Server{Handler: idp, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, opSrv)
	go opSrv.Serve(opLn)

	for i := 2; i < len(s.targets); i++ {
		public := strings.TrimSuffix(s.targets[i].url, "/api/items")
		cookie, err := login(ctx, public, "alice", "alice")
		if err != nil {
			return nil, fmt.Errorf("logging in to %s: %w", s.targets[i].name, err)
		}
		s.targets[i].header = http.Header{"X-Csrf": {"1"}, "Cookie": {"__Host-bff=" + cookie}}
	}
	// The bare proxy gets the same cookie header, so both forward requests
	// of the same size.
	s.targets[0].header.Set("Cookie", s.targets[2].header.Get("Cookie"))
	s.targets[1].header.Set("Cookie", s.targets[2].header.Get("Cookie"))
	return s, nil
}

// openStore opens the session store kind for the run: memory, a bolt file
// in DataDir, or a fresh prefix (Redis) or schema (PostgreSQL) on a shared
// server, removed again when the store is closed.
func openStore(ctx context.Context, kind string, opts Options) (session.Store, error) {
	run := strings.ToLower(rand.Text()[:10])
	switch kind {
	case "memory":
		return memstore.New(), nil
	case "bolt":
		return boltstore.Open(filepath.Join(opts.DataDir, "sessions.db"))
	case "redis":
		prefix := "bffbench:" + run + ":"
		rs, err := redisstore.Open(ctx, "redis://"+opts.RedisAddr+"?prefix="+url.QueryEscape(prefix))
		if err != nil {
			return nil, fmt.Errorf("redis store (-redis %s): %w", opts.RedisAddr, err)
		}
		return &cleanup{Store: rs, fn: func() error { return deleteKeys(rs.Client(), prefix) }}, nil
	case "postgres":
		schema := "bffbench_" + run
		ps, err := pgstore.Open(ctx, opts.PostgresURL, pgstore.WithSchema(schema))
		if err != nil {
			return nil, fmt.Errorf("postgres store (-postgres): %w", err)
		}
		return &cleanup{Store: ps, fn: func() error { return dropSchema(opts.PostgresURL, schema) }}, nil
	default:
		return nil, fmt.Errorf("unknown store %q (want memory, bolt, redis or postgres)", kind)
	}
}

// cleanup is a store that removes the run's data when closed.
type cleanup struct {
	session.Store
	fn func() error
}

func (c *cleanup) Close() error {
	err := c.fn()
	if cerr := c.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

func deleteKeys(client redis.UniversalClient, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := client.Unlink(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

func dropSchema(connString, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// jar is a cookie jar that, unlike net/http/cookiejar, sends Secure
// cookies over http://, as browsers do on loopback.
type jar struct {
	mu      sync.Mutex
	cookies map[string]map[string]string
}

func (j *jar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cookies[u.Host] == nil {
		j.cookies[u.Host] = map[string]string{}
	}
	for _, c := range cookies {
		if c.MaxAge < 0 {
			delete(j.cookies[u.Host], c.Name)
		} else {
			j.cookies[u.Host][c.Name] = c.Value
		}
	}
}

func (j *jar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for n, v := range j.cookies[u.Host] {
		out = append(out, &http.Cookie{Name: n, Value: v})
	}
	return out
}

var hiddenRE = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// login logs a user in at the bff at public through the OP's form and
// returns the session cookie's value.
func login(ctx context.Context, public, user, password string) (string, error) {
	j := &jar{cookies: map[string]map[string]string{}}
	client := &http.Client{Jar: j, Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, public+"/bff/login", nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := hiddenRE.FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no login form at %s", resp.Request.URL)
	}
	form := url.Values{"username": {user}, "password": {password}, "authRequestID": {string(m[1])}}
	resp, err = client.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	u, _ := url.Parse(public)
	for _, c := range j.Cookies(u) {
		if c.Name == "__Host-bff" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("no session after the login (status %d at %s)", resp.StatusCode, resp.Request.URL.Path)
}

// load sends requests to t for d from conns connections. With rate > 0 it
// is open-loop: requests are scheduled at that total rate whatever the
// answers take, so a slow server cannot slow the load down and hide its
// queue. Latency counts from the moment a request is sent: counting from
// the scheduled time would add the load generator's own wake-up delays,
// which share these CPUs, to every target alike and only add noise. With
// rate 0 each connection sends as fast as it gets answers.
func load(ctx context.Context, t target, conns int, d time.Duration, rate float64) (rps float64, lat []time.Duration, errs int) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range conns {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 4096)
			bad := 0
			interval := time.Duration(0)
			next := start
			if rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(conns) / rate)
				next = start.Add(time.Duration(w) * interval / time.Duration(conns))
			}
			for {
				if rate > 0 {
					if next.After(end) {
						break
					}
					if wait := time.Until(next); wait > 0 {
						time.Sleep(wait)
					}
				} else if time.Now().After(end) {
					break
				}
				sent := time.Now()
				if rate > 0 {
					next = next.Add(interval)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
				req.Header = t.header.Clone()
				resp, err := client.Do(req)
				if err != nil {
					bad++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad++
					continue
				}
				mine = append(mine, time.Since(sent))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(len(lat)) / time.Since(start).Seconds(), lat, errs
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianDur(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Run measures every target: peak throughput with closed-loop load, then
// latency at half of the bare proxy's peak rate. The targets take turns in
// short slices, so that the machine's drift (these are shared machines)
// hits all of them alike, and each target's percentiles come from all of
// its slices together.
func Run(ctx context.Context, opts Options) ([]Result, error) {
	if opts.Slice <= 0 || opts.Slice > opts.Duration {
		opts.Slice = opts.Duration
	}
	s, err := newStack(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	// Warm up connections and caches.
	for _, t := range s.targets {
		load(ctx, t, opts.Conns, opts.Slice/2, 0)
	}
	turns := int(opts.Duration / opts.Slice)
	res := make([]Result, len(s.targets))
	peak := phase(ctx, s.targets, opts, turns, 0)
	for i, t := range s.targets {
		res[i] = Result{Target: t.name, RPS: peak[i].rps(), P50: peak[i].pct(0.5), P99: peak[i].pct(0.99),
			Errors: peak[i].errs, MinRPS: peak[i].minRPS, MaxRPS: peak[i].maxRPS}
		opts.Logf("peak       %-20s %8.0f req/s (slices %0.f-%0.f)  p50 %v  p99 %v  errors %d", t.name, res[i].RPS, res[i].MinRPS, res[i].MaxRPS, res[i].P50, res[i].P99, res[i].Errors)
	}
	half := res[0].RPS / 2
	at := phase(ctx, s.targets, opts, turns, half)
	for i, t := range s.targets {
		res[i].HalfP50, res[i].HalfP99 = at[i].pct(0.5), at[i].pct(0.99)
		res[i].Errors += at[i].errs
		opts.Logf("%5.0f/s    %-20s p50 %v  p99 %v  errors %d", half, t.name, res[i].HalfP50, res[i].HalfP99, at[i].errs)
	}
	return res, nil
}

// tally is one target's sum over the slices of a phase.
type tally struct {
	count          int
	elapsed        time.Duration
	lat            []time.Duration
	errs           int
	minRPS, maxRPS float64
	sorted         bool
}

func (t *tally) rps() float64 { return float64(t.count) / t.elapsed.Seconds() }

func (t *tally) pct(p float64) time.Duration {
	if !t.sorted {
		slices.Sort(t.lat)
		t.sorted = true
	}
	return percentile(t.lat, p)
}

func phase(ctx context.Context, targets []target, opts Options, n int, rate float64) []*tally {
	out := make([]*tally, len(targets))
	for i := range out {
		out[i] = &tally{}
	}
	for range n {
		for i, t := range targets {
			began := time.Now()
			r, lat, e := load(ctx, t, opts.Conns, opts.Slice, rate)
			tl := out[i]
			tl.count += len(lat)
			tl.elapsed += time.Since(began)
			tl.lat = append(tl.lat, lat...)
			tl.errs += e
			if tl.minRPS == 0 || r < tl.minRPS {
				tl.minRPS = r
			}
			tl.maxRPS = max(tl.maxRPS, r)
		}
	}
	return out
}

// bufferPool is an httputil.BufferPool of 32 KB buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
