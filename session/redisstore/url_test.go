package redisstore

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseURLStandalone(t *testing.T) {
	for _, tc := range []struct {
		url              string
		addr, user, pass string
		db               int
		tls              bool
		prefix           string
	}{
		{url: "redis://localhost", addr: "localhost:6379", prefix: DefaultPrefix},
		{url: "redis://127.0.0.1:6380/2", addr: "127.0.0.1:6380", db: 2, prefix: DefaultPrefix},
		{url: "redis://:pw@h:1/3?prefix=app1:", addr: "h:1", pass: "pw", db: 3, prefix: "app1:"},
		{url: "redis://u:p%40ss@h?db=4&prefix=a%26b", addr: "h:6379", user: "u", pass: "p@ss", db: 4, prefix: "a&b"},
		{url: "redis://u:p/s@ss@h", addr: "h:6379", user: "u", pass: "p/s@ss", prefix: DefaultPrefix},
		{url: "rediss://u@cache.example:6380", addr: "cache.example:6380", user: "u", tls: true, prefix: DefaultPrefix},
		{url: "redis://[::1]:7000", addr: "[::1]:7000", prefix: DefaultPrefix},
		{url: "redis://[::1]", addr: "[::1]:6379", prefix: DefaultPrefix},
	} {
		c, err := parseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		o := c.simple
		if o == nil {
			t.Errorf("%s: not a standalone client", tc.url)
			continue
		}
		if o.Addr != tc.addr || o.Username != tc.user || o.Password != tc.pass || o.DB != tc.db ||
			(o.TLSConfig != nil) != tc.tls || c.prefix != tc.prefix {
			t.Errorf("%s: got addr %q user %q password %q db %d tls %v prefix %q",
				tc.url, o.Addr, o.Username, o.Password, o.DB, o.TLSConfig != nil, c.prefix)
		}
		if tc.tls && o.TLSConfig.ServerName != strings.Split(tc.addr, ":")[0] {
			t.Errorf("%s: TLS server name %q", tc.url, o.TLSConfig.ServerName)
		}
	}
}

func TestParseURLDefaults(t *testing.T) {
	c, err := parseURL("redis://h")
	if err != nil {
		t.Fatal(err)
	}
	o := c.simple
	if o.DialTimeout != DefaultDialTimeout || o.ReadTimeout != DefaultIOTimeout || o.WriteTimeout != DefaultIOTimeout ||
		o.MaxRetries != DefaultMaxRetries || o.DialerRetries != 1 || !o.ContextTimeoutEnabled {
		t.Fatalf("defaults: %+v", o)
	}
	c, err = parseURL("redis://h?dial_timeout=3s&read_timeout=4&write_timeout=5s&max_retries=-1&pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	o = c.simple
	if o.DialTimeout != 3*time.Second || o.ReadTimeout != 4*time.Second || o.WriteTimeout != 5*time.Second ||
		o.MaxRetries != -1 || o.PoolSize != 7 {
		t.Fatalf("URL options not kept: %+v", o)
	}
}

func TestParseURLCluster(t *testing.T) {
	c, err := parseURL("rediss-cluster://u:p@n1:7000,n2:7001,n3?prefix=x:&read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	o := c.cluster
	if o == nil {
		t.Fatal("not a cluster client")
	}
	if want := []string{"n1:7000", "n2:7001", "n3:6379"}; !slices.Equal(o.Addrs, want) {
		t.Errorf("Addrs = %v, want %v", o.Addrs, want)
	}
	if o.Username != "u" || o.Password != "p" || c.prefix != "x:" || o.ReadTimeout != 2*time.Second ||
		o.DialTimeout != DefaultDialTimeout || o.MaxRetries != DefaultMaxRetries {
		t.Errorf("got %+v, prefix %q", o, c.prefix)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "" {
		t.Errorf("TLS config %+v: want one that checks each node by its own name", o.TLSConfig)
	}
	c, err = parseURL("redis-cluster://n1")
	if err != nil || c.cluster == nil || c.cluster.TLSConfig != nil || !slices.Equal(c.cluster.Addrs, []string{"n1:6379"}) {
		t.Errorf("redis-cluster://n1: %+v, %v", c, err)
	}
}

func TestParseURLSentinel(t *testing.T) {
	c, err := parseURL("redis-sentinel://u:p@s1,s2:26380/mymaster/3?prefix=x:&sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	o := c.failover
	if o == nil {
		t.Fatal("not a failover client")
	}
	if want := []string{"s1:26379", "s2:26380"}; !slices.Equal(o.SentinelAddrs, want) {
		t.Errorf("SentinelAddrs = %v, want %v", o.SentinelAddrs, want)
	}
	if o.MasterName != "mymaster" || o.DB != 3 || o.Username != "u" || o.Password != "p" ||
		o.SentinelUsername != "" || o.SentinelPassword != "sp" || c.prefix != "x:" ||
		o.DialTimeout != DefaultDialTimeout || !o.ContextTimeoutEnabled {
		t.Errorf("got %+v, prefix %q", o, c.prefix)
	}
	c, err = parseURL("rediss-sentinel://s1/m?db=2")
	if err != nil || c.failover == nil || c.failover.MasterName != "m" || c.failover.DB != 2 ||
		c.failover.TLSConfig == nil || c.failover.TLSConfig.ServerName != "" {
		t.Errorf("rediss-sentinel://s1/m?db=2: %+v, %v", c, err)
	}
}

// Bad URLs fail with an error that says what is wrong, and never shows a
// password.
func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"localhost:6379", "want redis://"},
		{"http://h", `unknown scheme "http"`},
		{"redis-ring://h", `unknown scheme "redis-ring"`},
		{"unix:///tmp/redis.sock", `unknown scheme "unix"`},
		{"redis://", "no host"},
		{"redis://u:secret@", "no host"},
		{"redis://h1,h2", "2 hosts: use redis-cluster"},
		{"redis://h:port", `bad port "port"`},
		{"redis://h:99999", `bad port "99999"`},
		{"redis://::1", "IPv6 in brackets"},
		{"redis://h,", "IPv6 in brackets"},
		{"redis://h/x", "invalid database number"},
		{"redis://u:secret@h/1/2", "invalid URL path"},
		{"redis://h?prefix=", "prefix must be given once and not be empty"},
		{"redis://h?prefix=a&prefix=b", "prefix must be given once"},
		{"redis://u:secret@h?frobnicate=1", "unexpected option: frobnicate"},
		{"redis://h?read_timeout=soon", "invalid read_timeout"},
		{"redis://h#frag", "unexpected fragment"},
		{"redis://u:sec%zzret@h", "bad percent-encoding"},
		{"redis-cluster://h/0", "a cluster URL takes no path"},
		{"redis-sentinel://u:secret@s1,s2", "want the master name as the path"},
		{"redis-sentinel://s1/m?master_name=n", "option master_name"},
		{"redis-sentinel://s1/m?password=secret", "option password"},
	} {
		err := CheckURL(tc.url)
		if err == nil {
			t.Errorf("%s: no error", tc.url)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "redisstore: ") {
			t.Errorf("%s: %q, want it to mention %q", tc.url, msg, tc.want)
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("%s: %q shows the password", tc.url, msg)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://h":                                   "redis://h",
		"redis://u@h/0":                               "redis://u@h/0",
		"redis://u:pw@h/0?db=1":                       "redis://u:xxxxx@h/0?db=1",
		"redis://:p/w@x@h:1":                          "redis://:xxxxx@h:1",
		"redis-sentinel://s/m?password=pw&a":          "redis-sentinel://s/m?password=xxxxx&a",
		"redis-sentinel://s/m?sentinel_password=pw#f": "redis-sentinel://s/m?sentinel_password=xxxxx#f",
		"nonsense":                                    "nonsense",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
