package redisstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Connection defaults of [Open], for what the URL does not set. They keep
// every call short when Redis is unreachable (a refused connection fails at
// once, a silent host after about two seconds) instead of go-redis's
// defaults, which retry long enough to stall every request.
const (
	DefaultDialTimeout = time.Second // per connection attempt; dial_timeout
	DefaultIOTimeout   = time.Second // per read and per write; read_timeout, write_timeout
	DefaultMaxRetries  = 1           // retries of a failed command; max_retries
)

// Open connects to the Redis that rawURL names, checks that it answers,
// and returns a store on it; Close closes the connection. The URL is one of
//
//	redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]
//	rediss://...                                        (TLS)
//	redis-cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][?OPTIONS]
//	rediss-cluster://...                                (TLS)
//	redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB][?OPTIONS]
//	rediss-sentinel://...                               (TLS)
//
// The port defaults to 6379, and to 26379 for Sentinel. A cluster URL
// names one or more nodes to learn the cluster from; a Sentinel URL names
// Sentinels and the master name they know the primary by. USER and
// PASSWORD authenticate to Redis itself (for Sentinel: to the primary and
// its replicas); a Sentinel's own credentials, if it has any, go in the
// options sentinel_username and sentinel_password. With TLS every node's
// certificate is checked against the host name the node is reached by.
//
// OPTIONS are go-redis's, named as in [redis.ParseURL] (dial_timeout=2s,
// pool_size=20, db=1, skip_verify=true, ...), plus prefix=, the store's key
// prefix (default [DefaultPrefix]; see [WithPrefix], which overrides it).
// Unknown options are an error. When the URL does not set them, Open sets
// the timeouts to [DefaultDialTimeout] and [DefaultIOTimeout], the retries
// to [DefaultMaxRetries], one dial attempt per connection, and makes the
// client honour the deadlines of the contexts it is called with.
//
// Errors name the URL with its passwords masked.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	c, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	client := c.newClient()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", c.redacted, err)
	}
	if err := checkVersion(ctx, client); err != nil {
		client.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", c.redacted, err)
	}
	s := New(client, append([]Option{WithPrefix(c.prefix)}, opts...)...)
	s.owned = true
	return s, nil
}

// checkVersion refuses a server older than Redis 7.0, whose SET lacks NX
// with GET and which has no PEXPIRETIME: Get and Ping would work on it, and
// every login, lock and logout fail. A server whose INFO is disabled or
// does not name a version is given the benefit of the doubt.
func checkVersion(ctx context.Context, client redis.UniversalClient) error {
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return nil
	}
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		major, _, _ := strings.Cut(v, ".")
		if n, err := strconv.Atoi(major); err == nil && n < 7 {
			return fmt.Errorf("the server is Redis %s; the store needs 7.0 or later", v)
		}
		return nil
	}
	return nil
}

// CheckURL reports whether rawURL is a URL that [Open] accepts, without
// connecting.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

// clientConfig is a parsed URL: one of the three go-redis option sets.
type clientConfig struct {
	redacted string
	prefix   string
	simple   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

func (c *clientConfig) newClient() redis.UniversalClient {
	switch {
	case c.cluster != nil:
		return redis.NewClusterClient(c.cluster)
	case c.failover != nil:
		return redis.NewFailoverClient(c.failover)
	default:
		return redis.NewClient(c.simple)
	}
}

// parseURL turns one of Open's URLs into go-redis options: it takes off
// what is the store's (prefix) or this package's syntax (host lists, the
// master name in the path), rewrites the rest into the URL form of the
// go-redis parser for the deployment, and lets that parser check the
// options.
func parseURL(raw string) (*clientConfig, error) {
	c := &clientConfig{redacted: redact(raw)}
	var err error
	fail := func(format string, args ...any) (*clientConfig, error) {
		return nil, fmt.Errorf("redisstore: URL %s: %s", c.redacted, fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return fail("want redis://HOST[:PORT][/DB], rediss://, redis-cluster://, or redis-sentinel://")
	}
	base, kind, _ := strings.Cut(scheme, "-")
	if (base != "redis" && base != "rediss") || (kind != "" && kind != "cluster" && kind != "sentinel") {
		return fail("unknown scheme %q (want redis, rediss, redis-cluster, rediss-cluster, redis-sentinel or rediss-sentinel)", scheme)
	}

	// The host list is not a URL host: cut the URL up by hand, parse the
	// userinfo on its own (so that a password may hold '/' and '@',
	// escaped or not; '?' and '#' must be escaped) and the path and query
	// with a placeholder host.
	head, tail := rest, ""
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		head, tail = rest[:i], rest[i:]
	}
	var user *url.Userinfo
	if at := strings.LastIndex(head, "@"); at >= 0 {
		if user, err = parseUserinfo(head[:at]); err != nil {
			return fail("%v", err)
		}
		head = head[at+1:]
	}
	hostList, path := head, ""
	if i := strings.Index(head, "/"); i >= 0 {
		hostList, path = head[:i], head[i:]
	}
	u, err := url.Parse("redis://placeholder" + path + tail)
	if err != nil {
		return fail("%v", unwrapURLError(err))
	}
	u.User = user
	if u.Fragment != "" {
		return fail("unexpected fragment")
	}
	defPort := "6379"
	if kind == "sentinel" {
		defPort = "26379"
	}
	hosts, err := splitHosts(hostList, defPort)
	if err != nil {
		return fail("%v", err)
	}
	q := u.Query()
	given := make(map[string]bool, len(q))
	for name := range q {
		given[name] = true
	}
	c.prefix = DefaultPrefix
	if q.Has("prefix") {
		if c.prefix = q.Get("prefix"); c.prefix == "" || len(q["prefix"]) > 1 {
			return fail("prefix must be given once and not be empty (leave it out for %q)", DefaultPrefix)
		}
		q.Del("prefix")
	}

	out := url.URL{Scheme: base, User: u.User, Host: hosts[0]}
	switch kind {
	case "":
		if len(hosts) > 1 {
			return fail("%d hosts: use redis-cluster:// or redis-sentinel:// for more than one", len(hosts))
		}
		out.Path = u.Path
		out.RawQuery = q.Encode()
		o, err := redis.ParseURL(out.String())
		if err != nil {
			return fail("%v", err)
		}
		c.simple = o
		setDefaults(given, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.DialerRetries)
		o.ContextTimeoutEnabled = true

	case "cluster":
		if u.Path != "" && u.Path != "/" {
			return fail("a cluster URL takes no path: a cluster has database 0 only")
		}
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		out.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(out.String())
		if err != nil {
			return fail("%v", err)
		}
		c.cluster = o
		setDefaults(given, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.DialerRetries)
		o.ContextTimeoutEnabled = true
		perHostTLS(o.TLSConfig)

	case "sentinel":
		master, db, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if master == "" {
			return fail("want the master name as the path: %s://SENTINEL[,SENTINEL...]/MASTER[/DB]", scheme)
		}
		for _, name := range []string{"master_name", "username", "password"} {
			if q.Has(name) {
				return fail("option %s: the master name goes in the path, its credentials before the hosts", name)
			}
		}
		q.Set("master_name", master)
		if u.User != nil {
			q.Set("username", u.User.Username())
			if p, ok := u.User.Password(); ok {
				q.Set("password", p)
			}
		}
		out.User = nil
		if q.Has("sentinel_username") || q.Has("sentinel_password") {
			if p := q.Get("sentinel_password"); q.Has("sentinel_password") {
				out.User = url.UserPassword(q.Get("sentinel_username"), p)
			} else {
				out.User = url.User(q.Get("sentinel_username"))
			}
			q.Del("sentinel_username")
			q.Del("sentinel_password")
		}
		if db != "" {
			out.Path = "/" + db
		}
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		out.RawQuery = q.Encode()
		o, err := redis.ParseFailoverURL(out.String())
		if err != nil {
			return fail("%v", err)
		}
		c.failover = o
		setDefaults(given, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.DialerRetries)
		if !given["context_timeout_enabled"] {
			o.ContextTimeoutEnabled = true
		}
		perHostTLS(o.TLSConfig)
	}
	return c, nil
}

// setDefaults applies Open's connection defaults to the options the URL
// did not set.
func setDefaults(given map[string]bool, dial, read, write *time.Duration, retries, dialRetries *int) {
	if !given["dial_timeout"] {
		*dial = DefaultDialTimeout
	}
	if !given["read_timeout"] {
		*read = DefaultIOTimeout
	}
	if !given["write_timeout"] {
		*write = DefaultIOTimeout
	}
	if !given["max_retries"] {
		*retries = DefaultMaxRetries
	}
	if !given["dialer_retries"] {
		*dialRetries = 1
	}
}

// perHostTLS makes a multi-host TLS configuration check each host's
// certificate against that host's own name (crypto/tls takes it from the
// address when ServerName is empty), where go-redis would check every
// node against the first host's.
func perHostTLS(cfg *tls.Config) {
	if cfg == nil {
		return
	}
	cfg.ServerName = ""
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
}

// splitHosts parses a comma-separated list of HOST[:PORT] into host:port
// addresses. IPv6 addresses go in brackets.
func splitHosts(list, defPort string) ([]string, error) {
	if list == "" {
		return nil, fmt.Errorf("no host")
	}
	var addrs []string
	for _, h := range strings.Split(list, ",") {
		host, port := h, defPort
		if strings.HasPrefix(h, "[") || strings.Contains(h, ":") {
			if strings.HasSuffix(h, "]") {
				host = h[1 : len(h)-1]
			} else {
				var err error
				if host, port, err = net.SplitHostPort(h); err != nil {
					return nil, fmt.Errorf("host %q: want HOST[:PORT], IPv6 in brackets", h)
				}
			}
		}
		if host == "" || strings.ContainsAny(host, "[]/") {
			return nil, fmt.Errorf("host %q: want HOST[:PORT], IPv6 in brackets", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("host %q: bad port %q", h, port)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	return addrs, nil
}

// parseUserinfo parses USER[:PASSWORD], each percent-encoded or not.
func parseUserinfo(s string) (*url.Userinfo, error) {
	name, pass, hasPass := strings.Cut(s, ":")
	name, err1 := url.PathUnescape(name)
	pass, err2 := url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("bad percent-encoding in the user name or password")
	}
	if !hasPass {
		return url.User(name), nil
	}
	return url.UserPassword(name, pass), nil
}

// redact returns raw with the password of its userinfo and of its
// password options masked, for error messages.
func redact(raw string) string {
	const mask = "xxxxx"
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		end = i
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		if colon := strings.Index(rest[:at], ":"); colon >= 0 {
			rest = rest[:colon+1] + mask + rest[at:]
		}
	}
	base, query, ok := strings.Cut(rest, "?")
	if !ok {
		return scheme + "://" + rest
	}
	query, fragment, hasFragment := strings.Cut(query, "#")
	params := strings.Split(query, "&")
	for i, p := range params {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && (n == "password" || n == "sentinel_password") {
			params[i] = name + "=" + mask
		}
	}
	out := scheme + "://" + base + "?" + strings.Join(params, "&")
	if hasFragment {
		out += "#" + fragment
	}
	return out
}

// unwrapURLError drops the *url.Error wrapping, which quotes the whole URL
// and with it the password.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
