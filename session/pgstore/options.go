package pgstore

import "time"

// Option configures [New] and [Open].
type Option func(*options)

type options struct {
	now       func() time.Time
	schema    string
	migrate   bool
	opTimeout time.Duration
}

// DefaultOpTimeout bounds each operation whose context has no deadline of
// its own (see [WithOpTimeout]).
const DefaultOpTimeout = 5 * time.Second

func newOptions(opts []Option) options {
	o := options{now: time.Now, schema: "public", migrate: true, opTimeout: DefaultOpTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock makes the store judge session expiry against now instead of
// time.Now. Locks and one-time ids expire by the database server's clock
// whatever the option says: they must agree across every bff instance, and
// the server's clock is the one clock they all share.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithSchema puts the store's tables in schema instead of public, so that
// several bff deployments (or a bff and its application) can share one
// database. The name is quoted, never interpreted: "Bff" and "bff" are two
// schemas.
func WithSchema(schema string) Option {
	return func(o *options) { o.schema = schema }
}

// WithMigrate sets whether [New] applies pending migrations (the default) or
// only checks that there are none, failing with [ErrMigrationsPending]
// otherwise. Turn it off where bff's database role may not change the schema
// and operators run [Migrate] themselves.
func WithMigrate(migrate bool) Option {
	return func(o *options) { o.migrate = migrate }
}

// WithOpTimeout bounds each operation (each batch, for DeleteExpired) whose
// context has no deadline of its own; default [DefaultOpTimeout], 0 for no
// bound. A server that stops answering without closing the connection
// would otherwise hold a request until the operating system gives up on
// TCP, many minutes later; this turns it into an error within seconds.
func WithOpTimeout(d time.Duration) Option {
	return func(o *options) { o.opTimeout = d }
}
