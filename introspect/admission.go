package introspect

// Admission: which cache misses may cost an introspection call, and when.
// A client may cause only so many calls per second (ClientRate, charged once
// per shared call), and only MaxConcurrency calls run at once; past either
// bound the verifier answers at once instead of queueing behind a slow
// authorization server.

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/internal/lru"
)

const (
	// defaultShedWait is how long a new cache miss waits for an
	// introspection slot before it is shed.
	defaultShedWait = 2 * time.Second
	// overloadedRetryAfter is the RetryAfter of a shed request.
	overloadedRetryAfter = time.Second
	// maxClientLimiters bounds the per-client limiter table: the client
	// address is chosen by whoever connects, so the table must not grow with
	// it. Past the bound the least recently used limiter is dropped.
	maxClientLimiters = 10_000
	// clientLimiterIdle is how long an unused limiter is kept (at least
	// the time its bucket takes to refill, so dropping it loses nothing).
	clientLimiterIdle = 10 * time.Minute
)

type clientKey struct{}

// WithClient records the address of the client a request comes from, for
// the per-client rate limit on cache misses (Config.ClientRate). A request
// whose context carries no client address (or "") is not rate-limited.
func WithClient(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

func clientFrom(ctx context.Context) string {
	s, _ := ctx.Value(clientKey{}).(string)
	return s
}

// clientLimiters is a bounded table of per-client token buckets.
type clientLimiters struct {
	limit rate.Limit
	burst int
	idle  time.Duration

	mu    sync.Mutex
	table *lru.Map[string, *clientLimiter]
}

type clientLimiter struct {
	lim  *rate.Limiter
	last time.Time
}

func newClientLimiters(limit rate.Limit, burst, maxEntries int) *clientLimiters {
	idle := clientLimiterIdle
	if limit > 0 {
		if refill := time.Duration(float64(burst) / float64(limit) * float64(time.Second)); refill > idle {
			idle = refill
		}
	}
	return &clientLimiters{limit: limit, burst: burst, idle: idle, table: lru.New[string, *clientLimiter](maxEntries)}
}

// allow takes one token from addr's bucket at now. When the bucket is
// empty it returns false and how long until a token is available.
func (c *clientLimiters) allow(addr string, now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Drop limiters idle long enough to have refilled completely.
	c.table.DropOldestWhile(func(cl *clientLimiter) bool { return now.Sub(cl.last) >= c.idle })
	cl, ok := c.table.Get(addr)
	if ok {
		c.table.Touch(addr)
	} else {
		cl = &clientLimiter{lim: rate.NewLimiter(c.limit, c.burst)}
		c.table.Put(addr, cl)
	}
	cl.last = now
	if cl.lim.AllowN(now, 1) {
		return 0, true
	}
	missing := 1 - cl.lim.TokensAt(now)
	return time.Duration(missing / float64(c.limit) * float64(time.Second)), false
}

func (c *clientLimiters) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table.Len()
}

// allowClient applies the per-client rate limit to a cache miss.
func (v *Verifier) allowClient(ctx context.Context) error {
	if v.limiters == nil {
		return nil
	}
	addr := clientFrom(ctx)
	if addr == "" {
		return nil
	}
	wait, ok := v.limiters.allow(addr, v.cfg.Now())
	if ok {
		return nil
	}
	v.obs.Shed(ShedRate)
	ra := (wait + time.Second - 1).Truncate(time.Second)
	return &RateLimitError{RetryAfter: max(ra, time.Second)}
}

// acquire takes an introspection slot, waiting at most shedWait (or until
// ctx ends) when all Config.MaxConcurrency slots are busy.
func (v *Verifier) acquire(ctx context.Context) error {
	select {
	case v.sem <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(v.shedWait)
	defer t.Stop()
	select {
	case v.sem <- struct{}{}:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	v.obs.Shed(ShedConcurrency)
	v.log.Warn("introspection: overloaded, request shed", "max_concurrency", cap(v.sem))
	return &UnavailableError{RetryAfter: overloadedRetryAfter, Err: ErrOverloaded}
}

func (v *Verifier) release() { <-v.sem }
