// Package introspect verifies OAuth 2.0 bearer tokens for a resource server
// (the MCP gateway) with RFC 7662 token introspection.
//
// A [Verifier] posts each unknown token to the authorization server's
// introspection endpoint (configured, or discovered with RFC 8414 / OpenID
// Connect Discovery), parses the answer strictly, checks issuer, audience,
// token type, expiry and not-before, and caches the verdict in a bounded
// ristretto cache keyed by a SHA-256 digest of the token. Concurrent
// requests for the same new token share one introspection call.
//
// Errors are typed: [InvalidTokenError] (the token is bad: answer 401),
// [UnavailableError] (we could not find out: answer 503 with Retry-After)
// and [ClientAuthError] (the gateway's own credentials were refused: a
// configuration error). The raw token never appears in an error, a log
// record or the cache.
//
// Package introspecttest provides a fake authorization server for tests.
package introspect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// Client authentication methods for the introspection call (RFC 7662 §2.1
// requires the protected resource to authenticate; RFC 6749 §2.3.1 defines
// these two).
const (
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
)

// MaxTokenLength is the longest token Verify sends to the authorization
// server. Real access tokens (opaque or JWT) are far shorter; refusing huge
// ones locally stops a client from using us to flood the AS.
const MaxTokenLength = 4096

// Defaults applied by New for zero Config fields.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultCacheMaxTTL      = 60 * time.Second
	DefaultCacheNegativeTTL = 5 * time.Second
	DefaultCacheMaxBytes    = 64 << 20
	DefaultMaxResponseBytes = 64 << 10
)

// Config configures a Verifier. The zero value of each duration and size
// field selects the default documented on it.
type Config struct {
	// Endpoint is the RFC 7662 introspection URL. If empty, it is discovered
	// from Issuer (RFC 8414 §3 path-inserted
	// /.well-known/oauth-authorization-server{path}, then OpenID Connect
	// Discovery /.well-known/openid-configuration, path-inserted and
	// path-appended), metadata field "introspection_endpoint".
	Endpoint string
	// Issuer is the expected "iss". When an answer carries "iss" it must
	// equal this (exactly, up to one trailing slash). Empty disables the
	// check (then Endpoint is required).
	Issuer       string
	ClientID     string
	ClientSecret string
	// AuthMethod is "client_secret_basic" (default when empty) or
	// "client_secret_post".
	AuthMethod string
	// Audiences are the accepted audiences: a token's "aud" (string or
	// array) must contain one. URIs are compared after RFC 3986 §6.2.2
	// normalisation ("HTTPS://Example.COM:443/mcp" == "https://example.com/mcp",
	// but "/mcp" != "/mcp/"); other strings exactly. At least one is required.
	Audiences []string
	// AllowMissingAudience accepts a token whose answer has no "aud".
	AllowMissingAudience bool
	// ClockSkew is the tolerance on "exp" and "nbf". Zero means none; the
	// gateway passes 30s.
	ClockSkew time.Duration
	// Timeout bounds each introspection (and discovery) HTTP call. Default 5s.
	Timeout time.Duration
	// CacheMaxTTL bounds how long an active answer is reused:
	// min(exp-now, CacheMaxTTL). It is how late a revocation may be noticed.
	// Default 60s.
	CacheMaxTTL time.Duration
	// CacheNegativeTTL is how long a refusal is remembered. Default 5s;
	// negative disables caching of refusals.
	CacheNegativeTTL time.Duration
	// CacheMaxBytes bounds the cache, in estimated bytes of heap (see
	// entry.cost). Default 64 MiB.
	CacheMaxBytes int64
	// HTTPClient makes the introspection and discovery calls. If nil, a
	// keep-alive client tuned for one busy host is used. Redirects are never
	// followed, even with a caller's client (a 307 would re-post the token to
	// wherever the redirect points); a 3xx is an UnavailableError.
	HTTPClient *http.Client
	// MaxResponseBytes bounds an introspection response body; a larger one
	// is an UnavailableError. Default 64 KiB.
	MaxResponseBytes int64
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
	// Logger receives operational logs (never the token). nil discards.
	Logger *slog.Logger

	// Observer receives metrics events (see Observer). nil selects
	// NopObserver.
	Observer Observer
	// StaleIfError lets an accepted answer whose cache life (CacheMaxTTL)
	// has ended be served for up to this long afterwards, but never at or
	// past the token's exp, when re-introspecting it fails with an
	// *UnavailableError (never on a refusal or a ClientAuthError). Each such
	// use is logged at Warn and reported to Observer.StaleUse. An inactive
	// answer drops the stale entry at once. Zero (default) disables it.
	StaleIfError time.Duration
	// MaxConcurrency bounds the introspection calls in flight (requests
	// waiting on another request's call for the same token do not count).
	// When all are busy a new cache miss waits briefly (half of Timeout,
	// 2s at most),
	// then fails with an *UnavailableError wrapping ErrOverloaded. Default
	// DefaultMaxConcurrency.
	MaxConcurrency int
	// ClientRate and ClientBurst limit cache misses (unknown tokens) per
	// client address, as set on the request context with WithClient; past
	// the limit Verify returns *RateLimitError without calling the
	// authorization server. Cache hits are never limited. Zero ClientRate
	// (default) means unlimited; a zero ClientBurst with a positive rate
	// means max(1, ceil(ClientRate)).
	ClientRate  rate.Limit
	ClientBurst int
}

// Verifier verifies bearer tokens by RFC 7662 introspection. It is safe for
// concurrent use. Create it with New and release it with Close.
type Verifier struct {
	cfg        Config // with defaults applied
	client     *http.Client
	ownsClient bool
	checker    claimChecker
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
	authFailure atomic.Pointer[ClientAuthError] // set on 401/403/invalid_client, cleared by a 200

	obs      Observer
	sem      chan struct{}   // MaxConcurrency introspection slots
	shedWait time.Duration   // how long a miss waits for a slot
	limiters *clientLimiters // nil: no per-client rate limit

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

	v := &Verifier{
		cfg:     cfg,
		checker: newClaimChecker(cfg.Issuer, cfg.Audiences, cfg.AllowMissingAudience),
		known:   newInterner(append(scopes.All(), scopes.Parent), cfg.Audiences),
		log:     cfg.Logger,
		obs:     cfg.Observer,
		sem:     make(chan struct{}, cfg.MaxConcurrency),
		// Queueing for a slot may use half the time budget, so that a
		// call that gets one still has time to be answered.
		shedWait: min(defaultShedWait, cfg.Timeout/2),
	}
	v.stop, v.stopNow = context.WithCancel(context.Background())
	if cfg.ClientRate > 0 {
		v.limiters = newClientLimiters(cfg.ClientRate, cfg.ClientBurst, maxClientLimiters)
	}
	if cfg.HTTPClient != nil {
		// A shallow copy so we can refuse redirects without changing the
		// caller's client.
		c := *cfg.HTTPClient
		c.CheckRedirect = noRedirects
		v.client = &c
	} else {
		v.client = newHTTPClient()
		v.ownsClient = true
	}
	if cfg.AuthMethod == AuthMethodClientSecretBasic {
		// RFC 6749 §2.3.1: the client id and secret are form-urlencoded
		// before being joined with ":" and base64-encoded, so a ":" in the
		// id cannot be confused with the separator.
		v.basicHeader = "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(cfg.ClientID)+":"+url.QueryEscape(cfg.ClientSecret)))
	}
	if cfg.Endpoint != "" {
		ep := cfg.Endpoint
		v.endpoint.Store(&ep)
	}
	c, err := newCache(cfg.CacheMaxBytes, v.obs, false)
	if err != nil {
		return nil, fmt.Errorf("introspect: cache: %w", err)
	}
	v.cache = c
	return v, nil
}

func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("introspect: "+format, args...)) }
	if c.Endpoint == "" && c.Issuer == "" {
		add("Endpoint or Issuer is required")
	}
	if c.Endpoint != "" {
		if err := checkServerURL(c.Endpoint, false); err != nil {
			add("Endpoint: %v", err)
		}
	}
	if c.Issuer != "" {
		if err := checkServerURL(c.Issuer, true); err != nil {
			add("Issuer: %v", err)
		}
	}
	if c.ClientID == "" {
		add("ClientID is required")
	}
	if c.ClientSecret == "" {
		add("ClientSecret is required")
	}
	switch c.AuthMethod {
	case "", AuthMethodClientSecretBasic, AuthMethodClientSecretPost:
	default:
		add("AuthMethod %q is not %s or %s", c.AuthMethod, AuthMethodClientSecretBasic, AuthMethodClientSecretPost)
	}
	if len(c.Audiences) == 0 {
		add("at least one audience is required")
	}
	for i, a := range c.Audiences {
		if a == "" {
			add("Audiences[%d] is empty", i)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ClockSkew", c.ClockSkew}, {"Timeout", c.Timeout}, {"CacheMaxTTL", c.CacheMaxTTL}} {
		if d.v < 0 {
			add("%s must not be negative", d.name)
		}
	}
	if c.CacheMaxBytes < 0 {
		add("CacheMaxBytes must not be negative")
	}
	if c.MaxResponseBytes < 0 {
		add("MaxResponseBytes must not be negative")
	}
	if c.StaleIfError < 0 {
		add("StaleIfError must not be negative")
	}
	if c.MaxConcurrency < 0 {
		add("MaxConcurrency must not be negative")
	}
	if c.ClientRate < 0 {
		add("ClientRate must not be negative")
	}
	if c.ClientBurst < 0 {
		add("ClientBurst must not be negative")
	}
	return errors.Join(errs...)
}

func (c *Config) applyDefaults() {
	if c.AuthMethod == "" {
		c.AuthMethod = AuthMethodClientSecretBasic
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CacheMaxTTL == 0 {
		c.CacheMaxTTL = DefaultCacheMaxTTL
	}
	if c.CacheNegativeTTL == 0 {
		c.CacheNegativeTTL = DefaultCacheNegativeTTL
	}
	if c.CacheMaxBytes == 0 {
		c.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.ClientRate > 0 && c.ClientBurst == 0 {
		c.ClientBurst = max(1, int(math.Ceil(float64(c.ClientRate))))
	}
	c.Audiences = append([]string(nil), c.Audiences...)
}

// checkServerURL accepts https URLs, and http only for loopback hosts
// (127.0.0.0/8, ::1, localhost): over plain http to anywhere else the
// gateway's client secret and every token would cross the network in clear.
// An issuer additionally must not have a query or fragment (RFC 8414 §2).
func checkServerURL(s string, issuer bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q is not an absolute URL with a host", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback.Host(u.Hostname()) {
			return fmt.Errorf("%q: http is allowed only for loopback hosts; use https", s)
		}
	default:
		return fmt.Errorf("%q: scheme must be https", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%q must not have a fragment", s)
	}
	if issuer && (u.RawQuery != "" || u.ForceQuery) {
		return fmt.Errorf("%q must not have a query (RFC 8414 §2)", s)
	}
	return nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newHTTPClient is the default client: keep-alive connections sized for a
// gateway that sends every cache miss to one authorization server, and no
// redirects.
func newHTTPClient() *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	t.MaxIdleConns = 128
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, CheckRedirect: noRedirects}
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
	if v.ownsClient {
		v.client.CloseIdleConnections()
	}
}

// Wait blocks until pending cache writes are applied (ristretto's Set is
// asynchronous). For tests.
func (v *Verifier) Wait() {
	v.cacheMu.RLock()
	defer v.cacheMu.RUnlock()
	if !v.cacheClosed {
		v.cache.Wait()
	}
}

// Verify checks a bearer token and returns what the authorization server
// said about it. The returned TokenInfo is shared with the cache and must
// be treated as read-only.
//
// Errors: *InvalidTokenError (unwraps to auth.ErrInvalidToken),
// *UnavailableError (also when shed for load: it then wraps ErrOverloaded),
// *ClientAuthError, *RateLimitError (too many cache misses from the client
// named by WithClient); if ctx ends while waiting, an *UnavailableError
// wrapping ctx's cause.
func (v *Verifier) Verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	if token == "" {
		return nil, &InvalidTokenError{Reason: ReasonMalformed, Detail: "empty token"}
	}
	if len(token) > MaxTokenLength {
		return nil, &InvalidTokenError{Reason: ReasonMalformed, Detail: "token too long"}
	}
	// Hash the token's bytes in place: the conversion []byte(token) would
	// copy (and heap-allocate for tokens over 32 bytes) on every request.
	// sha256.Sum256 only reads its argument and does not retain it.
	digest := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	now := v.cfg.Now()
	e, fresh := v.lookup(&digest, now)
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
	ch := v.calls.DoChan(string(digest[:]), func() (any, error) {
		// The client's rate counts introspection calls it causes, so it
		// is charged here, once per shared call, not once per waiter: a
		// burst of requests with one new token costs one. A token we
		// already know to be good (a stale answer) is not an unknown
		// token and is not charged.
		if stale == nil {
			if err := v.allowClient(ctx); err != nil {
				return nil, err
			}
		}
		return v.introspectAndStore(ctx, token, &digest)
	})
	if v.beforeWait != nil {
		v.beforeWait()
	}
	select {
	case res := <-ch:
		if res.Err != nil {
			if info, ok := v.serveStale(stale, res.Err); ok {
				return info, nil
			}
			return nil, res.Err
		}
		info, _ := res.Val.(*auth.TokenInfo)
		return info, nil
	case <-ctx.Done():
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: context.Cause(ctx)}
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
	r, err := v.introspect(ctx, token)
	v.release()
	now := v.cfg.Now()
	if err != nil {
		// Only a verdict about the token is cached; "could not ask" and
		// "our credentials were refused" say nothing about it.
		var ite *InvalidTokenError
		if errors.As(err, &ite) {
			v.storeRefusal(&entry{digest: *digest, err: ite}, now)
		}
		return nil, err
	}

	e := &entry{digest: *digest, exp: timeOf(r.Exp, r.HasExp), nbf: timeOf(r.Nbf, r.HasNbf)}
	if st := v.checker.checkStatic(r); st != nil {
		e.err = st
		v.storeRefusal(e, now)
		v.log.Debug("introspection: token refused", "reason", string(st.Reason))
		return nil, st
	}
	e.info = r.tokenInfo(v.known)
	if ttl := activeTTL(now, e.exp, v.cfg.CacheMaxTTL); ttl > 0 {
		v.store(e, now, ttl)
	} else {
		// Already past exp: remembered like any refusal; the hit path
		// recomputes "expired" from exp.
		v.storeRefusal(e, now)
	}
	if err := checkTime(e.exp, e.nbf, now, v.cfg.ClockSkew); err != nil {
		return nil, err
	}
	return e.info, nil
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

// introspect makes the RFC 7662 §2.1 request, retrying once (after 50-150
// ms) when the connection failed before any response, and interprets the
// answer's status and body.
func (v *Verifier) introspect(ctx context.Context, token string) (*response, error) {
	if err := v.Discover(ctx); err != nil { // at once when already known
		return nil, unavailable("introspection endpoint unknown: %w", err)
	}
	endpoint := v.Endpoint()

	// §2.1: POST, form-encoded, "token" plus the optional "token_type_hint".
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if v.cfg.AuthMethod == AuthMethodClientSecretPost {
		form.Set("client_id", v.cfg.ClientID)
		form.Set("client_secret", v.cfg.ClientSecret)
	}
	body := form.Encode()
	r, retry, err := v.exchange(ctx, endpoint, body)
	if retry && v.waitRetry(ctx) {
		v.log.Info("introspection: retrying after connection failure", "endpoint", endpoint)
		r, _, err = v.exchange(ctx, endpoint, body)
	}
	return r, err
}

// Observer outcomes of one introspection exchange.
const (
	outcomeActive      = "active"
	outcomeInactive    = "inactive"
	outcomeRejected    = "rejected"
	outcomeClientAuth  = "client_auth"
	outcomeTimeout     = "timeout"
	outcomeNetwork     = "network"
	outcomeStatus      = "status"
	outcomeBadResponse = "bad_response"
)

// exchange is one HTTP exchange with the introspection endpoint, reported
// to the Observer. retry says the request failed before any response and
// may be tried once more.
func (v *Verifier) exchange(ctx context.Context, endpoint, form string) (r *response, retry bool, err error) {
	outcome := outcomeNetwork
	start := time.Now()
	defer func() { v.obs.IntrospectionCall(outcome, time.Since(start)) }()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return nil, false, unavailable("cannot build introspection request")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if v.basicHeader != "" {
		req.Header.Set("Authorization", v.basicHeader)
	}

	// Whether any byte of a response arrived decides whether a failure
	// may be retried.
	var gotResponse atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { gotResponse.Store(true) },
	}))
	resp, err := v.client.Do(req)
	if err != nil {
		// A *url.Error names the method and endpoint URL, never the body,
		// so it does not contain the token.
		outcome = transportOutcome(ctx, err)
		v.log.Warn("introspection: authorization server unreachable", "endpoint", endpoint, "err", err)
		return nil, retryable(ctx, err, gotResponse.Load()), &UnavailableError{RetryAfter: defaultRetryAfter, Err: err}
	}
	defer resp.Body.Close()
	body, tooBig, err := readLimited(resp.Body, v.cfg.MaxResponseBytes)
	v.log.Debug("introspection", "status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		outcome = transportOutcome(ctx, err)
		return nil, false, unavailable("reading introspection response: %w", err)
	}

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		v.authFailure.Store(nil)
		if tooBig {
			outcome = outcomeBadResponse
			return nil, false, unavailable("introspection response larger than %d bytes", v.cfg.MaxResponseBytes)
		}
		r, err := parseResponse(body)
		switch e := err.(type) {
		case nil:
			outcome = outcomeActive
		case *UnavailableError:
			outcome = outcomeBadResponse
			v.log.Warn("introspection: uninterpretable response", "err", e.Err)
		default:
			outcome = outcomeInactive
		}
		return r, false, err
	case code == http.StatusBadRequest:
		err := v.badRequest(body)
		switch err.(type) {
		case *InvalidTokenError:
			outcome = outcomeRejected
		case *ClientAuthError:
			outcome = outcomeClientAuth
		default:
			outcome = outcomeStatus
		}
		return nil, false, err
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		outcome = outcomeClientAuth
		return nil, false, v.clientAuthFailed(code)
	case code == http.StatusTooManyRequests || code >= 500:
		outcome = outcomeStatus
		ra := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		v.log.Warn("introspection: authorization server unavailable", "status", code, "retry_after", ra)
		return nil, false, &UnavailableError{RetryAfter: ra, Err: fmt.Errorf("authorization server answered HTTP %d", code)}
	case code >= 300 && code < 400:
		outcome = outcomeBadResponse
		v.log.Warn("introspection: redirect not followed", "status", code)
		return nil, false, unavailable("authorization server answered HTTP %d redirect; redirects are not followed", code)
	default:
		outcome = outcomeStatus
		return nil, false, unavailable("authorization server answered HTTP %d", code)
	}
}

// transportOutcome classifies a failed exchange as "timeout" or "network".
func transportOutcome(ctx context.Context, err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return outcomeTimeout
	}
	return outcomeNetwork
}

// badRequest interprets a 400 by its RFC 6749 §5.2 "error" code.
func (v *Verifier) badRequest(body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	switch e.Error {
	case "invalid_request", "unsupported_token_type", "invalid_token":
		// About the token (or its shape): a verdict, cacheable.
		return &InvalidTokenError{Reason: ReasonRejected, Detail: "authorization server answered " + e.Error}
	case "invalid_client", "unauthorized_client":
		// RFC 6749 §5.2 allows 400 for a client authentication failure.
		return v.clientAuthFailed(http.StatusBadRequest)
	}
	return unavailable("authorization server answered HTTP 400")
}

func (v *Verifier) clientAuthFailed(code int) error {
	e := &ClientAuthError{StatusCode: code}
	v.authFailure.Store(e)
	v.log.Error("introspection credentials rejected", "status", code, "client_id", v.cfg.ClientID)
	return e
}

// readLimited reads at most limit bytes of r; tooBig reports that more
// were available. The body is never read unbounded.
func readLimited(r io.Reader, limit int64) (body []byte, tooBig bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return body[:limit], true, nil
	}
	return body, false, nil
}

// Ready reports whether the Verifier can verify tokens: nil when the
// introspection endpoint is known (discovering it now if not) and the
// authorization server has not refused the gateway's credentials since the
// last successful introspection; otherwise an error saying why.
func (v *Verifier) Ready(ctx context.Context) error {
	if err := v.Discover(ctx); err != nil {
		return err
	}
	if e := v.authFailure.Load(); e != nil {
		return e
	}
	return nil
}
