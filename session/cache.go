package session

import (
	"sync"
)

const cacheShards = 32

// payloadCache keeps opened payloads by session key and version, so that the
// requests of an unchanged session decrypt its tokens once, not once each.
// The store stays the authority: every request still reads the record, and a
// new version (a refresh elsewhere, on another instance) misses the cache.
//
// A bounded map per shard is enough here: evicting an entry costs one
// decryption, so a precise LRU would buy nothing worth its bookkeeping.
type payloadCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[Key]*Session
}

func newPayloadCache(size int) *payloadCache {
	c := &payloadCache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[Key]*Session)
	}
	return c
}

func (c *payloadCache) shard(k Key) *cacheShard {
	return &c.shards[k[0]%cacheShards]
}

// get returns the cached session for rec's key and version. It returns the
// cached *Session itself when rec carries the same timestamps, or a fresh
// Session sharing the cached payload when only the idle expiry has moved.
func (c *payloadCache) get(rec *Record) *Session {
	if c == nil {
		return nil
	}
	sh := c.shard(rec.Key)
	sh.mu.RLock()
	s := sh.entries[rec.Key]
	sh.mu.RUnlock()
	// Only the idle expiry may differ from the record the payload was
	// opened with; anything else must go through Open again, which
	// authenticates it.
	if s == nil || s.Version != rec.Version || !s.ExpiresAt.Equal(rec.ExpiresAt) || !s.CreatedAt.Equal(rec.CreatedAt) ||
		s.Issuer != rec.Issuer || s.Subject != rec.Subject || s.SID != rec.SID {
		return nil
	}
	if s.IdleExpiresAt.Equal(rec.IdleExpiresAt) {
		return s
	}
	fresh := fromRecord(rec, s.Payload)
	c.put(rec, fresh)
	return fresh
}

func (c *payloadCache) put(rec *Record, s *Session) {
	if c == nil {
		return
	}
	sh := c.shard(rec.Key)
	sh.mu.Lock()
	if len(sh.entries) >= c.perShard {
		// Drop about an eighth, in Go's random map order.
		drop := max(1, len(sh.entries)/8)
		for k := range sh.entries {
			delete(sh.entries, k)
			drop--
			if drop == 0 {
				break
			}
		}
	}
	sh.entries[rec.Key] = s
	sh.mu.Unlock()
}

func (c *payloadCache) forget(k Key) {
	if c == nil {
		return
	}
	sh := c.shard(k)
	sh.mu.Lock()
	delete(sh.entries, k)
	sh.mu.Unlock()
}
