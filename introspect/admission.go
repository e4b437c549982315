package introspect

// Admission: which cache misses may cost an introspection call, when, and
// ahead of which others. The rule behind every choice here: shared
// addresses (reverse proxies, office NAT, and above all the MCP platforms,
// which call from a few egress addresses on behalf of all their users)
// carry many honest users, so the gateway limits what proves hostile
// (tokens the authorization server refused), never what is merely new.
//
// A cache miss is one of two kinds:
//
//   - a known token: the authorization server accepted it recently, and
//     its answer only aged out of the cache (CacheMaxTTL) before the
//     token's exp. Re-asking is how a revocation is noticed (RFC 7662 §4
//     lets a resource server cache, bounded by how late it may learn of a
//     revocation); it is never hostile. A known token is never rate
//     limited, never counts against its client's cap, and goes ahead of
//     unknown tokens for introspection slots: a share of the slots is
//     reserved for it, and a freed slot goes to a waiting known token
//     first.
//   - an unknown token: a new user's token, or garbage. Each client may
//     have at most ClientConcurrency of them in flight (waiting for a slot
//     or being introspected), so that one client cannot fill a hanging
//     authorization server; and a client whose tokens the authorization
//     server keeps refusing (inactive, rejected, wrong audience ...)
//     empties its refusal bucket (RefusalRate, RefusalBurst) and gets 429
//     until it refills. Valid new tokens cost nothing: a client earns 429
//     by sending garbage, never by having many users.
//
// A client is whatever WithClient names (the gateway passes the address
// keyed by internal/clientip: IPv6 by /64).

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/lru"
)

const (
	// defaultShedWait is how long a new cache miss waits for an
	// introspection slot before it is shed.
	defaultShedWait = 2 * time.Second
	// overloadedRetryAfter is the RetryAfter of a shed request.
	overloadedRetryAfter = time.Second
	// maxClients bounds the per-client table: the client address is
	// chosen by whoever connects, so the table must not grow with it.
	// Past the bound the least recently used client is forgotten.
	maxClients = 10_000
	// clientIdle is how long an unused client entry is kept (at least
	// the time its bucket takes to refill, so dropping it loses nothing).
	clientIdle = 10 * time.Minute
	// knownNoExpiry is how long a token accepted without an "exp" stays
	// known after its last acceptance.
	knownNoExpiry = 24 * time.Hour
)

type clientKey struct{}

// WithClient records the client a request comes from (its address, keyed
// by the caller), for the per-client admission of unknown tokens
// (Config.RefusalRate, Config.ClientConcurrency). A request whose context
// carries no client (or "") is subject to neither.
func WithClient(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

func clientFrom(ctx context.Context) string {
	s, _ := ctx.Value(clientKey{}).(string)
	return s
}

// A lane is the queue a cache miss waits in for an introspection slot.
type lane int

const (
	laneKnown lane = iota
	laneUnknown
)

// admission is what admit decided for one shared introspection; it rides
// on the call's context to acquire (which takes the client's in-flight
// place and the slot, within one deadline) and is settled when the call
// returns.
type admission struct {
	lane   lane
	client *clientState // nil: no client named, or a known token

	mu         sync.Mutex
	holdsPlace bool // took one of client.places
}

type admissionKey struct{}

func admissionFrom(ctx context.Context) *admission {
	a, _ := ctx.Value(admissionKey{}).(*admission)
	return a
}

// admit decides whether a cache miss for digest may cost an introspection
// call, and in which lane. stale is the cache's accepted answer past its
// fresh life (Config.StaleIfError), or nil. It returns the context to
// introspect with and the function to call with the outcome, once.
func (v *Verifier) admit(ctx context.Context, digest *[32]byte, stale *entry) (context.Context, func(*auth.TokenInfo, error), error) {
	now := v.cfg.Now()
	a := &admission{lane: laneUnknown}
	exp, known := v.seen.lookup(digest, now)
	if known && !exp.IsZero() {
		if err := accesstoken.CheckTime(exp, time.Time{}, now, v.cfg.ClockSkew); err != nil {
			// Accepted before and now past its exp, which never moves:
			// the verdict is known without asking the authorization
			// server, and not charged to the client (honest clients
			// present expired tokens all the time).
			return nil, nil, err
		}
	}
	if known || stale != nil {
		a.lane = laneKnown
	} else if addr := clientFrom(ctx); addr != "" {
		c := v.clients.get(addr, now)
		if err := v.mayAsk(c); err != nil {
			return nil, nil, err
		}
		a.client = c
	}
	return context.WithValue(ctx, admissionKey{}, a), func(info *auth.TokenInfo, err error) { v.settle(a, digest, info, err) }, nil
}

// mayAsk is nil when client c's refusal bucket allows asking about one
// more unknown token, else the *RateLimitError to answer (429).
func (v *Verifier) mayAsk(c *clientState) error {
	wait, ok := c.mayAsk(v.cfg.Now())
	if ok {
		return nil
	}
	v.obs.Shed(ShedRate)
	return &RateLimitError{RetryAfter: max((wait + time.Second - 1).Truncate(time.Second), time.Second)}
}

// settle records the outcome of an admitted introspection: an accepted
// token becomes known; a refused one is forgotten and charged to its
// client (an unknown token's client: a known token's re-check is never
// charged); the client's in-flight place is given back.
func (v *Verifier) settle(a *admission, digest *[32]byte, info *auth.TokenInfo, err error) {
	a.mu.Lock()
	held := a.holdsPlace
	a.holdsPlace = false
	a.mu.Unlock()
	if held {
		<-a.client.places
	}
	if err == nil && info != nil {
		v.seen.remember(digest, info.Expiration, v.cfg.Now())
		return
	}
	var refused *accesstoken.InvalidError
	if errors.As(err, &refused) {
		v.seen.forget(digest)
		if a.client != nil {
			a.client.charge(v.cfg.Now())
		}
	}
}

// acquire takes an introspection slot for the call ctx carries (its
// admission says the lane and the client), waiting at most shedWait in
// all (or until ctx ends): first for one of the client's in-flight places
// (an unknown token), then for a slot.
func (v *Verifier) acquire(ctx context.Context) error {
	a := admissionFrom(ctx)
	ln := laneUnknown
	if a != nil {
		ln = a.lane
	}
	var deadline <-chan time.Time
	if a != nil && a.client != nil {
		select {
		case a.client.places <- struct{}{}:
		default:
			t := time.NewTimer(v.shedWait)
			defer t.Stop()
			deadline = t.C
			select {
			case a.client.places <- struct{}{}:
			case <-deadline:
				return v.shed(ctx, ShedClientConcurrency)
			case <-ctx.Done():
				return v.shed(ctx, ShedClientConcurrency)
			}
		}
		a.mu.Lock()
		a.holdsPlace = true
		a.mu.Unlock()
		// Refusals charged while this token waited count: without this
		// check a flood admitted all at once would all be asked about.
		if err := v.mayAsk(a.client); err != nil {
			return err
		}
	}
	if v.slots.tryAcquire(ln) {
		return nil
	}
	if deadline == nil {
		t := time.NewTimer(v.shedWait)
		defer t.Stop()
		deadline = t.C
	}
	if v.slots.acquire(ctx, ln, deadline) {
		return nil
	}
	return v.shed(ctx, ShedConcurrency)
}

func (v *Verifier) release() { v.slots.release() }

// shed reports an introspection not attempted for reason and returns the
// error that says so (503, never 401, never a verdict).
func (v *Verifier) shed(ctx context.Context, reason ShedReason) error {
	v.obs.Shed(reason)
	v.log.WarnContext(ctx, "introspection: overloaded, request shed", "reason", string(reason), "max_concurrency", v.slots.size)
	return &UnavailableError{RetryAfter: overloadedRetryAfter, Err: ErrOverloaded}
}

// slots are the Config.MaxConcurrency introspection slots, in two lanes.
// An unknown token may take a slot only while more than reserved are free;
// a known token may take any. When a slot is freed, a waiting known token
// gets it before any unknown one; within a lane, first come first served.
// (golang.org/x/sync/semaphore is one FIFO queue, without lanes.)
type slots struct {
	size     int
	reserved int

	mu     sync.Mutex
	used   int
	queues [2]list.List // of chan struct{}, closed when granted; by lane
}

func newSlots(size int) *slots {
	s := &slots{size: size}
	if size >= 2 {
		s.reserved = (size + 3) / 4 // a quarter, rounded up
	}
	return s
}

func (s *slots) limit(l lane) int {
	if l == laneKnown {
		return s.size
	}
	return s.size - s.reserved
}

// tryAcquire takes a slot at once if one is free for lane l and nobody of
// that lane is waiting.
func (s *slots) tryAcquire(l lane) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues[l].Len() == 0 && s.used < s.limit(l) && (l == laneKnown || s.queues[laneKnown].Len() == 0) {
		s.used++
		return true
	}
	return false
}

// acquire waits in lane l until a slot is granted (true), or until
// deadline fires or ctx ends (false).
func (s *slots) acquire(ctx context.Context, l lane, deadline <-chan time.Time) bool {
	s.mu.Lock()
	if s.queues[l].Len() == 0 && s.used < s.limit(l) && (l == laneKnown || s.queues[laneKnown].Len() == 0) {
		s.used++
		s.mu.Unlock()
		return true
	}
	ready := make(chan struct{})
	elem := s.queues[l].PushBack(ready)
	s.mu.Unlock()
	select {
	case <-ready:
		return true
	case <-deadline:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ready:
		// Granted while giving up: keep it (the caller uses it and
		// releases it) rather than repair the queue.
		return true
	default:
	}
	s.queues[l].Remove(elem)
	// A known waiter leaving may let unknown ones in.
	s.wakeLocked()
	return false
}

func (s *slots) release() {
	s.mu.Lock()
	s.used--
	s.wakeLocked()
	s.mu.Unlock()
}

// wakeLocked grants free slots to waiters, known ones first.
func (s *slots) wakeLocked() {
	for _, l := range [...]lane{laneKnown, laneUnknown} {
		q := &s.queues[l]
		for q.Len() > 0 && s.used < s.limit(l) && (l == laneKnown || s.queues[laneKnown].Len() == 0) {
			ready := q.Remove(q.Front()).(chan struct{})
			s.used++
			close(ready)
		}
	}
}

// inUse is the number of slots taken (tests).
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// knownTokens remembers, boundedly, which tokens were recently accepted
// and their exp. An entry holds 64 bits of the token's SHA-256 digest,
// never the token: a collision only lets an unknown token skip the queue
// (or be refused as expired), and finding one needs the digest of a token
// the finder does not have.
//
// It is two generations of a plain map rather than an LRU list: a token is
// remembered in the current generation; when that holds half the bound,
// it becomes the previous one and the one before is dropped whole; a
// token found in the previous generation moves to the current one. So the
// least recently accepted or seen tokens are forgotten first, as with an
// LRU, at about 30 bytes per token instead of the 100 that a list element,
// a boxed entry and a map slot cost: this table is kept for every token
// the cache holds, and more, so its size is part of the cache's
// (knownTokenCost, CacheMaxBytes).
type knownTokens struct {
	mu        sync.Mutex
	half      int // entries per generation
	cur, prev map[uint64]knownToken
}

// knownToken is one remembered acceptance (Unix nanoseconds).
type knownToken struct {
	exp  int64 // the token's exp; 0 when it had none
	keep int64 // when to forget it: exp + knownExpiredGrace, or knownNoExpiry after acceptance
}

// knownTokenCost is the heap one known token may take, generously: a map
// slot (24 bytes and its control byte) at the lowest load factor a Go map
// grows to, in either generation.
const knownTokenCost = 64

// knownBound is how many tokens the known-token table may hold: at most
// an eighth of CacheMaxBytes, which bounds the cache and this table
// together (the rest is the cache's).
func knownBound(tokens int, cacheMaxBytes int64) int {
	return int(min(int64(tokens), max(1, cacheMaxBytes/8/knownTokenCost)))
}

// knownExpiredGrace is how long a known token is remembered past its exp,
// so that presenting it then is refused at once, without asking the
// authorization server or charging the client.
const knownExpiredGrace = time.Hour

func newKnownTokens(bound int) *knownTokens {
	return &knownTokens{half: max(1, bound/2), cur: map[uint64]knownToken{}, prev: map[uint64]knownToken{}}
}

// putLocked stores e in the current generation, starting a new one when
// it is full.
func (k *knownTokens) putLocked(key uint64, e knownToken) {
	if _, ok := k.cur[key]; !ok && len(k.cur) >= k.half {
		k.prev, k.cur = k.cur, make(map[uint64]knownToken, k.half/4)
	}
	k.cur[key] = e
}

func (k *knownTokens) remember(d *[32]byte, exp, now time.Time) {
	e := knownToken{keep: now.Add(knownNoExpiry).UnixNano()}
	if !exp.IsZero() {
		e = knownToken{exp: exp.UnixNano(), keep: exp.Add(knownExpiredGrace).UnixNano()}
	}
	key := cacheKey(d)
	k.mu.Lock()
	delete(k.prev, key)
	k.putLocked(key, e)
	k.mu.Unlock()
}

// lookup says whether the token was accepted recently, and its exp (zero
// when it had none).
func (k *knownTokens) lookup(d *[32]byte, now time.Time) (exp time.Time, ok bool) {
	key := cacheKey(d)
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.cur[key]
	if !ok {
		if e, ok = k.prev[key]; ok {
			delete(k.prev, key)
			k.putLocked(key, e)
		}
	}
	if !ok {
		return time.Time{}, false
	}
	if now.UnixNano() >= e.keep {
		delete(k.cur, key)
		return time.Time{}, false
	}
	if e.exp != 0 {
		exp = time.Unix(0, e.exp)
	}
	return exp, true
}

func (k *knownTokens) forget(d *[32]byte) {
	key := cacheKey(d)
	k.mu.Lock()
	delete(k.cur, key)
	delete(k.prev, key)
	k.mu.Unlock()
}

func (k *knownTokens) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.cur) + len(k.prev)
}

// clients is the bounded table of per-client admission state.
type clients struct {
	limit  rate.Limit // refusals per second; 0: no refusal limit
	burst  int
	places int // unknown tokens in flight per client
	idle   time.Duration

	mu    sync.Mutex
	table *lru.Map[string, *clientState]
}

// clientState is one client's refusal bucket and in-flight places.
type clientState struct {
	lim    *rate.Limiter // nil: no refusal limit
	places chan struct{} // one element per unknown token in flight
	mu     sync.Mutex    // guards last
	last   time.Time
}

func newClients(limit rate.Limit, burst, places, bound int) *clients {
	idle := clientIdle
	if limit > 0 {
		if refill := time.Duration(float64(burst) / float64(limit) * float64(time.Second)); refill > idle {
			idle = refill
		}
	}
	return &clients{limit: limit, burst: burst, places: places, idle: idle, table: lru.New[string, *clientState](bound)}
}

// get returns addr's state, creating it, and drops the states idle long
// enough to have refilled with nothing in flight. A state forgotten while
// it still has tokens in flight (the table is full of busier clients) only
// lets that client start afresh: the bound on memory comes first.
func (c *clients) get(addr string, now time.Time) *clientState {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.table.DropOldestWhile(func(cs *clientState) bool {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return now.Sub(cs.last) >= c.idle && len(cs.places) == 0
	})
	cs, ok := c.table.Get(addr)
	if ok {
		c.table.Touch(addr)
	} else {
		cs = &clientState{places: make(chan struct{}, c.places)}
		if c.limit > 0 {
			cs.lim = rate.NewLimiter(c.limit, c.burst)
		}
		c.table.Put(addr, cs)
	}
	cs.mu.Lock()
	cs.last = now
	cs.mu.Unlock()
	return cs
}

func (c *clients) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table.Len()
}

// mayAsk reports whether the client's refusal bucket holds a whole token
// at now; if not, how long until it does.
func (cs *clientState) mayAsk(now time.Time) (time.Duration, bool) {
	if cs.lim == nil {
		return 0, true
	}
	tokens := cs.lim.TokensAt(now)
	if tokens >= 1 {
		return 0, true
	}
	return time.Duration((1 - tokens) / float64(cs.lim.Limit()) * float64(time.Second)), false
}

// charge takes one token from the client's refusal bucket for a refusal,
// going into debt when it is empty (refusals of tokens admitted
// concurrently): the debt, at most the client's in-flight places, is
// repaid before it may ask again.
func (cs *clientState) charge(now time.Time) {
	if cs.lim != nil {
		cs.lim.ReserveN(now, 1)
	}
}
