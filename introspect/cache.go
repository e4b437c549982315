package introspect

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// entry is one cached introspection verdict. It holds the SHA-256 digest of
// the token, never the token: a memory dump of the cache yields nothing a
// client could present.
type entry struct {
	// digest confirms a hit. The ristretto key is only 64 bits of it, so a
	// key collision between two tokens must not hand one token the other's
	// answer.
	digest [32]byte
	// until is when this entry stops being trusted, by Config.Now. It
	// duplicates ristretto's own TTL (which runs on the real clock) so that
	// the verifier's notion of time is the single one that matters, and
	// tests can drive it with a fake clock.
	until instant
	// staleUntil is when an accepted answer stops being usable even as a
	// stale fallback (Config.StaleIfError): min(until+StaleIfError, exp).
	// It equals until for refusals and when StaleIfError is off. ristretto
	// keeps the entry until then; between until and staleUntil it is only
	// served when re-introspection fails with an *UnavailableError.
	staleUntil instant
	// err is the cached negative verdict (inactive, rejected, audience,
	// issuer, token type), or nil for an accepted answer.
	err error
	// accepted says the entry is an accepted answer (setInfo ran): ti,
	// without its Extra, and claims, what Extra is made of. full is the
	// TokenInfo a hit hands out, with its Extra: made on the entry's first
	// hit and shared read-only by every later one (info).
	accepted bool
	ti       auth.TokenInfo
	claims   extraClaims
	full     atomic.Pointer[auth.TokenInfo]
	// exp and nbf are re-checked on every hit (they depend on "now"); zero
	// when the answer had no such claim.
	exp, nbf instant
	// verifiedAt is when the verification behind this answer started:
	// revocations are judged against it (revocation.go). id is the token's
	// keyed identity, for token revocations; hasID says it is set.
	verifiedAt instant
	id         sharedcache.ID
	hasID      bool
}

// instant is a time as Unix nanoseconds, 0 for none: an entry is kept for
// every cached token, and five of these take 40 bytes where five
// time.Time take 120. Times beyond what int64 nanoseconds hold (before
// 1678, after 2262) are clamped, and the Unix epoch itself is stored a
// nanosecond later, so that a token whose "exp" is 0 is expired, not one
// without an exp.
type instant int64

func instantOf(t time.Time) instant {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minInstant):
		return math.MinInt64
	case t.After(maxInstant):
		return math.MaxInt64
	case t.UnixNano() == 0:
		return 1
	}
	return instant(t.UnixNano())
}

var (
	minInstant = time.Unix(0, math.MinInt64)
	maxInstant = time.Unix(0, math.MaxInt64)
)

// Time is i as a time.Time, the zero Time for none.
func (i instant) Time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i))
}

// result turns a cached entry into Verify's return values. It is the whole
// cache-hit path after the lookup, so it must stay allocation-free for an
// accepted token.
func (e *entry) result(now time.Time, skew time.Duration) (*auth.TokenInfo, error) {
	if e.err != nil {
		return nil, e.err
	}
	if err := accesstoken.CheckTime(e.exp.Time(), e.nbf.Time(), now, skew); err != nil {
		return nil, err
	}
	return e.info(), nil
}

// cacheKey is the ristretto key for a token digest: its first 8 bytes.
func cacheKey(d *[32]byte) uint64 { return binary.LittleEndian.Uint64(d[:8]) }

// keyToHash hands ristretto our key unchanged. The key is already a uniform
// hash, so rehashing it would only cost time. The conflict hash is 0, which
// tells ristretto not to check one: ristretto's KeyToHash sees only the
// 64-bit key, and widening the key (to a string holding more digest bytes)
// would cost an allocation on every hit. Identity is instead confirmed
// against the full 32-byte digest stored in the entry.
func keyToHash(k uint64) (uint64, uint64) { return k, 0 }

// Cost estimation, in approximate bytes of heap per entry. The numbers are
// deliberately generous round figures, not measurements: they only need to
// make CacheMaxBytes a meaningful bound.
const (
	// ristretto's per-item bookkeeping (store item, expiry bucket, policy
	// counters: ~120 B) and most of the entry struct (~300 B).
	entryOverhead = 256
	// For an accepted answer, the rest of the entry struct, and what its
	// first hit adds (info): a TokenInfo (~100 B) and its Extra map (~300
	// B for up to 8 keys). With perString per string, a typical accepted
	// entry is estimated at ~1.2 KB (typicalCost) for ~1 KB of heap once
	// hit, ~0.6 KB before (bench row 5a).
	infoOverhead = 512
	// per string held in a slice or map: header plus a little slack.
	perString = 32
)

// cost estimates the heap an entry retains.
func (e *entry) cost() int64 {
	n := int64(entryOverhead)
	if !e.accepted {
		if ite, ok := e.err.(*accesstoken.InvalidError); ok {
			n += int64(len(ite.Detail))
		}
		return n
	}
	// The Extra map is counted though only a hit makes it: the estimate
	// must bound a cache whose tokens are all hit.
	n += infoOverhead + int64(len(e.ti.UserID))
	for _, s := range e.ti.Scopes {
		n += perString + int64(len(s))
	}
	e.claims.each(func(k string, v any) {
		n += perString + int64(len(k))
		switch v := v.(type) {
		case string:
			n += perString + int64(len(v))
		case []string:
			n += perString
			for _, s := range v {
				n += perString + int64(len(s))
			}
		default:
			n += 16 // int64 boxed in an interface
		}
	})
	return n
}

// newCache builds the ristretto cache bounded by maxBytes of estimated cost.
// Every entry ristretto drops (capacity eviction, TTL expiry, or refusal by
// its admission policy) is reported to obs.CacheEviction. metrics turns on
// ristretto's counters (tests only: they cost on every lookup).
func newCache(maxBytes int64, obs Observer, metrics bool) (*ristretto.Cache[uint64, *entry], error) {
	// ristretto recommends ~10 counters per item the cache can hold; assume
	// ~1 KiB per entry, which a typical token with a handful of scopes and
	// claims stays under.
	counters := max(maxBytes/1024*10, 10_000)
	counters = min(counters, 50_000_000)
	return ristretto.NewCache(&ristretto.Config[uint64, *entry]{
		NumCounters:        counters,
		MaxCost:            maxBytes,
		BufferItems:        64, // the value ristretto's docs recommend
		KeyToHash:          keyToHash,
		IgnoreInternalCost: true, // our cost estimate already includes it
		Metrics:            metrics,
		OnEvict:            func(*ristretto.Item[*entry]) { obs.CacheEviction() },
		OnReject:           func(*ristretto.Item[*entry]) { obs.CacheEviction() },
	})
}

// activeTTL is how long an accepted answer may be reused:
// min(exp-now, maxTTL), or maxTTL when the token has no "exp". A result <= 0
// means the answer must not be cached as accepted. maxTTL is the bound on how
// late a revocation is noticed.
func activeTTL(now, exp time.Time, maxTTL time.Duration) time.Duration {
	ttl := maxTTL
	if !exp.IsZero() {
		if d := exp.Sub(now); d < ttl {
			ttl = d
		}
	}
	return ttl
}

// store caches e for ttl (by both ristretto's real clock and Config.Now).
// Non-positive ttl stores nothing. ristretto applies Sets asynchronously
// and may refuse them (admission policy): a lost store only costs a later
// introspection. Replacing an existing entry for the same key is immediate.
//
// An accepted answer is kept past its fresh life for Config.StaleIfError,
// but never past its exp, so it can stand in while the authorization server
// is failing (see serveStale).
func (v *Verifier) store(e *entry, now time.Time, ttl time.Duration) {
	v.set(e, now, ttl, true)
}

// storeAsync is store for a locally verified JWT: without a stale window
// (there is no authorization server whose failure a stale answer would
// stand in for) and without waiting for ristretto to apply the Set (a
// lost or late Set costs one more local verification).
func (v *Verifier) storeAsync(e *entry, now time.Time, ttl time.Duration) {
	v.set(e, now, ttl, false)
}

// set fills in e's times and hands it to ristretto; an accepted e was
// made by accept.
// introspected says e is an answer of the authorization server: it may
// stand in stale, and the Set is waited for.
func (v *Verifier) set(e *entry, now time.Time, ttl time.Duration, introspected bool) {
	if ttl <= 0 {
		return
	}
	if e.verifiedAt == 0 {
		e.verifiedAt = instantOf(now)
	}
	until := now.Add(ttl)
	e.until, e.staleUntil = instantOf(until), instantOf(until)
	if introspected && e.accepted && v.cfg.StaleIfError > 0 {
		su := until.Add(v.cfg.StaleIfError)
		if exp := e.exp.Time(); !exp.IsZero() && exp.Before(su) {
			su = exp
		}
		if su.After(until) {
			e.staleUntil = instantOf(su)
		}
	}
	v.cacheMu.RLock()
	defer v.cacheMu.RUnlock()
	if v.cacheClosed {
		return
	}
	if v.cache.SetWithTTL(cacheKey(&e.digest), e, e.cost(), e.staleUntil.Time().Sub(now)) && introspected {
		// ristretto applies a Set asynchronously. Without this wait, a
		// request arriving just after the coalesced call returned would
		// miss and introspect the same token again. It runs once per
		// introspection, never on a hit.
		v.cache.Wait()
	}
}

// forget drops whatever is cached under digest's key, at once.
func (v *Verifier) forget(d *[32]byte) {
	v.cacheMu.RLock()
	defer v.cacheMu.RUnlock()
	if !v.cacheClosed {
		v.cache.Del(cacheKey(d))
	}
}

// lookup returns the entry for digest, if any is still usable: fresh is
// true when it may be used as is; otherwise e is an accepted answer past its
// fresh life but within its stale window (Config.StaleIfError), usable only
// as a fallback.
func (v *Verifier) lookup(d *[32]byte, now time.Time) (e *entry, fresh bool) {
	v.cacheMu.RLock()
	if v.cacheClosed {
		v.cacheMu.RUnlock()
		return nil, false
	}
	e, ok := v.cache.Get(cacheKey(d))
	v.cacheMu.RUnlock()
	if !ok || e == nil || e.digest != *d || !now.Before(e.staleUntil.Time()) {
		return nil, false
	}
	return e, now.Before(e.until.Time())
}

// serveStale decides whether a stale accepted answer may stand in for a
// failed re-introspection: only when the authorization server failed (an
// *UnavailableError: unreachable, timeout, 5xx, an answer that is not
// one), never for a verdict about the token, a refusal of our credentials,
// or the gateway's own load shedding (ErrOverloaded): otherwise the holder
// of a revoked token could outlive CACHE_MAX_TTL by keeping the
// introspection slots full. Only within Config.StaleIfError after the
// answer's fresh life, and strictly before the token's exp.
func (v *Verifier) serveStale(ctx context.Context, e *entry, err error) (*auth.TokenInfo, bool) {
	var ue *UnavailableError
	if e == nil || !e.accepted || !errors.As(err, &ue) || errors.Is(err, ErrOverloaded) {
		return nil, false
	}
	now := v.cfg.Now()
	if exp := e.exp.Time(); !now.Before(e.staleUntil.Time()) || (!exp.IsZero() && !now.Before(exp)) {
		return nil, false
	}
	if accesstoken.CheckTime(e.exp.Time(), e.nbf.Time(), now, 0) != nil {
		return nil, false
	}
	v.obs.StaleUse()
	v.log.WarnContext(ctx, "serving stale introspection answer", "stale_for", now.Sub(e.until.Time()), "err", err)
	return e.info(), true
}

// setInfo makes e the accepted answer c: the SDK's TokenInfo without its
// Extra (ti), and what Extra is made of (claims). Nothing in it changes
// afterwards, so hits share it read-only.
//
// Every cached token keeps one, so it holds only what is read downstream:
// the scopes, the expiry, the user (for the SDK's session binding) and, for
// Extra, "sub", "username", "email", "client_id" (whoami) and "aud". The
// claims checked once at insert time (iss, token type, nbf) are not kept.
// What many tokens carry alike (lists of known scopes, the configured
// audiences, client ids) is shared rather than copied per token: a full
// cache is marked by the collector on every cycle, and its cost is the
// number of objects in it, which would otherwise slow every request. For
// the same reason the Extra map is not kept until the token is used again
// (info): it was three quarters of what a collection marks per cached
// token (BenchmarkGCWithCachedTokens, 50,000 tokens: about 48 ms with it,
// 11 ms without), and the tokens of a flood of new ones are never used
// again.
func (e *entry) setInfo(c *accesstoken.Claims, known *interner) {
	e.accepted = true
	e.ti = auth.TokenInfo{Scopes: known.scopes(c.Scopes), UserID: c.Sub}
	if c.HasExp {
		e.ti.Expiration = time.Unix(c.Exp, 0).UTC()
	}
	if e.ti.UserID == "" {
		e.ti.UserID = c.Username
	}
	e.claims = extraClaims{sub: c.Sub, username: c.Username, email: c.Email}
	if cl := c.Client(); cl != "" {
		e.claims.client = known.client(cl)
	}
	if c.HasAud {
		e.claims.aud = known.audience(c.Aud)
	}
}

// extraClaims are the members of an accepted answer's TokenInfo.Extra.
type extraClaims struct {
	sub, username, email string // "" when absent
	client, aud          any    // shared values (interner); nil when absent
}

// each calls f with the key and value of every member Extra has.
func (x *extraClaims) each(f func(k string, v any)) {
	for _, kv := range [...]struct{ k, v string }{
		{"sub", x.sub}, {"username", x.username}, {"email", x.email},
	} {
		if kv.v != "" {
			f(kv.k, kv.v)
		}
	}
	if x.client != nil {
		f("client_id", x.client)
	}
	if x.aud != nil {
		f("aud", x.aud)
	}
}

// newInfo makes the TokenInfo of an accepted entry, with its Extra, for
// the request that verified it: not kept in e, so that a token used once
// leaves no map in the cache.
func (e *entry) newInfo() *auth.TokenInfo {
	ti := e.ti
	ti.Extra = make(map[string]any, 5) // at most the five of extraClaims
	e.claims.each(func(k string, v any) { ti.Extra[k] = v })
	return &ti
}

// info is the TokenInfo of an accepted entry for a hit: made by the
// entry's first hit and kept, so that every later hit shares it and
// allocates nothing. Callers must treat it as read-only.
func (e *entry) info() *auth.TokenInfo {
	if ti := e.full.Load(); ti != nil {
		return ti
	}
	ti := e.newInfo()
	if e.full.CompareAndSwap(nil, ti) {
		return ti
	}
	return e.full.Load()
}

// principal is who an accepted entry is about, as PrincipalOf says it of
// its TokenInfo, without making that TokenInfo.
func (e *entry) principal() sharedcache.Principal {
	who := sharedcache.Principal{Sub: e.ti.UserID, Email: e.claims.email}
	who.ClientID, _ = e.claims.client.(string)
	return who
}

// Bounds of the interner's learned values: past them, values are copied
// per token again (correct, only bigger).
const (
	maxScopeLists = 256
	maxClientIDs  = 1024
)

// interner hands out shared copies of values most tokens carry, so that a
// cache of many tokens does not hold many copies of them. Configured
// values (known scopes, audiences) are shared from the start; lists of
// known scopes and client ids are learned as tokens arrive, up to a bound.
type interner struct {
	scopeSet map[string]string
	audSets  []any // one []string{audience} per configured audience, boxed once

	mu      sync.Mutex
	lists   map[string][]string // scope lists of known scopes, by their space-joined form (a scope-token has no space: RFC 6749 §3.3)
	clients map[string]any      // client ids, boxed once
}

func newInterner(scopeTokens, audiences []string) *interner {
	in := &interner{
		scopeSet: make(map[string]string, len(scopeTokens)),
		lists:    make(map[string][]string),
		clients:  make(map[string]any),
	}
	for _, s := range scopeTokens {
		in.scopeSet[s] = s
	}
	for _, a := range audiences {
		in.audSets = append(in.audSets, []string{a})
	}
	return in
}

// scopes returns s with known scope-tokens replaced by shared strings, in
// a slice of exactly the right size; never nil. A list made only of known
// scope-tokens is itself shared (up to maxScopeLists of them).
func (in *interner) scopes(s []string) []string {
	out := make([]string, len(s))
	allKnown := len(s) > 0
	for i, v := range s {
		if k, ok := in.scopeSet[v]; ok {
			v = k
		} else {
			allKnown = false
		}
		out[i] = v
	}
	if !allKnown {
		return out
	}
	key := strings.Join(out, " ")
	in.mu.Lock()
	defer in.mu.Unlock()
	if shared, ok := in.lists[key]; ok {
		return shared
	}
	if len(in.lists) < maxScopeLists {
		in.lists[key] = out
	}
	return out
}

// client returns the client id boxed for TokenInfo.Extra, shared by every
// token of that client (up to maxClientIDs of them).
func (in *interner) client(id string) any {
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.clients[id]; ok {
		return v
	}
	var v any = id
	if len(in.clients) < maxClientIDs {
		in.clients[id] = v
	}
	return v
}

// audience returns aud boxed for TokenInfo.Extra: a shared value when aud
// is exactly one configured audience, else aud itself.
func (in *interner) audience(aud []string) any {
	if len(aud) == 1 {
		for _, a := range in.audSets {
			if a.([]string)[0] == aud[0] {
				return a
			}
		}
	}
	return aud
}
