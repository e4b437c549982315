package introspect

// The second cache tier: verdicts shared by every machine of a deployment
// through Redis (package sharedcache), consulted after the in-process cache
// missed and inside the per-machine singleflight, so that one call per
// machine per token reaches Redis and one introspection per deployment
// reaches the authorization server (issue 15).
//
// Redis holds the verified claims and the refusal reasons, never a token
// and never a decision: every use re-runs the checks the in-process tier
// runs (audience, issuer and token type with the Checker, exp and nbf with
// CheckTime, and the scopes are the gateway's per-call step-up check on
// the TokenInfo built here). A value another machine stored is also judged
// against this machine's revocations.
//
// Redis is an optimisation: a failing Redis costs a miss at most one
// REDIS_TIMEOUT (Fetch says it failed, and the miss then makes no further
// Redis call on its path), writes happen off the request's path, and
// nothing Redis says can turn a refusal into an acceptance that the checks
// here would not make on their own.

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/scopes"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// SharedTier configures the cache tier shared by a deployment's machines
// and the revocations every cached answer is checked against. The zero
// value is "neither": a single machine with its in-process cache.
type SharedTier struct {
	// Store is the Redis tier (REDIS_URL). nil: none.
	Store *sharedcache.Store
	// Revocations, when not nil, is consulted on every use of a cached
	// answer, in-process or from Store: an answer verified at or before a
	// revocation of its token, subject, client or email is not used, and
	// the token is introspected again. Feed it from Store.Subscribe and
	// from local revocations (the admin API, SSF).
	Revocations *sharedcache.RevocationSet
	// IDs names tokens for token revocations (Store.ID's keyed hash, or
	// sharedcache.NewIDs with the same secret when there is no Store).
	// Required with Revocations.
	IDs TokenIDs
}

// TokenIDs computes the keyed identity of a token digest.
type TokenIDs = sharedcache.TokenIDs

func (s *SharedTier) validate() error {
	if s.Revocations != nil && s.IDs == nil {
		return errors.New("introspect: Shared.IDs is required with Shared.Revocations")
	}
	return nil
}

// CacheTier names where a cached answer came from.
type CacheTier string

// The cache tiers.
const (
	TierLocal  CacheTier = "local"  // this machine's ristretto cache
	TierShared CacheTier = "shared" // Redis, stored by any machine
)

// AllCacheTiers lists every CacheTier in a stable order (a metric's label
// set).
func AllCacheTiers() []CacheTier { return []CacheTier{TierLocal, TierShared} }

// SharedObserver is an optional extension of Observer: an Observer that
// also implements it is told what the shared tier and the revocations do.
type SharedObserver interface {
	// SharedAnswer counts an in-process miss answered from the shared
	// tier (accepted or refused) without an introspection.
	SharedAnswer()
	// RevokedAnswer counts a cached answer not used because a revocation
	// applies to it; the token is introspected again.
	RevokedAnswer(tier CacheTier)
}

// tier is the Verifier's view of its SharedTier, with what it derives.
type tier struct {
	store *sharedcache.Store
	revs  *sharedcache.RevocationSet
	ids   TokenIDs
	obs   SharedObserver // nil: none

	// lockTTL bounds how long the cross-machine lock outlives a holder
	// that crashed, and how long other machines wait for its answer: one
	// introspection, including the wait for a slot (at most half of
	// Timeout) and a retry.
	lockTTL time.Duration
	// skew is how much earlier than it says a value stored by another
	// machine is taken to have been verified, when judged against a
	// revocation: that machine's clock may run ahead of this one's by up
	// to the clock skew the deployment tolerates (CLOCK_SKEW), and an
	// answer verified before a revocation must not pass for one verified
	// after. The cost is that for CLOCK_SKEW after a revocation, a
	// revoked subject's answers are introspected by each machine rather
	// than shared.
	skew time.Duration
}

// newTier returns nil when cfg has neither a Store nor Revocations, so the
// hot path's check is one nil comparison.
func newTier(cfg *Config) *tier {
	s := cfg.Shared
	if s.Store == nil && s.Revocations == nil {
		return nil
	}
	t := &tier{store: s.Store, revs: s.Revocations, ids: s.IDs,
		lockTTL: cfg.Timeout*3/2 + 100*time.Millisecond, skew: cfg.ClockSkew}
	t.obs, _ = cfg.Observer.(SharedObserver)
	return t
}

// flight is the shared tier's part of one coalesced miss: what the
// lookup found, and how the verdict is to be written back.
type flight struct {
	v *Verifier
	t *tier
	d [32]byte
	// token is the token d is the digest of, for its revocation identity
	// (accept). Held only for the flight.
	token string
	// done: the shared tier answered (info or err); nothing to
	// introspect.
	done bool
	info *auth.TokenInfo
	err  error
	// lease is a won lock: the verdict is written with Fill, waking the
	// other machines; without one it is written with Set, unless skip.
	lease *sharedcache.Lease
	// skip: Redis failed during this miss; make no further call for it.
	skip bool
	// started is when this machine started verifying: the verification
	// time stored with the verdict.
	started time.Time
}

// sharedBefore runs before a miss costs an introspection: the value
// another machine stored, else the cross-machine lock, else a bounded wait
// for the machine that holds it. It returns nil without a Store. It runs
// inside the per-machine singleflight, detached from the first caller's
// context (whose departure must not fail the others).
func (v *Verifier) sharedBefore(ctx context.Context, d *[32]byte, token string) *flight {
	t := v.tier
	if t == nil || t.store == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(v.stop, cancel)()
	f := &flight{v: v, t: t, d: *d, token: token}
	if v.tracer != nil {
		var end func()
		ctx, end = v.startShared(ctx, f)
		defer end()
	}
	defer func() { f.started = v.cfg.Now() }()

	h, ok, err := t.store.Fetch(ctx, *d)
	switch {
	case err != nil:
		f.skip = true
		return f
	case ok:
		// A value this machine cannot use (revoked since, or older
		// than its rules allow) is verified alone and overwritten: the
		// lock would only say "filled".
		f.use(h)
		return f
	}
	res, lease := t.store.Lock(ctx, *d, t.lockTTL)
	switch res {
	case sharedcache.LockWon:
		f.lease = lease
	case sharedcache.LockHeld:
		if h, ok := t.store.Await(ctx, *d, t.lockTTL); ok {
			f.use(h)
		}
	case sharedcache.LockFilled:
		if h, ok, err := t.store.Fetch(ctx, *d); ok {
			f.use(h)
		} else if err != nil {
			f.skip = true
		}
	case sharedcache.LockUnavailable:
		// Redis is failing: verify alone; the write (off the request's
		// path) is skipped at once if the circuit has opened meanwhile.
	}
	return f
}

// use takes a value from Redis as this flight's answer when this machine
// can use it, and keeps it in process.
func (f *flight) use(h sharedcache.Hit) {
	info, err, ok := f.v.fromShared(&f.d, f.token, h)
	if !ok {
		return
	}
	f.done, f.info, f.err = true, info, err
	if f.t.obs != nil {
		f.t.obs.SharedAnswer()
	}
}

// sharedAfter writes this machine's verdict to the shared tier, off the
// request's path: an accepted answer for min(exp, started+CacheMaxTTL), a
// refusal about the token for CacheNegativeTTL. "Could not find out"
// (unavailable, our credentials refused, shed, rate-limited) is not a
// verdict: the lock is released so that waiting machines verify alone at
// once. res and err are the coalesced call's results.
func (f *flight) sharedAfter(res any, err error) {
	if f == nil || f.done {
		return
	}
	v := f.v
	if f.skip {
		f.lease.Release()
		return
	}
	info, _ := res.(*auth.TokenInfo)
	value, ttl := v.encodeVerdict(info, err, f.started)
	if !v.track() {
		f.lease.Release()
		return
	}
	go func() {
		defer v.inflight.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer context.AfterFunc(v.stop, cancel)()
		switch {
		case value == nil || ttl <= 0:
			f.lease.Release()
		case f.lease != nil:
			f.lease.Fill(ctx, value, ttl)
		default:
			f.t.store.Set(ctx, f.d, value, ttl)
		}
	}()
}

// verdict is what Redis holds for a token: the claims an accepted answer
// was built from (what tokenInfo keeps of them), or a refusal's reason,
// with the time the storing machine started verifying it. Nothing in it
// is the token.
type verdict struct {
	At       int64    `json:"at"`            // verification start, Unix ns, storing machine's clock
	Reason   string   `json:"r,omitempty"`   // refusal: an accesstoken.Reason
	Detail   string   `json:"d,omitempty"`   // refusal: its token-free detail
	Sub      string   `json:"sub,omitempty"` // accepted: the claims
	Username string   `json:"un,omitempty"`
	Email    string   `json:"em,omitempty"`
	ClientID string   `json:"cid,omitempty"`
	Scopes   []string `json:"scp,omitempty"`
	Aud      []string `json:"aud,omitempty"`
	HasAud   bool     `json:"ha,omitempty"`
	Exp      int64    `json:"exp,omitempty"` // Unix s; 0: none
}

// maxDetail bounds a refusal's detail in Redis; the package's own details
// are short sentences.
const maxDetail = 256

// encodeVerdict serialises a coalesced call's result for the shared tier,
// with its lifetime there; nil when the result is not a verdict about the
// token, or must not be shared.
func (v *Verifier) encodeVerdict(info *auth.TokenInfo, err error, started time.Time) ([]byte, time.Duration) {
	now := v.cfg.Now()
	vd := verdict{At: started.UnixNano()}
	var ttl time.Duration
	var invalid *accesstoken.InvalidError
	switch {
	case err == nil && info != nil:
		vd.Sub, _ = info.Extra["sub"].(string)
		vd.Username, _ = info.Extra["username"].(string)
		vd.Email, _ = info.Extra["email"].(string)
		vd.ClientID, _ = info.Extra["client_id"].(string)
		vd.Aud, vd.HasAud = info.Extra["aud"].([]string)
		vd.Scopes = info.Scopes
		var exp time.Time
		if !info.Expiration.IsZero() {
			exp = info.Expiration
			vd.Exp = exp.Unix()
		}
		// min(exp, started+CacheMaxTTL): no machine may reuse an answer
		// longer after its verification than the one that verified it.
		ttl = activeTTL(started, exp, v.cfg.CacheMaxTTL) - now.Sub(started)
	case errors.As(err, &invalid):
		if v.cfg.CacheNegativeTTL <= 0 {
			return nil, 0
		}
		vd.Reason, vd.Detail = string(invalid.Reason), invalid.Detail
		if len(vd.Detail) > maxDetail {
			vd.Detail = ""
		}
		ttl = v.cfg.CacheNegativeTTL - now.Sub(started)
	default:
		return nil, 0
	}
	if ttl <= 0 {
		return nil, 0
	}
	b, jerr := json.Marshal(&vd)
	if jerr != nil {
		return nil, 0
	}
	return b, ttl
}

// decodeVerdict parses a value from Redis. Values are authenticated by
// sharedcache (a MAC under the key secret), so this refuses only what a
// machine of this deployment would never write: an unknown reason, a
// scope that is not a scope-token, an impossible time.
func decodeVerdict(b []byte) (*verdict, bool) {
	var vd verdict
	if json.Unmarshal(b, &vd) != nil || vd.At <= 0 || vd.Exp < 0 {
		return nil, false
	}
	if vd.Reason != "" {
		if !slices.Contains(accesstoken.AllReasons(), accesstoken.Reason(vd.Reason)) {
			return nil, false
		}
		return &vd, true
	}
	for _, s := range vd.Scopes {
		if !scopes.ValidToken(s) {
			return nil, false
		}
	}
	return &vd, true
}

// claims rebuilds the claims an accepted verdict was made from, as far as
// tokenInfo keeps them (issuer and token type were checked by the machine
// that verified the token, and are not kept by any tier).
func (vd *verdict) claims() *accesstoken.Claims {
	return &accesstoken.Claims{
		Sub: vd.Sub, Username: vd.Username, Email: vd.Email, ClientID: vd.ClientID,
		Scopes: vd.Scopes, Aud: vd.Aud, HasAud: vd.HasAud,
		Exp: vd.Exp, HasExp: vd.Exp != 0,
	}
}

// fromShared decides with a verdict from Redis, as the in-process tier
// decides with an entry, and keeps it in process for what remains of its
// life by this machine's rules. ok is false when this machine cannot use
// it (a revocation applies, it is older than this machine's cache
// lifetimes allow, it does not parse): the token is then verified again.
func (v *Verifier) fromShared(d *[32]byte, token string, h sharedcache.Hit) (*auth.TokenInfo, error, bool) {
	if v.tier.revs != nil && !v.tier.store.RevocationsSynced() {
		// This machine may not know every revocation yet (it just
		// started, or Redis failed and came back): a value verified
		// before one it has not heard of must not be used.
		return nil, nil, false
	}
	vd, ok := decodeVerdict(h.Value)
	if !ok {
		return nil, nil, false
	}
	now := v.cfg.Now()
	// The storing machine's clock; never later than it stored the
	// value, nor than now here.
	at := time.Unix(0, vd.At)
	if h.StoredAt.Before(at) {
		at = h.StoredAt
	}
	if now.Before(at) {
		at = now
	}
	if vd.Reason != "" {
		until := at.Add(v.cfg.CacheNegativeTTL)
		if v.cfg.CacheNegativeTTL <= 0 || !now.Before(until) {
			return nil, nil, false
		}
		invalid := &accesstoken.InvalidError{Reason: accesstoken.Reason(vd.Reason), Detail: vd.Detail}
		v.store(&entry{digest: *d, err: invalid, verifiedAt: instantOf(at)}, now, until.Sub(now))
		return nil, invalid, true
	}

	c := vd.claims()
	exp := accesstoken.Time(c.Exp, c.HasExp)
	e := &entry{digest: *d, exp: instantOf(exp), verifiedAt: instantOf(at.Add(-v.tier.skew))}
	if st := v.checker.Static(c); st != nil {
		// This machine's configuration refuses what another accepted
		// (its ACCEPTED_AUDIENCES differ): its own verdict stands.
		e.err = st
		v.storeRefusal(e, now)
		return nil, st, true
	}
	v.accept(e, c, token)
	if v.revokedEntry(e, TierShared) {
		return nil, nil, false
	}
	ttl := activeTTL(at, exp, v.cfg.CacheMaxTTL) - now.Sub(at)
	if ttl > 0 {
		v.store(e, now, ttl)
	}
	if err := accesstoken.CheckTime(exp, time.Time{}, now, v.cfg.ClockSkew); err != nil {
		return nil, err, true
	}
	if ttl <= 0 {
		return nil, nil, false
	}
	// An accepted token, as if this machine had introspected it: its next
	// miss here is a known token's (admission.go).
	v.seen.remember(d, e.ti.Expiration, now)
	return e.newInfo(), nil, true
}
