package introspect

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/time/rate"
)

// ErrOverloaded is wrapped by the *UnavailableError returned when a cache
// miss could not get one of Config.MaxConcurrency introspection slots in
// time: the gateway sheds load instead of queueing behind a slow
// authorization server.
var ErrOverloaded = errors.New("introspection overloaded")

// RateLimitError means a client sent more unknown tokens (cache misses) than
// Config.ClientRate allows. It is about the client's behaviour, not about
// the token, so it does not unwrap to auth.ErrInvalidToken; a resource
// server should answer 429 with Retry-After. It is never cached.
type RateLimitError struct {
	// RetryAfter is when the client's bucket holds a token again, rounded up
	// to a whole second (at least 1s).
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string { return "too many unknown tokens from this client" }

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

// Load-shedding and retry constants.
const (
	// DefaultMaxConcurrency is the default Config.MaxConcurrency.
	DefaultMaxConcurrency = 64
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
	// retryJitterMin and retryJitterSpan bound the pause before the single
	// retry of a connection failure: 50-150 ms.
	retryJitterMin  = 50 * time.Millisecond
	retryJitterSpan = 100 * time.Millisecond
)

// clientLimiters is a bounded LRU table of per-client token buckets. It is
// hand-rolled rather than a ristretto cache because a limiter must be
// visible to the very next request from the same client (ristretto's Set is
// asynchronous and may be refused, which would hand a flooding client a new
// full bucket), and because entries are tiny and the table is only touched
// on cache misses.
type clientLimiters struct {
	limit rate.Limit
	burst int
	max   int
	idle  time.Duration

	mu     sync.Mutex
	lru    *list.List // of *clientLimiter, most recently used first
	byAddr map[string]*list.Element
}

type clientLimiter struct {
	addr string
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
	return &clientLimiters{limit: limit, burst: burst, max: maxEntries, idle: idle,
		lru: list.New(), byAddr: make(map[string]*list.Element)}
}

// allow takes one token from addr's bucket at now. When the bucket is
// empty it returns false and how long until a token is available.
func (c *clientLimiters) allow(addr string, now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Drop limiters idle long enough to have refilled completely.
	for el := c.lru.Back(); el != nil && now.Sub(el.Value.(*clientLimiter).last) >= c.idle; el = c.lru.Back() {
		c.remove(el)
	}
	var cl *clientLimiter
	if el, ok := c.byAddr[addr]; ok {
		cl = el.Value.(*clientLimiter)
		c.lru.MoveToFront(el)
	} else {
		for c.lru.Len() >= c.max {
			c.remove(c.lru.Back())
		}
		cl = &clientLimiter{addr: addr, lim: rate.NewLimiter(c.limit, c.burst)}
		c.byAddr[addr] = c.lru.PushFront(cl)
	}
	cl.last = now
	if cl.lim.AllowN(now, 1) {
		return 0, true
	}
	missing := 1 - cl.lim.TokensAt(now)
	return time.Duration(missing / float64(c.limit) * float64(time.Second)), false
}

func (c *clientLimiters) remove(el *list.Element) {
	delete(c.byAddr, el.Value.(*clientLimiter).addr)
	c.lru.Remove(el)
}

func (c *clientLimiters) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
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
	v.obs.Shed("rate")
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
	v.obs.Shed("concurrency")
	v.log.Warn("introspection: overloaded, request shed", "max_concurrency", cap(v.sem))
	return &UnavailableError{RetryAfter: overloadedRetryAfter, Err: ErrOverloaded}
}

func (v *Verifier) release() { <-v.sem }

// retryable reports whether a failed exchange may be tried once more: no
// byte of a response arrived (the connection could not be made, or was
// refused, reset or closed first). A timeout is not retried (the request
// may have been processed and the time budget is spent), nor a certificate
// failure (it would fail again), nor any HTTP status.
func retryable(ctx context.Context, err error, gotResponse bool) bool {
	if gotResponse || ctx.Err() != nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	if errors.As(err, &cve) || errors.As(err, &rhe) {
		return false
	}
	return true
}

// waitRetry pauses 50-150 ms before the retry. It returns false, without
// waiting, when the pause would not fit before ctx's deadline, or when ctx
// ends during it.
func (v *Verifier) waitRetry(ctx context.Context) bool {
	jitter := retryJitterMin + rand.N(retryJitterSpan)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= jitter {
		return false
	}
	if v.beforeRetry != nil {
		v.beforeRetry()
	}
	t := time.NewTimer(jitter)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// serveStale decides whether a stale accepted answer may stand in for a
// failed re-introspection: only when the failure is an *UnavailableError
// (never a verdict about the token, never a refusal of our credentials),
// within Config.StaleIfError after the answer's fresh life, and strictly
// before the token's exp.
func (v *Verifier) serveStale(e *entry, err error) (*auth.TokenInfo, bool) {
	var ue *UnavailableError
	if e == nil || e.info == nil || !errors.As(err, &ue) {
		return nil, false
	}
	now := v.cfg.Now()
	if !now.Before(e.staleUntil) || (!e.exp.IsZero() && !now.Before(e.exp)) {
		return nil, false
	}
	if checkTime(e.exp, e.nbf, now, 0) != nil {
		return nil, false
	}
	v.obs.StaleUse()
	v.log.Warn("serving stale introspection answer", "stale_for", now.Sub(e.until), "err", err)
	return e.info, true
}

// track registers a shared introspection so Close can cancel and wait for
// it; false once the Verifier is closed.
func (v *Verifier) track() bool {
	v.cacheMu.RLock()
	defer v.cacheMu.RUnlock()
	if v.cacheClosed {
		return false
	}
	v.inflight.Add(1)
	return true
}
