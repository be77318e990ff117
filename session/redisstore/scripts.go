package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts below are the store's atomic steps. Each touches exactly
// one key, named in KEYS[1], so Redis Cluster runs them wherever that key
// lives (multi-key scripts would need every key in one slot). Times are
// Unix milliseconds; "now" is always an argument, read from the store's
// clock, never Redis's TIME, so that expiry is judged as Get judges it.
// Decimal fields are compared with tonumber: Lua numbers are doubles, exact
// for milliseconds, and a value that is written back is always one of the
// original strings, never a number Lua formatted.

// createSrc stores a new session unless a live one has the key.
//
//	KEYS: session hash
//	ARGV: now, iss, sub, sid, created, expires, idle, data, end (PEXPIREAT)
//	returns 1 when stored, 0 when a live session is in the way
const createSrc = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local t = redis.call('HMGET', KEYS[1], 'expires', 'idle', 'version')
  local now, e, i = tonumber(ARGV[1]), tonumber(t[1]), tonumber(t[2])
  if not e or not i or not tonumber(t[3]) then return redis.error_reply('ERR malformed session record') end
  if now < e and now < i then return 0 end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'version', '1', 'iss', ARGV[2], 'sub', ARGV[3], 'sid', ARGV[4],
  'created', ARGV[5], 'expires', ARGV[6], 'idle', ARGV[7], 'data', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], ARGV[9])
return 1
`

// updateSrc is Update's compare-and-set on the version. The creation time
// stays as stored.
//
//	KEYS: session hash
//	ARGV: now, version, iss, sub, sid, expires, idle, data, end (PEXPIREAT)
//	returns {1, new version}, {0} when missing or expired,
//	or {2, stored version} on a version mismatch
const updateSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local t = redis.call('HMGET', KEYS[1], 'version', 'expires', 'idle')
local now, e, i = tonumber(ARGV[1]), tonumber(t[2]), tonumber(t[3])
if not tonumber(t[1]) or not e or not i then return redis.error_reply('ERR malformed session record') end
if now >= e or now >= i then return {0} end
if t[1] ~= ARGV[2] then return {2, t[1]} end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'iss', ARGV[3], 'sub', ARGV[4], 'sid', ARGV[5],
  'expires', ARGV[6], 'idle', ARGV[7], 'data', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], ARGV[9])
return {1, v}
`

// touchSrc moves a live session's idle end, never past its absolute end,
// and its server-side expiry with it.
//
//	KEYS: session hash
//	ARGV: now, idle
//	returns 1 when moved, 0 when missing or expired
const touchSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('HMGET', KEYS[1], 'expires', 'idle', 'version')
local now, e, i = tonumber(ARGV[1]), tonumber(t[1]), tonumber(t[2])
if not e or not i or not tonumber(t[3]) then return redis.error_reply('ERR malformed session record') end
if now >= e or now >= i then return 0 end
local idle = ARGV[2]
if tonumber(idle) > e then idle = t[1] end
redis.call('HSET', KEYS[1], 'idle', idle)
redis.call('PEXPIREAT', KEYS[1], idle)
return 1
`

// deleteSrc deletes a session, whatever it holds, and returns the fields
// its index entries are named by.
//
//	KEYS: session hash
//	returns {iss, sub, sid} (nil elements if missing), or nil when there
//	was no such hash
const deleteSrc = `
local t = false
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  t = redis.call('HMGET', KEYS[1], 'iss', 'sub', 'sid')
end
redis.call('DEL', KEYS[1])
return t
`

// deleteMatchingSrc deletes a session reached through an index if it still
// belongs there, and returns it. Index entries can be stale (the session
// has since moved to another sid, or is gone); only the session's own
// fields decide.
//
//	KEYS: session hash
//	ARGV: iss, "sid" or "sub", value
//	returns every field in recordFields order, or nil when the session is
//	missing or does not match
const deleteMatchingSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local t = redis.call('HMGET', KEYS[1], 'version', 'iss', 'sub', 'sid', 'created', 'expires', 'idle', 'data')
local v = t[3]
if ARGV[2] == 'sid' then v = t[4] end
if t[2] ~= ARGV[1] or v ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1])
return t
`

// indexAddSrc adds a session to an index set with its absolute end as
// score, raising (never lowering) an existing score, drops the members
// whose score has passed, and makes the set live at least as long as its
// latest member. A sorted set rather than a set because the scores make
// the trimming safe (see the package documentation). PEXPIRETIME needs
// Redis 7.0; it is -1 for a set without expiry.
//
//	KEYS: index set
//	ARGV: member, score (absolute end), now
const indexAddSrc = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
`

// releaseSrc deletes a lock only if it still holds the lease's token.
//
//	KEYS: lock
//	ARGV: token
const releaseSrc = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// scripts are a store's loaded-on-demand Lua scripts.
type scripts struct {
	create, update, touch, delete, deleteMatching, indexAdd, release *redis.Script
}

func newScripts() scripts {
	return scripts{
		create:         redis.NewScript(createSrc),
		update:         redis.NewScript(updateSrc),
		touch:          redis.NewScript(touchSrc),
		delete:         redis.NewScript(deleteSrc),
		deleteMatching: redis.NewScript(deleteMatchingSrc),
		indexAdd:       redis.NewScript(indexAddSrc),
		release:        redis.NewScript(releaseSrc),
	}
}

// call is one script run of a pipeline.
type call struct {
	script *redis.Script
	key    string
	args   []any
}

// runAll runs calls in one pipeline, by digest (EVALSHA), and runs again by
// source, in a second pipeline, those the server did not know: its script
// cache is empty after a restart or a failover. The pipeline spans nodes in
// a cluster. It returns each call's command; their errors are the caller's
// to check.
func (s *Store) runAll(ctx context.Context, calls []call) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	if len(calls) == 0 {
		return cmds
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, []string{c.key}, c.args...)
		}
		return nil
	})
	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return cmds
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range again {
			c := calls[i]
			cmds[i] = c.script.Eval(ctx, p, []string{c.key}, c.args...)
		}
		return nil
	})
	return cmds
}
