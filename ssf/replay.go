package ssf

import (
	"fmt"
	"sync"
	"time"

	"github.com/mcp-gateway/mcp-gateway/internal/lru"
)

// replayCache remembers the jti of every SET accepted within MaxAge, so the
// same SET delivered twice is refused: RFC 8417 §2.2 makes "jti" unique
// within the transmitter's feed precisely so a recipient can tell whether it
// has already received an event, and a captured SET posted again must not
// act twice. It is bounded: each entry expires once the
// SET's iat check alone would refuse it, and when the cache is full of live
// entries a new SET is not accepted (the transmitter is asked to retry)
// rather than an entry being evicted early, which would reopen its replay
// window. Only SETs whose signature verified reach it, so only the
// transmitter can fill it.
type replayCache struct {
	mu       sync.Mutex // guards seen, and makes check-then-add atomic
	seen     *lru.Map[string, time.Time]
	capacity int
	ttl      time.Duration
}

func newReplayCache(capacity int, ttl time.Duration) (*replayCache, error) {
	if capacity < 1 {
		return nil, fmt.Errorf("replay cache capacity %d must be at least 1", capacity)
	}
	return &replayCache{seen: lru.New[string, time.Time](capacity), capacity: capacity, ttl: ttl}, nil
}

// seenAt reports whether jti is remembered and live at now.
func (c *replayCache) seenAt(jti string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seenLocked(jti, now)
}

// seenLocked is seenAt with c.mu held.
func (c *replayCache) seenLocked(jti string, now time.Time) bool {
	exp, ok := c.seen.Get(jti)
	return ok && now.Before(exp)
}

// reserve records jti as seen at now, or says why it cannot: the jti is
// live already (errReplay), or every slot holds a live entry (*errFull with
// the time until the oldest expires). Entries are added with now + ttl, so
// they expire oldest-first and expired ones are dropped from the old end.
func (c *replayCache) reserve(jti string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seenLocked(jti, now) {
		return errReplay
	}
	c.seen.DropOldestWhile(func(exp time.Time) bool { return !now.Before(exp) })
	if _, present := c.seen.Get(jti); !present && c.seen.Len() >= c.capacity {
		oldest, _ := c.seen.Oldest()
		exp, _ := c.seen.Get(oldest)
		return &errFull{wait: exp.Sub(now)}
	}
	c.seen.Put(jti, now.Add(c.ttl))
	return nil
}

// release forgets jti, so a SET whose processing failed can be delivered
// again.
func (c *replayCache) release(jti string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Remove(jti)
}

type replayError struct{}

func (replayError) Error() string { return "jti already seen" }

var errReplay error = replayError{}

type errFull struct{ wait time.Duration }

func (e *errFull) Error() string { return "replay cache full of live entries" }
