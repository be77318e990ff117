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

	"github.com/gobff/bff"
	"github.com/gobff/bff/devidp"
	"github.com/gobff/bff/proxy"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/boltstore"
	"github.com/gobff/bff/session/memstore"
)

// Options of a benchmark run.
type Options struct {
	Duration time.Duration // per target and round
	Conns    int           // concurrent keep-alive connections
	Rounds   int           // rounds, interleaving the targets; medians are reported
	DataDir  string        // for the bolt store
	Logf     func(format string, args ...any)
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
}

// target is something to send load to.
type target struct {
	name   string
	url    string
	header http.Header
}

// stack is the servers of one run: an upstream, a bare reverse proxy, an
// OP, and bff with a memory and a bolt store.
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

func newStack(ctx context.Context, opts Options) (*stack, error) {
	s := &stack{}
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

	// The OP, for a real login. Its access tokens outlive the run.
	opLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	issuer := "http://" + opLn.Addr().String()

	for _, kind := range []string{"memory", "bolt"} {
		var store session.Store
		if kind == "memory" {
			store = memstore.New()
		} else {
			bs, err := boltstore.Open(filepath.Join(opts.DataDir, "sessions.db"))
			if err != nil {
				return nil, err
			}
			store = bs
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
	for i, kind := range []string{"memory", "bolt"} {
		public := strings.TrimSuffix(s.targets[1+i].url, "/api/items")
		clients = append(clients, devidp.Client{ID: "bench-" + kind, Secret: "bench-secret", RedirectURIs: []string{public + "/signin-oidc"}})
	}
	idp, err := devidp.New(devidp.Config{Issuer: issuer, Clients: clients, AccessTokenLifetime: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	opSrv := &http.Server{Handler: idp, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, opSrv)
	go opSrv.Serve(opLn)

	for i := 1; i < len(s.targets); i++ {
		public := strings.TrimSuffix(s.targets[i].url, "/api/items")
		cookie, err := login(ctx, public, "alice", "alice")
		if err != nil {
			return nil, fmt.Errorf("logging in to %s: %w", s.targets[i].name, err)
		}
		s.targets[i].header = http.Header{"X-Csrf": {"1"}, "Cookie": {"__Host-bff=" + cookie}}
	}
	// The bare proxy gets the same cookie header, so both forward requests
	// of the same size.
	s.targets[0].header.Set("Cookie", s.targets[1].header.Get("Cookie"))
	return s, nil
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
// is open-loop: requests are scheduled at that total rate, and latency
// counts from the scheduled time, so a slow server cannot hide its queue
// (no coordinated omission). With rate 0 each connection sends as fast as
// it gets answers.
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
					sent = next
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
// latency at half of the bare proxy's peak rate, round after round with
// the targets interleaved so that the machine's drift hits all alike.
func Run(ctx context.Context, opts Options) ([]Result, error) {
	s, err := newStack(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	n := len(s.targets)
	rps := make([][]float64, n)
	p50 := make([][]time.Duration, n)
	p99 := make([][]time.Duration, n)
	errs := make([]int, n)
	// Warm up connections, caches and the JIT-less but cache-hungry CPU.
	for _, t := range s.targets {
		load(ctx, t, opts.Conns, opts.Duration/5, 0)
	}
	for round := range opts.Rounds {
		for i, t := range s.targets {
			r, lat, e := load(ctx, t, opts.Conns, opts.Duration, 0)
			slices.Sort(lat)
			rps[i] = append(rps[i], r)
			p50[i] = append(p50[i], percentile(lat, 0.50))
			p99[i] = append(p99[i], percentile(lat, 0.99))
			errs[i] += e
			opts.Logf("round %d peak   %-18s %8.0f req/s  p50 %v  p99 %v  errors %d", round+1, t.name, r, percentile(lat, 0.5), percentile(lat, 0.99), e)
		}
	}
	half := median(rps[0]) / 2
	hp50 := make([][]time.Duration, n)
	hp99 := make([][]time.Duration, n)
	for round := range opts.Rounds {
		for i, t := range s.targets {
			_, lat, e := load(ctx, t, opts.Conns, opts.Duration, half)
			slices.Sort(lat)
			hp50[i] = append(hp50[i], percentile(lat, 0.50))
			hp99[i] = append(hp99[i], percentile(lat, 0.99))
			errs[i] += e
			opts.Logf("round %d %5.0f/s %-18s p50 %v  p99 %v  errors %d", round+1, half, t.name, percentile(lat, 0.5), percentile(lat, 0.99), e)
		}
	}
	var out []Result
	for i, t := range s.targets {
		out = append(out, Result{
			Target: t.name, RPS: median(rps[i]), P50: medianDur(p50[i]), P99: medianDur(p99[i]),
			HalfP50: medianDur(hp50[i]), HalfP99: medianDur(hp99[i]), Errors: errs[i],
		})
	}
	return out, nil
}
