// Package introspect verifies OAuth 2.0 bearer tokens for a resource server
// (the MCP gateway) with RFC 7662 token introspection and, for JWT access
// tokens (RFC 9068), locally with package jwtaccess (TOKEN_VALIDATION;
// validate.go decides which validator runs; one cache serves both).
//
// A [Verifier] posts each unknown token to the authorization server's
// introspection endpoint (configured, or discovered with RFC 8414 / OpenID
// Connect Discovery), parses the answer strictly, checks it with an
// [accesstoken.Checker] (issuer, audience, token type, expiry, not-before),
// and caches the verdict in a bounded ristretto cache keyed by a SHA-256
// digest of the token. Concurrent requests for the same new token share one
// introspection call.
//
// Files, one concept each: config.go (Config and its defaults),
// verifier.go (Verify: the cache, coalescing and the decision), validate.go
// (which validator decides: local JWT verification or introspection), cache.go
// (cached verdicts), admission.go (which misses may cost a call),
// exchange.go (the RFC 7662 request and the classification of its answer),
// response.go (RFC 7662 §2.2 parsing), discovery.go (RFC 8414), errors.go
// and observer.go (what the verifier reports).
//
// Errors are typed: *accesstoken.InvalidError (the token is bad: answer
// 401), [UnavailableError] (we could not find out: answer 503 with
// Retry-After), [ClientAuthError] (the gateway's own credentials were
// refused: a configuration error) and [RateLimitError] (429). The raw token
// never appears in an error, a log record or the cache.
//
// Package introspecttest provides a fake authorization server for tests.
package introspect

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess"
)

// Verifier verifies bearer tokens by RFC 7662 introspection. It is safe for
// concurrent use. Create it with New and release it with Close.
type Verifier struct {
	cfg        Config // with defaults applied
	client     *http.Client
	ownsClient bool
	checker    *accesstoken.Checker
	known      *interner
	cache      *ristretto.Cache[uint64, *entry]
	// cacheMu guards cacheClosed. ristretto's Close is not safe against
	// concurrent Get/Set (they can send on channels Close has closed, which
	// panics), so every cache operation holds the read lock and Close the
	// write lock.
	cacheMu     sync.RWMutex
	cacheClosed bool
	log         *slog.Logger
	basicHeader string // precomputed Authorization value for client_secret_basic

	calls    singleflight.Group // coalesces introspection of one token
	discover singleflight.Group // coalesces discovery

	endpoint    atomic.Pointer[string]
	metadata    atomic.Pointer[ServerMetadata]  // set by a successful discovery
	authFailure atomic.Pointer[ClientAuthError] // set on 401/403/invalid_client, cleared by a 200

	obs      Observer
	tracer   trace.Tracer  // nil: no spans (trace.go)
	local    local         // the JWT side (validate.go)
	tier     *tier         // the shared tier and revocations (shared.go); nil: none
	slots    *slots        // MaxConcurrency introspection slots, in two lanes
	shedWait time.Duration // how long a miss waits for a slot
	seen     *knownTokens  // tokens accepted recently (admission.go)
	clients  *clients      // per-client admission of unknown tokens

	// stop is cancelled by Close, aborting shared introspections in
	// flight; inflight counts them so Close can wait for them.
	stop     context.Context
	stopNow  context.CancelFunc
	inflight sync.WaitGroup

	// beforeWait, when set (tests only), runs just before a Verify call
	// waits for a shared introspection.
	beforeWait func()
	// beforeRetry, when set (tests only), runs before the pause that
	// precedes a retried connection.
	beforeRetry func()
}

// New validates cfg and returns a Verifier. Every configuration problem is
// reported at once (errors.Join). It makes no network call: when Endpoint is
// empty, discovery happens on first use, or when Discover or Ready is
// called, so a gateway can start while its authorization server is down.
// ctx is reserved for future use.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	_ = ctx
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	// The known-token table and the cache share CacheMaxBytes.
	known := knownBound(cfg.KnownTokens, cfg.CacheMaxBytes)

	v := &Verifier{
		cfg:     cfg,
		checker: accesstoken.NewChecker(cfg.Issuer, cfg.Audiences, cfg.AllowMissingAudience),
		known:   newInterner(cfg.KnownScopes, cfg.Audiences),
		log:     cfg.Logger,
		obs:     cfg.Observer,
		slots:   newSlots(cfg.MaxConcurrency),
		seen:    newKnownTokens(known),
		clients: newClients(cfg.RefusalRate, cfg.RefusalBurst, cfg.ClientConcurrency, maxClients),
		// Queueing for a slot may use half the time budget, so that a
		// call that gets one still has time to be answered.
		shedWait: min(defaultShedWait, cfg.Timeout/2),
	}
	if cfg.TracerProvider != nil {
		v.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	v.stop, v.stopNow = context.WithCancel(context.Background())
	v.tier = newTier(&v.cfg)
	if cfg.HTTPClient != nil {
		// A shallow copy so we can refuse redirects without changing the
		// caller's client.
		c := *cfg.HTTPClient
		c.CheckRedirect = urlrule.NoRedirects
		v.client = &c
	} else {
		v.client = newHTTPClient()
		v.ownsClient = true
	}
	if cfg.AuthMethod == AuthMethodClientSecretBasic && cfg.ClientID != "" {
		v.basicHeader = basicAuthorization(cfg.ClientID, cfg.ClientSecret)
	}
	if cfg.Endpoint != "" {
		ep := cfg.Endpoint
		v.endpoint.Store(&ep)
	}
	c, err := newCache(cfg.CacheMaxBytes-int64(known)*knownTokenCost, v.obs, false)
	if err != nil {
		return nil, fmt.Errorf("introspect: cache: %w", err)
	}
	v.cache = c
	if err := v.initLocal(); err != nil {
		c.Close()
		return nil, err
	}
	return v, nil
}

// Endpoint returns the introspection endpoint, or "" if it has not been
// discovered yet.
func (v *Verifier) Endpoint() string {
	if p := v.endpoint.Load(); p != nil {
		return *p
	}
	return ""
}

// Close stops everything the Verifier started: it cancels introspection
// calls in flight (their waiters get an *UnavailableError) and waits for
// them to return, stops the cache's goroutines and, if the Verifier created
// its own HTTP client, closes its idle connections. Verify keeps working
// after Close, without a cache.
func (v *Verifier) Close() {
	v.cacheMu.Lock()
	if !v.cacheClosed {
		v.cacheClosed = true
		v.cache.Close()
	}
	v.cacheMu.Unlock()
	v.stopNow()
	v.inflight.Wait()
	v.closeLocal()
	if v.ownsClient {
		v.client.CloseIdleConnections()
	}
}

// Verify checks a bearer token and returns what the authorization server
// said about it. It is the one place that decides, with Config.Now, whether
// the token is accepted, expiry included. The returned TokenInfo is shared
// with the cache and must be treated as read-only.
//
// Errors: *accesstoken.InvalidError (unwraps to auth.ErrInvalidToken),
// *UnavailableError (also when shed for load: it then wraps ErrOverloaded;
// and, when a JWT must be verified locally, when the issuer's metadata or
// JWKS cannot be fetched), *ClientAuthError, *RateLimitError (the client
// named by WithClient sent too many tokens the authorization server
// refused); if ctx ends while waiting, an *UnavailableError wrapping ctx's
// cause.
func (v *Verifier) Verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	if v.tracer != nil {
		return v.verifyTraced(ctx, token)
	}
	return v.verify(ctx, token)
}

// verify is Verify, inside a span of its own when tracing (trace.go).
func (v *Verifier) verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	if token == "" {
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonMalformed, Detail: "empty token"}
	}
	if len(token) > accesstoken.MaxLength {
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonMalformed, Detail: "token too long"}
	}
	// Hash the token's bytes in place: the conversion []byte(token) would
	// copy (and heap-allocate for tokens over 32 bytes) on every request.
	// sha256.Sum256 only reads its argument and does not retain it.
	digest := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	now := v.cfg.Now()
	e, fresh := v.lookup(&digest, now)
	if e != nil && v.revokedEntry(e, TierLocal) {
		e, fresh = nil, false
	}
	v.traceCache(ctx, fresh)
	if fresh {
		v.obs.CacheHit()
		return e.result(now, v.cfg.ClockSkew)
	}
	v.obs.CacheMiss()
	return v.verifyMiss(ctx, token, digest, e)
}

// verifyMiss is Verify's slow path. It is a separate function taking the
// digest by value so that the closure below does not force the digest of
// every cache hit onto the heap. stale is an accepted answer past its fresh
// life (Config.StaleIfError), or nil.
//
// One introspection runs per token however many requests carry it. The
// shared call must not die with the first caller's context (that would fail
// every other waiter), so it runs detached with its own timeout, and each
// caller waits on its own context.
func (v *Verifier) verifyMiss(ctx context.Context, token string, digest [32]byte, stale *entry) (*auth.TokenInfo, error) {
	if v.local.mode.JWT {
		if info, err, decided := v.verifyLocal(ctx, token, &digest); decided {
			v.traceValidator(ctx, ValidatorJWT)
			return info, err
		}
	}
	v.traceValidator(ctx, ValidatorIntrospection)
	ch := v.calls.DoChan(v.flightKey(&digest), func() (res any, err error) {
		// The shared tier (shared.go): another machine's verdict, or its
		// lock and then its answer; this machine's verdict is shared.
		sh := v.sharedBefore(ctx, &digest, token)
		if sh != nil && sh.done {
			return sh.info, sh.err
		}
		defer func() { sh.sharedAfter(res, err) }()
		// Admission (admission.go) is decided and settled here, once per
		// shared call, not once per waiter: a burst of requests with one
		// new token costs its client one place and at most one refusal.
		actx, settle, err := v.admit(ctx, &digest, stale)
		if err != nil {
			return nil, err
		}
		info, err := v.introspectAndStore(actx, token, &digest)
		settle(info, err)
		return info, err
	})
	if v.beforeWait != nil {
		v.beforeWait()
	}
	select {
	case res := <-ch:
		if res.Err != nil {
			if info, ok := v.serveStale(ctx, stale, res.Err); ok {
				return info, nil
			}
			return nil, res.Err
		}
		info, _ := res.Val.(*auth.TokenInfo)
		return info, nil
	case <-ctx.Done():
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: context.Cause(ctx)}
	}
}

// introspectAndStore is the shared part of a cache miss: take an
// introspection slot, ask the AS, check the claims, remember the verdict.
func (v *Verifier) introspectAndStore(ctx context.Context, token string, digest *[32]byte) (*auth.TokenInfo, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.cfg.Timeout)
	defer cancel()
	if v.track() {
		defer v.inflight.Done()
		defer context.AfterFunc(v.stop, cancel)()
	}
	if err := v.acquire(ctx); err != nil {
		return nil, err
	}
	started := v.cfg.Now() // what revocations are judged against
	c, err := v.introspect(ctx, token)
	v.release()
	now := v.cfg.Now()
	if err != nil {
		// Only a verdict about the token is cached; "could not ask" and
		// "our credentials were refused" say nothing about it.
		var invalid *accesstoken.InvalidError
		if errors.As(err, &invalid) {
			v.storeRefusal(&entry{digest: *digest, err: invalid}, now)
			v.obs.Validation(ValidatorIntrospection, false)
		}
		return nil, err
	}

	exp, nbf := accesstoken.Time(c.Exp, c.HasExp), accesstoken.Time(c.Nbf, c.HasNbf)
	e := &entry{digest: *digest, exp: instantOf(exp), nbf: instantOf(nbf), verifiedAt: instantOf(started)}
	if st := v.checker.Static(c); st != nil {
		e.err = st
		v.storeRefusal(e, now)
		v.obs.Validation(ValidatorIntrospection, false)
		v.log.DebugContext(ctx, "token refused", "validator", string(ValidatorIntrospection), "reason", string(st.Reason))
		return nil, st
	}
	v.accept(e, c, token)
	if ttl := activeTTL(now, exp, v.cfg.CacheMaxTTL); ttl > 0 {
		v.store(e, now, ttl)
	} else {
		// Already past exp: remembered like any refusal; the hit path
		// recomputes "expired" from exp.
		v.storeRefusal(e, now)
	}
	err = accesstoken.CheckTime(exp, nbf, now, v.cfg.ClockSkew)
	v.obs.Validation(ValidatorIntrospection, err == nil)
	if err != nil {
		return nil, err
	}
	return e.newInfo(), nil
}

// storeRefusal caches a refusal for CacheNegativeTTL. Either way it
// replaces any earlier (possibly stale, accepted) answer for the token at
// once: a token the AS now refuses must never be served stale.
func (v *Verifier) storeRefusal(e *entry, now time.Time) {
	if v.cfg.CacheNegativeTTL > 0 {
		v.store(e, now, v.cfg.CacheNegativeTTL)
		return
	}
	v.forget(&e.digest)
}

// Inspection is what the authorization server said about one token and
// what the Verifier decides about it, for diagnosis (the configuration
// doctor). Claims is nil when no answer could be had or the answer was
// "active": false.
type Inspection struct {
	// Validator is what decided: local JWT verification or introspection.
	Validator Validator
	// NotLocal, under TOKEN_VALIDATION=jwt, says why the token could not
	// be verified locally (not a JWS, algorithm, no key).
	NotLocal *jwtaccess.NotLocalError
	Claims   *accesstoken.Claims
	// Err is the verdict: nil when the token would be accepted, else the
	// error Verify would return.
	Err error
}

// Inspect validates token without the cache, coalescing or admission, by
// the validator Verify would use (a JWT verified locally, or
// introspection), and returns the claims together with the verdict, so
// that a diagnosis can say why a token is refused. It is the same
// exchange and the same checks as Verify. The token is never logged or
// kept.
func (v *Verifier) Inspect(ctx context.Context, token string) *Inspection {
	if token == "" || len(token) > accesstoken.MaxLength {
		return &Inspection{Err: &accesstoken.InvalidError{Reason: accesstoken.ReasonMalformed}}
	}
	if in, ok := v.inspectLocal(ctx, token); ok {
		return in
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	c, err := v.introspect(ctx, token)
	if err != nil {
		return &Inspection{Validator: ValidatorIntrospection, Err: err}
	}
	if st := v.checker.Static(c); st != nil {
		return &Inspection{Validator: ValidatorIntrospection, Claims: c, Err: st}
	}
	err = accesstoken.CheckTime(accesstoken.Time(c.Exp, c.HasExp), accesstoken.Time(c.Nbf, c.HasNbf), v.cfg.Now(), v.cfg.ClockSkew)
	return &Inspection{Validator: ValidatorIntrospection, Claims: c, Err: err}
}

// Ready reports whether the Verifier can verify tokens: nil when the
// introspection endpoint is known (discovering it now if not) and the
// authorization server has not refused the gateway's credentials since the
// last successful introspection, and, when every token must be a JWT, the
// issuer's JWKS has been fetched; otherwise an error saying why.
func (v *Verifier) Ready(ctx context.Context) error {
	if err := v.Discover(ctx); err != nil {
		return err
	}
	if e := v.authFailure.Load(); e != nil {
		return e
	}
	return v.readyLocal(ctx)
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
