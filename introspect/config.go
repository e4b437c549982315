package introspect

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
	"github.com/mcp-gateway/mcp-gateway/jwks"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess"
)

// Client authentication methods for the introspection call (RFC 7662 §2.1
// requires the protected resource to authenticate; RFC 6749 §2.3.1 defines
// these two).
const (
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
)

// Defaults applied by New for zero Config fields.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultCacheMaxTTL      = 60 * time.Second
	DefaultCacheNegativeTTL = 5 * time.Second
	DefaultCacheMaxBytes    = 64 << 20
	DefaultMaxResponseBytes = 64 << 10
	// DefaultMaxConcurrency is the default Config.MaxConcurrency.
	DefaultMaxConcurrency = 64
	// DefaultKnownTokens is the default Config.KnownTokens: about 3 MB
	// when full, within the default CacheMaxBytes's eighth (8 MiB).
	DefaultKnownTokens = 100_000
)

// Config configures a Verifier. The zero value of each duration and size
// field selects the default documented on it.
type Config struct {
	// Endpoint is the RFC 7662 introspection URL. If empty, it is discovered
	// from Issuer (see MetadataURLs), metadata field "introspection_endpoint".
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
	// KnownScopes are scope strings most tokens carry (the policy's): each
	// cached token shares one copy of them instead of holding its own.
	// Purely a memory saving; any scope is accepted.
	KnownScopes []string
	// Timeout bounds each introspection (and discovery) HTTP call. Default 5s.
	Timeout time.Duration
	// CacheMaxTTL bounds how long an active answer is reused:
	// min(exp-now, CacheMaxTTL). It is how late a revocation may be noticed.
	// Default 60s.
	CacheMaxTTL time.Duration
	// CacheNegativeTTL is how long a refusal is remembered. Default 5s;
	// negative disables caching of refusals.
	CacheNegativeTTL time.Duration
	// CacheMaxBytes bounds the cache and the table of known tokens
	// together, in estimated bytes of heap (see entry.cost and
	// knownTokenCost; the table takes at most an eighth). Default 64 MiB.
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
	// TracerProvider, when not nil, records spans: one per Verify, one per
	// introspection exchange and one per JWKS fetch (trace.go). nil: no
	// spans, and nothing of tracing on the hot path.
	TracerProvider trace.TracerProvider
	// StaleIfError lets an accepted answer whose cache life (CacheMaxTTL)
	// has ended be served for up to this long afterwards, but never at or
	// past the token's exp, when re-introspecting it fails with an
	// *UnavailableError (never on a refusal or a ClientAuthError). Each such
	// use is logged at Warn and reported to Observer.StaleUse. An inactive
	// answer drops the stale entry at once. Zero (default) disables it.
	StaleIfError time.Duration
	// MaxConcurrency bounds the introspection calls in flight (requests
	// waiting on another request's call for the same token do not count).
	// A quarter of the slots (rounded up, when there are at least 2) is
	// kept for known tokens: recently accepted ones whose answer aged out
	// of the cache, re-checked for revocation; and a freed slot goes to a
	// waiting known token first. When no slot is free a cache miss waits
	// briefly (half of Timeout, 2s at most), then fails with an
	// *UnavailableError wrapping ErrOverloaded. Default
	// DefaultMaxConcurrency.
	MaxConcurrency int
	// ClientConcurrency bounds the unknown tokens (cache misses that are
	// not known tokens) one client, as named by WithClient, may have in
	// flight: waiting for a slot or being introspected. Past it, within
	// the same brief wait, an *UnavailableError wrapping ErrOverloaded, so
	// that one client cannot fill a hanging authorization server. Default
	// half of MaxConcurrency (at least 1).
	ClientConcurrency int
	// RefusalRate and RefusalBurst limit, per client named by WithClient,
	// the tokens the authorization server refuses (inactive, rejected,
	// wrong audience, issuer or type, not yet valid): each refusal of an
	// unknown token takes one from the client's bucket, and while it is
	// empty the client's unknown tokens get *RateLimitError without a
	// call. New valid tokens, known tokens and cache hits are never
	// charged or limited. Zero RefusalRate (default) means unlimited; a
	// zero RefusalBurst with a positive rate means max(1, ceil(RefusalRate)).
	RefusalRate  rate.Limit
	RefusalBurst int
	// KnownTokens bounds how many recently accepted tokens are remembered
	// (64 bits of digest and the exp, about 30 bytes each), least
	// recently accepted or seen forgotten first; an eighth of
	// CacheMaxBytes bounds them too. Default DefaultKnownTokens.
	KnownTokens int
	// Validation selects how tokens are validated (TOKEN_VALIDATION):
	// ValidationAuto (default when empty), ValidationJWT or
	// ValidationIntrospection. See validate.go.
	Validation TokenValidation
	// JWKSURL is the issuer's JWKS (JWKS_URL). Empty: the metadata's
	// "jwks_uri", found by the same discovery as the introspection
	// endpoint. With JWKSURL set, Issuer must be exactly the "iss" of the
	// tokens (RFC 9068 §4); otherwise the metadata's "issuer" is used.
	JWKSURL string
	// JWKSMinRefresh is the least time between JWKS fetches caused by
	// tokens naming unknown keys (JWKS_MIN_REFRESH). Default 30s.
	JWKSMinRefresh time.Duration
	// JWTAlgorithms is the JWS "alg" allowlist (JWT_ALGORITHMS). Empty:
	// jwtaccess.DefaultAlgorithms.
	JWTAlgorithms []string
	// JWTAllowGenericType accepts JWT access tokens typed "JWT" or not
	// typed (JWT_REQUIRE_AT_TYP=false); otherwise only "at+jwt".
	JWTAllowGenericType bool
	// JWTIntrospect also introspects JWTs after verifying them locally
	// (JWT_INTROSPECT=true), so that a revoked JWT is refused within
	// CacheMaxTTL. Needs ClientID and ClientSecret.
	JWTIntrospect bool

	// Shared is the cache tier shared with other machines (Redis) and the
	// revocations cached answers are checked against (shared.go). The
	// zero value: neither.
	Shared SharedTier
}

// validate reports every problem of c at once.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("introspect: "+format, args...)) }
	if c.Endpoint == "" && c.Issuer == "" {
		add("Endpoint or Issuer is required")
	}
	if c.Endpoint != "" {
		if _, err := urlrule.Server(c.Endpoint); err != nil {
			add("Endpoint: %v", err)
		}
	}
	if c.Issuer != "" {
		if _, err := urlrule.Identifier(c.Issuer); err != nil {
			add("Issuer: %v", err)
		}
	}
	switch c.Validation {
	case "", ValidationAuto, ValidationJWT, ValidationIntrospection:
	default:
		add("Validation %q is not %s, %s or %s", c.Validation, ValidationAuto, ValidationJWT, ValidationIntrospection)
	}
	// Credentials are needed only where introspection is used: always in
	// introspection mode, and for JWTIntrospect. In auto mode without them
	// every token must be a JWT.
	switch {
	case c.ClientID == "" && c.ClientSecret != "":
		add("ClientID is required with ClientSecret")
	case c.ClientID != "" && c.ClientSecret == "":
		add("ClientSecret is required with ClientID")
	case c.ClientID == "" && c.Validation == ValidationIntrospection:
		add("ClientID and ClientSecret are required for introspection")
	case c.ClientID == "" && c.JWTIntrospect:
		add("JWTIntrospect needs ClientID and ClientSecret (introspection)")
	}
	if c.Validation == ValidationIntrospection && c.JWTIntrospect {
		add("JWTIntrospect applies to locally verified JWTs, which Validation %q does not verify", c.Validation)
	}
	if c.Validation != ValidationIntrospection {
		// Without an issuer, auto mode with credentials introspects
		// everything; a mode that accepts only JWTs cannot work.
		if c.Issuer == "" && (c.Validation == ValidationJWT || c.ClientID == "") {
			add("Issuer is required to verify JWTs (their iss must equal it)")
		}
		if c.JWKSURL != "" {
			if _, err := urlrule.Server(c.JWKSURL); err != nil {
				add("JWKSURL: %v", err)
			}
		}
		if len(c.JWTAlgorithms) > 0 {
			if _, err := jwtaccess.ParseAlgorithms(c.JWTAlgorithms); err != nil {
				add("JWTAlgorithms: %v", err)
			}
		}
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
	}{{"ClockSkew", c.ClockSkew}, {"Timeout", c.Timeout}, {"CacheMaxTTL", c.CacheMaxTTL}, {"StaleIfError", c.StaleIfError}, {"JWKSMinRefresh", c.JWKSMinRefresh}} {
		if d.v < 0 {
			add("%s must not be negative", d.name)
		}
	}
	for _, n := range []struct {
		name string
		v    float64
	}{
		{"CacheMaxBytes", float64(c.CacheMaxBytes)}, {"MaxResponseBytes", float64(c.MaxResponseBytes)},
		{"MaxConcurrency", float64(c.MaxConcurrency)}, {"ClientConcurrency", float64(c.ClientConcurrency)},
		{"RefusalRate", float64(c.RefusalRate)}, {"RefusalBurst", float64(c.RefusalBurst)},
		{"KnownTokens", float64(c.KnownTokens)},
	} {
		if n.v < 0 {
			add("%s must not be negative", n.name)
		}
	}
	if err := c.Shared.validate(); err != nil {
		errs = append(errs, err)
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
	if c.ClientConcurrency == 0 {
		c.ClientConcurrency = max(1, c.MaxConcurrency/2)
	}
	if c.RefusalRate > 0 && c.RefusalBurst == 0 {
		c.RefusalBurst = max(1, int(math.Ceil(float64(c.RefusalRate))))
	}
	if c.KnownTokens == 0 {
		c.KnownTokens = DefaultKnownTokens
	}
	if c.Validation == "" {
		c.Validation = ValidationAuto
	}
	if c.JWKSMinRefresh == 0 {
		c.JWKSMinRefresh = jwks.DefaultMinRefresh
	}
	c.Audiences = append([]string(nil), c.Audiences...)
}
