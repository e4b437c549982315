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
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/sync/singleflight"
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
}

// Verifier verifies bearer tokens by RFC 7662 introspection. It is safe for
// concurrent use. Create it with New and release it with Close.
type Verifier struct {
	cfg        Config // with defaults applied
	client     *http.Client
	ownsClient bool
	checker    claimChecker
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

	// beforeWait, when set (tests only), runs just before a Verify call
	// waits for a shared introspection.
	beforeWait func()
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
		log:     cfg.Logger,
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
	c, err := newCache(cfg.CacheMaxBytes)
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
		if !isLoopback(u.Hostname()) {
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

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// Close stops the cache's goroutines and, if the Verifier created its own
// HTTP client, closes its idle connections. Verify keeps working after
// Close, without a cache.
func (v *Verifier) Close() {
	v.cacheMu.Lock()
	if !v.cacheClosed {
		v.cacheClosed = true
		v.cache.Close()
	}
	v.cacheMu.Unlock()
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
// *UnavailableError, *ClientAuthError; if ctx ends while waiting, an
// *UnavailableError wrapping ctx's cause.
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
	if e, ok := v.lookup(&digest, now); ok {
		return e.result(now, v.cfg.ClockSkew)
	}
	return v.verifyMiss(ctx, token, digest)
}

// verifyMiss is Verify's slow path. It is a separate function taking the
// digest by value so that the closure below does not force the digest of
// every cache hit onto the heap.
//
// One introspection runs per token however many requests carry it. The
// shared call must not die with the first caller's context (that would fail
// every other waiter), so it runs detached with its own timeout, and each
// caller waits on its own context.
func (v *Verifier) verifyMiss(ctx context.Context, token string, digest [32]byte) (*auth.TokenInfo, error) {
	ch := v.calls.DoChan(string(digest[:]), func() (any, error) {
		return v.introspectAndStore(ctx, token, &digest)
	})
	if v.beforeWait != nil {
		v.beforeWait()
	}
	select {
	case res := <-ch:
		info, _ := res.Val.(*auth.TokenInfo)
		if res.Err != nil {
			return nil, res.Err
		}
		return info, nil
	case <-ctx.Done():
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: context.Cause(ctx)}
	}
}

// introspectAndStore is the shared part of a cache miss: ask the AS, check
// the claims, remember the verdict.
func (v *Verifier) introspectAndStore(ctx context.Context, token string, digest *[32]byte) (*auth.TokenInfo, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.cfg.Timeout)
	defer cancel()

	r, err := v.introspect(ctx, token)
	now := v.cfg.Now()
	if err != nil {
		// Only a verdict about the token is cached; "could not ask" and
		// "our credentials were refused" say nothing about it.
		var ite *InvalidTokenError
		if errors.As(err, &ite) {
			v.store(&entry{digest: *digest, err: ite}, now, v.cfg.CacheNegativeTTL)
		}
		return nil, err
	}

	e := &entry{digest: *digest, exp: timeOf(r.Exp, r.HasExp), nbf: timeOf(r.Nbf, r.HasNbf)}
	if st := v.checker.checkStatic(r); st != nil {
		e.err = st
		v.store(e, now, v.cfg.CacheNegativeTTL)
		v.log.Debug("introspection: token refused", "reason", string(st.Reason))
		return nil, st
	}
	e.info = r.tokenInfo()
	ttl := activeTTL(now, e.exp, v.cfg.CacheMaxTTL)
	if ttl <= 0 {
		// Already past exp: remember briefly like any refusal; the hit
		// path recomputes "expired" from exp.
		ttl = v.cfg.CacheNegativeTTL
	}
	v.store(e, now, ttl)
	if err := checkTime(e.exp, e.nbf, now, v.cfg.ClockSkew); err != nil {
		return nil, err
	}
	return e.info, nil
}

// introspect makes the RFC 7662 §2.1 request and interprets the answer's
// status and body.
func (v *Verifier) introspect(ctx context.Context, token string) (*response, error) {
	endpoint := v.Endpoint()
	if endpoint == "" {
		if err := v.Discover(ctx); err != nil {
			return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: fmt.Errorf("introspection endpoint unknown: %w", err)}
		}
		endpoint = v.Endpoint()
	}

	// §2.1: POST, form-encoded, "token" plus the optional "token_type_hint".
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if v.cfg.AuthMethod == AuthMethodClientSecretPost {
		form.Set("client_id", v.cfg.ClientID)
		form.Set("client_secret", v.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: errors.New("cannot build introspection request")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if v.basicHeader != "" {
		req.Header.Set("Authorization", v.basicHeader)
	}

	start := time.Now()
	resp, err := v.client.Do(req)
	if err != nil {
		// A *url.Error names the method and endpoint URL, never the body,
		// so it does not contain the token.
		v.log.Warn("introspection: authorization server unreachable", "endpoint", endpoint, "err", err)
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: err}
	}
	defer resp.Body.Close()
	body, tooBig, err := readLimited(resp.Body, v.cfg.MaxResponseBytes)
	v.log.Debug("introspection", "status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: fmt.Errorf("reading introspection response: %w", err)}
	}

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		v.authFailure.Store(nil)
		if tooBig {
			return nil, unavailable("introspection response larger than %d bytes", v.cfg.MaxResponseBytes)
		}
		r, err := parseResponse(body)
		if ue, ok := err.(*UnavailableError); ok {
			v.log.Warn("introspection: uninterpretable response", "err", ue.Err)
		}
		return r, err
	case code == http.StatusBadRequest:
		return nil, v.badRequest(body)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, v.clientAuthFailed(code)
	case code == http.StatusTooManyRequests || code >= 500:
		ra := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		v.log.Warn("introspection: authorization server unavailable", "status", code, "retry_after", ra)
		return nil, &UnavailableError{RetryAfter: ra, Err: fmt.Errorf("authorization server answered HTTP %d", code)}
	case code >= 300 && code < 400:
		v.log.Warn("introspection: redirect not followed", "status", code)
		return nil, unavailable("authorization server answered HTTP %d redirect; redirects are not followed", code)
	default:
		return nil, unavailable("authorization server answered HTTP %d", code)
	}
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
