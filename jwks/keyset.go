// Package jwks keeps a JSON Web Key Set (RFC 7517 §5) the way a party
// verifying signatures needs it: the authorization server's keys for
// JWT access tokens (package jwtaccess), a Shared Signals transmitter's
// keys for Security Event Tokens (package ssf).
//
// The issuer's JSON Web Key Set (RFC 7517 §5), as a resource server keeps
// it: fetched from the issuer's jwks_uri (RFC 8414 §2), cached for the
// lifetime its HTTP answer allows (RFC 9111 §5.2.2.1 max-age, bounded),
// refreshed in the background before that ends (or, without Start, on
// the first use after it ends), and refreshed at once
// when a token names a key it does not hold, at most once per MinRefresh
// however many tokens do (RFC 8725 §3.10 warns that key lookups driven by
// a token's header are an attacker's lever). The keys it has stay in use
// while the issuer cannot be reached: an outage of the JWKS endpoint must
// not turn into an outage of the gateway.
package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// Defaults applied by NewKeySet for zero KeySetConfig fields.
const (
	// DefaultMinRefresh is the default KeySetConfig.MinRefresh.
	DefaultMinRefresh = 30 * time.Second
	// DefaultLifetime is how long a JWKS answer without a usable
	// Cache-Control max-age is trusted before it is fetched again.
	DefaultLifetime = time.Hour
	// DefaultMinLifetime and DefaultMaxLifetime bound the lifetime a
	// JWKS answer's max-age asks for: an issuer saying "no-cache" must not
	// make the gateway fetch on every request, and one saying "a year"
	// must not keep a removed key trusted for a year.
	DefaultMinLifetime = time.Minute
	DefaultMaxLifetime = 24 * time.Hour
	// DefaultFetchTimeout bounds one JWKS fetch.
	DefaultFetchTimeout = 5 * time.Second
	// DefaultMaxBytes bounds a JWKS document. Real ones are a few KiB
	// (Entra's, with certificate chains, about 10 KiB).
	DefaultMaxBytes = 512 << 10
	// DefaultMaxKeys bounds the keys kept from one document.
	DefaultMaxKeys = 100
	// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3:
	// "A key of size 2048 bits or larger MUST be used").
	minRSABits = 2048
	// maxRetryBackoff caps the pause between failed background fetches.
	maxRetryBackoff = 5 * time.Minute
)

// FetchOutcome says how one JWKS fetch ended.
type FetchOutcome string

// The outcomes of a fetch.
const (
	FetchOK          FetchOutcome = "ok"           // 200 with at least one usable key
	FetchNetwork     FetchOutcome = "network"      // connection refused, reset, DNS ...
	FetchTimeout     FetchOutcome = "timeout"      // no answer in time
	FetchStatus      FetchOutcome = "status"       // any status but 200 (redirects included: never followed)
	FetchBadResponse FetchOutcome = "bad_response" // too large, not a JWK Set, no usable signing key
)

// AllFetchOutcomes lists every FetchOutcome in a stable order (a metric's
// label set).
func AllFetchOutcomes() []FetchOutcome {
	return []FetchOutcome{FetchOK, FetchNetwork, FetchTimeout, FetchStatus, FetchBadResponse}
}

// Observer receives what the key set does, for metrics. It must be safe
// for concurrent use.
type Observer interface {
	// JWKSFetch reports one fetch of the JWKS, how it ended and how long
	// it took.
	JWKSFetch(outcome FetchOutcome, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) JWKSFetch(FetchOutcome, time.Duration) {}

// KeySetConfig configures a KeySet. Zero duration and size fields select
// the defaults above.
type KeySetConfig struct {
	// URL is the JWKS location: the issuer's "jwks_uri" (RFC 8414 §2), or
	// JWKS_URL. https, or http on a loopback host (urlrule.Server). Empty
	// when ResolveURL is set.
	URL string
	// ResolveURL, when not nil, is called at the start of every fetch, within
	// its Timeout, and returns where the JWKS is now: for a party whose
	// keys are found through metadata that NewKeySet must not fetch yet
	// (ssf: the transmitter's jwks_uri, SSF 1.0 §7.2, read on the first SET
	// so that a transmitter that is down does not stop the gateway from
	// starting, and read again on each fetch so a moved jwks_uri is
	// followed). Its result must pass the same rule as URL. Its error is
	// the fetch's: reported as FetchTimeout or FetchNetwork when it wraps
	// one, else as FetchBadResponse, and counted by the MinRefresh gate
	// like any failed fetch.
	ResolveURL func(ctx context.Context) (string, error)
	// HTTPClient fetches the JWKS. nil: a default client. Redirects are
	// never followed (a 3xx is a failed fetch), even with a caller's client.
	HTTPClient *http.Client
	// MinRefresh is the least time between two fetches caused by tokens
	// naming an unknown key ("kid"), however many such tokens arrive.
	MinRefresh time.Duration
	// MinLifetime, MaxLifetime bound the lifetime a Cache-Control max-age
	// asks for; DefaultLifetime applies without one.
	MinLifetime, MaxLifetime, DefaultLifetime time.Duration
	// Timeout bounds one fetch (ResolveURL included); MaxBytes the
	// document; MaxKeys the keys kept from it (the first MaxKeys usable
	// ones).
	Timeout  time.Duration
	MaxBytes int64
	MaxKeys  int
	// RefuseAboveMaxKeys makes a document with more than MaxKeys entries
	// (usable or not) a failed fetch, keeping the keys held, rather than
	// truncated: for a key set expected to be small (ssf), where so many
	// keys means something is wrong at the source.
	RefuseAboveMaxKeys bool
	// PublicHalfOfPrivateKeys keeps the public half of an asymmetric
	// private key published by mistake, instead of refusing the key. Never
	// for access tokens: anyone who read that document can mint tokens the
	// gateway would accept. Tolerable for Shared Signals (ssf), where a
	// forged SET can only make the gateway ask the authorization server
	// again, and refusing would stop genuine revocations.
	PublicHalfOfPrivateKeys bool
	// KeylessCandidates is how many keys fitting the algorithm a Lookup
	// without "kid" may return, for the caller to try in turn (RFC 7515
	// §4.1.4 makes "kid" optional); more is no match. Zero: 1, since
	// one key is a verification but several are a guess whose cost the
	// sender chooses. ssf allows a few (transmitters with one or two keys
	// often omit "kid").
	KeylessCandidates int
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// Logger receives operational logs. nil discards.
	Logger *slog.Logger
	// Observer receives fetch outcomes. nil ignores them.
	Observer Observer
	// TracerProvider, when not nil, records a span for each fetch: a
	// child of the request whose token named an unknown key, or a root
	// span for a background refresh. nil: no spans.
	TracerProvider trace.TracerProvider
}

// Tracing vocabulary: the span of one fetch, and its attribute saying how
// it ended (a FetchOutcome).
const (
	tracerName       = "github.com/mcp-gateway/mcp-gateway/jwks"
	spanFetch        = "jwks fetch"
	attrFetchOutcome = attribute.Key("mcp_gateway.jwks.outcome")
)

// KeySet is an issuer's JWKS, kept fresh. It is safe for concurrent use.
// Create it with NewKeySet; Start begins the background refresh; Close
// stops it.
type KeySet struct {
	cfg    KeySetConfig
	client *http.Client
	owns   bool
	tracer trace.Tracer // nil: no spans

	keys   atomic.Pointer[snapshot]
	url    atomic.Pointer[string] // where the last fetch went (cfg.URL without ResolveURL)
	flight singleflight.Group

	mu          sync.Mutex
	lastAttempt time.Time     // of the last fetch begun, by cfg.Now: the unknown-kid gate
	lastErr     error         // of the last fetch finished; nil after a success
	fetching    chan struct{} // closed when the fetch in flight ends; nil when none is

	stop    context.Context
	stopNow context.CancelFunc
	wg      sync.WaitGroup
	started atomic.Bool

	// wait pauses the background loop (tests replace it).
	wait func(ctx context.Context, d time.Duration) bool
}

// snapshot is one fetched key set, immutable once published.
type snapshot struct {
	keys    []jose.JSONWebKey // public signing keys only
	skipped []string          // why other keys of the document were not kept
	exposed []string          // private keys the document published, whose public half is kept
	fetched time.Time
	expires time.Time // fetched + lifetime
}

// NewKeySet validates cfg and returns a KeySet holding no keys yet. It
// makes no network call.
func NewKeySet(cfg KeySetConfig) (*KeySet, error) {
	switch {
	case cfg.ResolveURL == nil:
		if _, err := urlrule.Server(cfg.URL); err != nil {
			return nil, fmt.Errorf("jwks: JWKS URL: %w", err)
		}
	case cfg.URL != "":
		return nil, errors.New("jwks: URL and ResolveURL are exclusive")
	}
	for _, d := range []time.Duration{cfg.MinRefresh, cfg.MinLifetime, cfg.MaxLifetime, cfg.DefaultLifetime, cfg.Timeout} {
		if d < 0 {
			return nil, errors.New("jwks: key set durations must not be negative")
		}
	}
	if cfg.MaxBytes < 0 || cfg.MaxKeys < 0 || cfg.KeylessCandidates < 0 {
		return nil, errors.New("jwks: key set bounds must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.MinRefresh, DefaultMinRefresh)
	def(&cfg.MinLifetime, DefaultMinLifetime)
	def(&cfg.MaxLifetime, DefaultMaxLifetime)
	def(&cfg.DefaultLifetime, DefaultLifetime)
	def(&cfg.Timeout, DefaultFetchTimeout)
	if cfg.MaxLifetime < cfg.MinLifetime {
		cfg.MaxLifetime = cfg.MinLifetime
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.KeylessCandidates == 0 {
		cfg.KeylessCandidates = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	k := &KeySet{cfg: cfg, wait: sleep}
	k.url.Store(&cfg.URL)
	if cfg.TracerProvider != nil {
		k.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		c.CheckRedirect = urlrule.NoRedirects
		k.client = &c
	} else {
		k.client = &http.Client{CheckRedirect: urlrule.NoRedirects}
		k.owns = true
	}
	k.stop, k.stopNow = context.WithCancel(context.Background())
	return k, nil
}

// URL is where the key set is fetched from: with ResolveURL, where the
// last fetch that resolved it went ("" before).
func (k *KeySet) URL() string { return *k.url.Load() }

// Start begins the background refresh: a fetch now, retried with jittered
// exponential backoff (100 ms doubling up to 5 min) until one succeeds,
// then a fetch before each answer's lifetime ends. It returns at once;
// calling it again does nothing.
//
// A KeySet that is never started keeps its keys fresh on use instead: a
// Lookup that finds them past their lifetime fetches them first, under
// the MinRefresh gate, and keeps using them if that fetch fails. So a
// user without a goroutine of its own (ssf's receiver) still stops
// trusting a key its issuer withdrew.
func (k *KeySet) Start() {
	if !k.started.CompareAndSwap(false, true) {
		return
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.loop()
	}()
}

// Close stops the background refresh and waits for it.
func (k *KeySet) Close() {
	k.stopNow()
	k.wg.Wait()
	if k.owns {
		k.client.CloseIdleConnections()
	}
}

func (k *KeySet) loop() {
	backoff := 100 * time.Millisecond
	for {
		var next time.Duration
		if err := k.Refresh(k.stop); err != nil {
			if k.stop.Err() != nil {
				return
			}
			next = backoff/2 + rand.N(backoff)
			backoff = min(backoff*2, maxRetryBackoff)
		} else {
			backoff = 100 * time.Millisecond
			s := k.keys.Load()
			// Refresh at 90% of the lifetime, so the next answer is in
			// before this one goes stale.
			next = max(s.expires.Sub(s.fetched)*9/10, time.Second)
		}
		if !k.wait(k.stop, next) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Refresh fetches the key set now, sharing a fetch already in flight. The
// shared fetch is not cancelled when ctx ends (other callers may wait on
// it); ctx only bounds this caller's wait. On failure the keys held so far
// are kept.
func (k *KeySet) Refresh(ctx context.Context) error {
	ch := k.flight.DoChan("fetch", func() (any, error) {
		done := make(chan struct{})
		k.mu.Lock()
		k.lastAttempt = k.cfg.Now()
		k.fetching = done
		k.mu.Unlock()
		err := k.fetch(context.WithoutCancel(ctx))
		k.mu.Lock()
		k.fetching = nil
		k.mu.Unlock()
		close(done)
		return nil, err
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// refreshForUnknownKey refreshes because a token named a key the set does
// not hold, unless a fetch began less than MinRefresh ago: then it only
// waits for that fetch if it is still in flight, and fetches nothing.
// Concurrent callers share one fetch. It reports whether a fetch ended
// while it waited (made by it or by another caller).
func (k *KeySet) refreshForUnknownKey(ctx context.Context) bool {
	ch := k.flight.DoChan("unknown", func() (any, error) {
		k.mu.Lock()
		now := k.cfg.Now()
		if !k.lastAttempt.IsZero() && now.Sub(k.lastAttempt) < k.cfg.MinRefresh {
			inFlight := k.fetching
			k.mu.Unlock()
			waited := false
			if inFlight != nil {
				select {
				case <-inFlight:
					waited = true
				case <-k.stop.Done():
				}
			}
			return waited, nil
		}
		k.mu.Unlock()
		return true, k.Refresh(context.WithoutCancel(ctx))
	})
	select {
	case res := <-ch:
		fetched, _ := res.Val.(bool)
		return fetched
	case <-ctx.Done():
		return false
	}
}

// fetch is one GET of the JWKS (after ResolveURL, if set), reported to
// the Observer.
func (k *KeySet) fetch(ctx context.Context) (err error) {
	start := time.Now()
	outcome := FetchNetwork
	status := 0
	u := k.URL()
	var span trace.Span
	if k.tracer != nil {
		ctx, span = k.tracer.Start(ctx, spanFetch, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(semconv.HTTPRequestMethodGet))
	}
	defer func() {
		k.cfg.Observer.JWKSFetch(outcome, time.Since(start))
		if span != nil {
			span.SetAttributes(attrFetchOutcome.String(string(outcome)))
			if u != "" {
				span.SetAttributes(semconv.URLFull(u))
			}
			if status != 0 {
				span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			}
			if err != nil {
				span.SetStatus(codes.Error, string(outcome))
			}
			span.End()
		}
		k.mu.Lock()
		k.lastErr = err
		k.mu.Unlock()
		if err != nil {
			k.cfg.Logger.Warn("JWKS fetch failed; keeping the keys held", "url", u, "outcome", string(outcome), "err", err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	stopCancel := context.AfterFunc(k.stop, cancel)
	defer stopCancel()
	if k.cfg.ResolveURL != nil {
		if u, err = k.resolve(ctx); err != nil {
			outcome = failureOutcome(err)
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		outcome = failureOutcome(err)
		return err
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, k.cfg.MaxBytes+1))
	if err != nil {
		return fmt.Errorf("reading the JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		outcome = FetchStatus
		return fmt.Errorf("JWKS answered HTTP %d", resp.StatusCode)
	}
	outcome = FetchBadResponse
	if int64(len(body)) > k.cfg.MaxBytes {
		return fmt.Errorf("JWKS larger than %d bytes", k.cfg.MaxBytes)
	}
	keys, skipped, exposed, err := parseKeySet(body, parseRules{
		maxKeys: k.cfg.MaxKeys, refuseAboveMax: k.cfg.RefuseAboveMaxKeys, publicHalf: k.cfg.PublicHalfOfPrivateKeys})
	if err != nil {
		return err
	}
	now := k.cfg.Now()
	k.keys.Store(&snapshot{keys: keys, skipped: skipped, exposed: exposed, fetched: now,
		expires: now.Add(k.lifetime(resp.Header.Values("Cache-Control")))})
	outcome = FetchOK
	k.cfg.Logger.Info("JWKS fetched", "url", u, "keys", len(keys), "skipped", len(skipped))
	for _, s := range skipped {
		k.cfg.Logger.Warn("JWKS key not used", "url", u, "why", s)
	}
	for _, s := range exposed {
		k.cfg.Logger.Warn("JWKS publishes a private key: only its public half is used, but anyone who read the document can sign with it; the issuer should rotate it", "url", u, "key", s)
	}
	return nil
}

// resolve asks ResolveURL where the JWKS is, and holds the answer to the
// rule a configured URL follows.
func (k *KeySet) resolve(ctx context.Context) (string, error) {
	u, err := k.cfg.ResolveURL(ctx)
	if err != nil {
		return "", fmt.Errorf("resolving the JWKS URL: %w", err)
	}
	if _, err := urlrule.Server(u); err != nil {
		return "", fmt.Errorf("resolved JWKS URL: %w", err)
	}
	k.url.Store(&u)
	return u, nil
}

// failureOutcome classifies a failure to reach the JWKS (or, through
// ResolveURL, the document that names it).
func failureOutcome(err error) FetchOutcome {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return FetchTimeout
	case errors.As(err, &ne):
		return FetchNetwork
	}
	return FetchBadResponse
}

// lifetime is how long an answer with these Cache-Control values is kept:
// its max-age (RFC 9111 §5.2.2.1), "no-cache"/"no-store" counting as 0,
// bounded by MinLifetime and MaxLifetime; DefaultLifetime without either.
func (k *KeySet) lifetime(cacheControl []string) time.Duration {
	d, ok := time.Duration(0), false
	for _, v := range cacheControl {
		for dir := range strings.SplitSeq(v, ",") {
			dir = strings.ToLower(strings.TrimSpace(dir))
			switch {
			case dir == "no-cache" || dir == "no-store":
				return k.cfg.MinLifetime
			case strings.HasPrefix(dir, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(dir[len("max-age="):], `"`), 10, 64)
				if err == nil && n >= 0 {
					d, ok = time.Duration(min(n, int64(k.cfg.MaxLifetime/time.Second)+1))*time.Second, true
				}
			}
		}
	}
	if !ok {
		return min(max(k.cfg.DefaultLifetime, k.cfg.MinLifetime), k.cfg.MaxLifetime)
	}
	return min(max(d, k.cfg.MinLifetime), k.cfg.MaxLifetime)
}

// ParseKeySet reads a JWK Set document (RFC 7517 §5) and returns its
// public signing keys that the gateway can use: RSA of at least 2048 bits,
// EC on P-256, P-384 or P-521, and Ed25519; "use" absent or "sig". Every
// other key is left out, with the reason in skipped: symmetric keys (a
// secret in a public document), private keys (anyone holding the document
// could sign; refused, not stripped to their public half, unlike a KeySet
// with PublicHalfOfPrivateKeys), encryption
// keys, and key types or curves it does not know. One unusable key does
// not make the document unusable (issuers publish keys for other uses);
// a document with no usable key is an error.
func ParseKeySet(body []byte, maxKeys int) (keys []jose.JSONWebKey, skipped []string, err error) {
	keys, skipped, _, err = parseKeySet(body, parseRules{maxKeys: maxKeys})
	return keys, skipped, err
}

// parseRules are the KeySetConfig choices that shape ParseKeySet.
type parseRules struct {
	maxKeys        int
	refuseAboveMax bool // KeySetConfig.RefuseAboveMaxKeys
	publicHalf     bool // KeySetConfig.PublicHalfOfPrivateKeys
}

func parseKeySet(body []byte, r parseRules) (keys []jose.JSONWebKey, skipped, exposed []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, nil, errors.New("JWKS is not a JWK Set (RFC 7517 §5): not a JSON object with a \"keys\" array")
	}
	if doc.Keys == nil {
		return nil, nil, nil, errors.New("JWKS is not a JWK Set (RFC 7517 §5): no \"keys\" array")
	}
	if r.refuseAboveMax && len(doc.Keys) > r.maxKeys {
		return nil, nil, nil, fmt.Errorf("JWKS holds %d keys, more than %d", len(doc.Keys), r.maxKeys)
	}
	for i, raw := range doc.Keys {
		if len(keys) >= r.maxKeys {
			skipped = append(skipped, fmt.Sprintf("keys[%d] and after: more than %d keys", i, r.maxKeys))
			break
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: not a usable JWK: %v", i, err))
			continue
		}
		private := r.publicHalf && asymmetricPrivate(k.Key)
		if private {
			k = k.Public()
		}
		if why := unusable(&k); why != "" {
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %q): %s", i, k.KeyID, why))
			continue
		}
		if private {
			exposed = append(exposed, fmt.Sprintf("keys[%d] (kid %q)", i, k.KeyID))
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, nil, fmt.Errorf("JWKS holds no usable signing key (%d key(s) skipped)", len(skipped))
	}
	return keys, skipped, exposed, nil
}

// asymmetricPrivate reports whether key is the private key of a pair (whose
// public half verifies), as opposed to a public or a symmetric key.
func asymmetricPrivate(key any) bool {
	switch key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return true
	}
	return false
}

// unusable says why a parsed key is not kept, or "".
func unusable(k *jose.JSONWebKey) string {
	if !k.Valid() {
		return "invalid key"
	}
	if !k.IsPublic() {
		return "a private or symmetric key in a public key set: refused"
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Sprintf("use %q is not \"sig\"", k.Use)
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return fmt.Sprintf("RSA key of %d bits, under %d", pub.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return "EC curve not supported"
		}
	case ed25519.PublicKey:
	default:
		return fmt.Sprintf("key type %T not supported", k.Key)
	}
	return ""
}

// Asymmetric lists the JWS signature algorithms of RFC 7518 §3.1 and RFC
// 8037 §3.1 that verify with a public key: the only ones a party holding
// a JWK Set may accept. "none" (RFC 7518 §3.6) and the HMAC family (a
// shared secret, and the classic confusion with a public key used as the
// HMAC secret, RFC 8725 §2.1) are not among them.
func Asymmetric() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
	}
}

// AsymmetricNames is Asymmetric as the names configuration takes
// (JWT_ALGORITHMS, ssf.Config.Algorithms).
func AsymmetricNames() []string {
	var out []string
	for _, a := range Asymmetric() {
		out = append(out, string(a))
	}
	return out
}

// Fits reports whether k may verify a signature made with alg: the key's
// type and curve are the algorithm's (RFC 7518 §3.1, RFC 8037 §3.1), and
// its "alg", when present, is alg (RFC 7517 §4.4). An RSA key can never
// verify an HMAC or EC signature, so algorithm confusion is impossible.
func Fits(k *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return pub.Curve == elliptic.P256()
		case jose.ES384:
			return pub.Curve == elliptic.P384()
		case jose.ES512:
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// candidates returns the keys that may verify a token signed with alg and
// naming kid: those with that "kid" that fit alg; with no kid, the keys
// that fit alg if there are at most keyless of them (none if more do:
// guessing is not verifying).
func (s *snapshot) candidates(kid string, alg jose.SignatureAlgorithm, keyless int) []*jose.JSONWebKey {
	if s == nil {
		return nil
	}
	var out []*jose.JSONWebKey
	for i := range s.keys {
		k := &s.keys[i]
		if (kid == "" || k.KeyID == kid) && Fits(k, alg) {
			out = append(out, k)
		}
	}
	if kid == "" && len(out) > keyless {
		return nil
	}
	return out
}

// KeyError says that no key of the issuer's key set can verify a token.
type KeyError struct {
	// Unavailable is the last fetch's error when the key set could not be
	// fetched: the key may exist in a document the gateway could not read.
	Unavailable error
	// Deferred is set when no fetch ended during this lookup (one began
	// less than MinRefresh before, or ctx ended first): the key may be in
	// the issuer's current set. A caller whose sender retries (ssf: 503
	// and Retry-After) should ask it to; a token's bearer cannot, so
	// jwtaccess ignores this.
	Deferred bool
	// RetryAfter is how long until a lookup may fetch again: the rest of
	// MinRefresh since the last fetch began (0: now).
	RetryAfter time.Duration
}

func (e *KeyError) Error() string {
	switch {
	case e.Unavailable != nil:
		return "no key of the issuer's JWKS for this token; the JWKS cannot be fetched: " + e.Unavailable.Error()
	case e.Deferred:
		return "no key of the issuer's JWKS for this token; the JWKS was fetched less than the minimum refresh interval ago"
	}
	return "no key of the issuer's JWKS for this token"
}

// Lookup returns the keys that may verify a signature by alg from key kid
// (see KeySetConfig.KeylessCandidates for kid ""), fetching the key set
// once, subject to the MinRefresh gate, when it holds none (and, on a
// KeySet not started, when its keys are past their lifetime). Keys are
// chosen by kid and alg only: what a token carries or points to ("jku",
// "x5u", "jwk", "x5c") is never a key (RFC 8725 §3.10). The keys returned
// are shared: read-only. Its error is a *KeyError.
func (k *KeySet) Lookup(ctx context.Context, kid string, alg jose.SignatureAlgorithm) ([]*jose.JSONWebKey, error) {
	fetched := false
	if s := k.keys.Load(); s != nil && !k.started.Load() && !k.cfg.Now().Before(s.expires) {
		fetched = k.refreshForUnknownKey(ctx)
	}
	if c := k.keys.Load().candidates(kid, alg, k.cfg.KeylessCandidates); len(c) > 0 {
		return c, nil
	}
	if !fetched {
		fetched = k.refreshForUnknownKey(ctx)
	}
	if c := k.keys.Load().candidates(kid, alg, k.cfg.KeylessCandidates); len(c) > 0 {
		return c, nil
	}
	k.mu.Lock()
	last := k.lastErr
	wait := k.cfg.MinRefresh - k.cfg.Now().Sub(k.lastAttempt)
	k.mu.Unlock()
	ke := &KeyError{Deferred: !fetched, RetryAfter: max(wait, 0)}
	if last != nil || k.keys.Load() == nil {
		if last == nil {
			last = errors.New("not fetched yet")
		}
		ke.Unavailable = last
	}
	return nil, ke
}

// Status is what the key set holds, for diagnosis.
type Status struct {
	Keys    []jose.JSONWebKey // public signing keys held (shared: read-only)
	Skipped []string          // why other keys of the last document were left out
	// Exposed names the private keys the last document published, of
	// which only the public half is used (PublicHalfOfPrivateKeys).
	Exposed []string
	Fetched time.Time // when the keys were fetched; zero: never
	Expires time.Time // when their cache lifetime ends
	LastErr error     // the last fetch's error; nil if it succeeded
}

// Status reports the keys held and the last fetch's outcome.
func (k *KeySet) Status() Status {
	var st Status
	if s := k.keys.Load(); s != nil {
		st.Keys, st.Skipped, st.Exposed, st.Fetched, st.Expires = s.keys, s.skipped, s.exposed, s.fetched, s.expires
	}
	k.mu.Lock()
	st.LastErr = k.lastErr
	k.mu.Unlock()
	return st
}

// EnsureFetched is Ready, after a fetch if the key set holds no keys and
// no fetch began in the last MinRefresh (the gate of unknown keys: a
// readiness probe cannot make the gateway hammer the JWKS endpoint).
func (k *KeySet) EnsureFetched(ctx context.Context) error {
	if k.keys.Load() == nil {
		k.refreshForUnknownKey(ctx)
	}
	return k.Ready()
}

// Ready reports whether the key set holds keys: nil once a fetch has
// succeeded (even if later ones failed), else why not.
func (k *KeySet) Ready() error {
	if k.keys.Load() != nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastErr != nil {
		return fmt.Errorf("JWKS %s: %w", k.URL(), k.lastErr)
	}
	return fmt.Errorf("JWKS %s not fetched yet", k.URL())
}
