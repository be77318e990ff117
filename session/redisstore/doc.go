// Package redisstore is a [session.Store] on Redis 7.0 or later (or a
// compatible server): standalone, behind Sentinel, or a Redis Cluster,
// through a go-redis UniversalClient. Many bff instances share sessions
// through it. [Open] takes a URL; [New] takes a client of your own.
//
// # Keys
//
// Under a prefix (default "bff:"; see [WithPrefix]):
//
//	s:{HEX}        hash: version iss sub sid created expires idle data,
//	               expiring on the server at the session's end
//	sub:{DIGEST}   sorted set: the HEX of sessions of one (iss, sub), scored
//	               by their absolute end; expiring after its last member
//	sid:{DIGEST}   sorted set: the same for one (iss, sid), sid not empty
//	lock:NAME      string: the holder's random token, with the lock's ttl
//	jti:ID         string: a random token, with the id's ttl
//
// HEX is the hex form of the session key, DIGEST a hash of the issuer and
// value (see indexKey), so that lookalike pairs never share a set. Times
// are Unix milliseconds; the store keeps session times to the millisecond.
// The braces are hash tags: in a cluster, each session, and each index
// set, lives in one slot, and sessions spread over the slots.
//
// # Operations
//
// Get is one HMGET: it is on the path of every proxied request. While more
// than a few Gets are in flight, further ones go through go-redis's
// autopipeliner, which writes the Gets that arrive together as one batch
// and reads their answers together: under load that saves most of the
// system calls and wake-ups, on both sides, of a round trip each (the load
// benchmark's Redis figure rose from 0.71 to about 0.95 of a bare reverse
// proxy), while a lightly loaded bff sends each Get directly. Create,
// Update and Touch are Lua scripts on the session's one key, which judge
// expiry by the store's clock ("now" is an argument) and set the key's
// server-side expiry (PEXPIREAT) to the session's end, so that Redis drops
// ended sessions without a sweep; DeleteExpired has nothing to do. Update
// compares and sets the version inside its script. Every script touches a
// single key, so Redis Cluster never refuses one as CROSSSLOT. Lock and
// SeenJTI are SET NX PX, their ttls on the server's clock.
//
// Round trips: Get, Touch, Lock, SeenJTI, Release: 1. Create, Update,
// Delete, ListBySub: 2. DeleteBySID, DeleteBySub: 3, whatever the number
// of sessions.
//
// # Indexes
//
// An index set lives in another slot than its sessions, so it cannot be
// changed in the same atomic step. The store keeps this invariant
// instead: a session whose absolute end has not passed is a member of the
// index sets of its current fields, with a score no earlier than that end.
//
//   - Create and Update add the members first (ZADD GT, which never lowers
//     a score) and write the session only after that has succeeded.
//   - Members are removed only when their score has passed (trimmed by
//     index writes and DeleteBySID/DeleteBySub, or with the whole set when
//     it expires), which means their session has ended; or after the
//     store deleted their session. Never because a session looks missing
//     or different: it may be a Create or Update between its two steps.
//   - Touch moves only the idle end, which never passes the absolute end.
//
// Index sets may therefore hold stale members: sessions that ended idle,
// or whose sid or sub an Update changed, until their score passes. Readers
// check every member against the session itself: ListBySub in Go, and
// DeleteBySID and DeleteBySub in the per-session script that deletes the
// session only if it still has the issuer and sid or sub, and returns it.
// Lookups read one set, never scan.
//
// What is left:
//
//   - A Create or Update racing a DeleteBySID or DeleteBySub of the same
//     sid or sub may survive it, if the delete reads the index between the
//     writer's two steps. The delete then simply came first, as it could
//     have with any store: a back-channel logout racing a login of the
//     same OP session.
//   - Delete and DeleteBySID/DeleteBySub remove index members after
//     deleting the session. A Create of the very same key in between would
//     lose its entries; keys are hashes of 256-bit random cookie values.
//   - Trimming goes by the clock of the instance that trims, and Redis
//     drops sessions by its own clock. Clocks that disagree by d can drop a
//     session, or its index entries, up to d early. Keep them synchronized.
//   - go-redis resends a command when the connection breaks after sending
//     it (max_retries). Lock and SeenJTI recognize their own resent SET by
//     its token. A resent Create can report ErrExists, a resent Update
//     ErrConflict, for what was their own success (the caller re-reads and
//     finds it), and a resent DeleteBySID or DeleteBySub may not return the
//     sessions the first attempt deleted.
//   - Redis acknowledges writes before they are on disk or on a replica,
//     unless configured otherwise (appendfsync always, WAIT): a crash or
//     failover can lose the latest writes, such as a rotated refresh token.
//
// # Faults
//
// When Redis cannot be reached every method returns an error, never
// session.ErrNotFound, and with Open's defaults within about two seconds;
// go-redis reconnects when Redis is back, and the store works again. Data
// the store cannot decode makes operations fail with an error wrapping
// [ErrMalformed]; Delete removes it.
package redisstore
