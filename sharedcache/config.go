package sharedcache

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
)

// Defaults applied by New for zero Config fields.
const (
	// DefaultTimeout bounds every Redis call made for a request. A miss
	// served from Redis costs well under a millisecond on a healthy
	// network, so 50 ms is already a sick Redis: past it, the request is
	// better served by the authorization server than by waiting.
	DefaultTimeout = 50 * time.Millisecond
	// DefaultPrefix namespaces every key and channel, so one Redis can be
	// shared with other applications and a future incompatible value
	// format can move to "v2" without reading v1 values.
	DefaultPrefix = "mcpgw:v1:"
	// DefaultMaxValueBytes bounds a stored value: a verified token's claims
	// (subject, client id, a handful of scopes) take a few hundred bytes.
	DefaultMaxValueBytes = 16 << 10
	// DefaultFailureThreshold is how many consecutive connection failures
	// or timeouts open the circuit: enough that one lost packet does not
	// take Redis out of service, few enough that a dead Redis costs at
	// most a handful of requests one Timeout each.
	DefaultFailureThreshold = 3
	// DefaultMaxBackoff is the longest pause between two background probes
	// of an unavailable Redis (the first is 100 ms, doubling up to this).
	DefaultMaxBackoff = 5 * time.Second
	// DefaultPoolSize bounds the command connections per Store. Redis is
	// asked only on in-process misses; at ~0.2 ms a round trip one
	// connection serves ~5,000 calls/s, so 32 absorb bursts of concurrent
	// misses (Little's law: 32 / 0.2 ms = 160,000 calls/s) while keeping
	// machines x 33 (with the pub/sub connection) under the connection
	// limits of managed Redis plans.
	DefaultPoolSize = 32
	// DefaultMinIdleConns keeps connections open through idle periods so
	// the first miss after a lull does not pay a TCP (and TLS) handshake.
	DefaultMinIdleConns = 2
	// DefaultMaxRevocations bounds how many revocation records one read
	// returns (Revocations), so a flood of revocations cannot make a
	// reconnecting machine read without end.
	DefaultMaxRevocations = 10_000
)

// minKeySecret is the shortest KeySecret accepted: 128 bits, so the
// HMAC-derived keys cannot be brute-forced from a dump.
const minKeySecret = 16

// Config configures a Store. The zero value of each optional field selects
// the default documented on it.
type Config struct {
	// URL locates Redis (the gateway's REDIS_URL):
	// redis://[user:password@]host[:port][/db] or rediss:// for TLS (1.2 or
	// later, server certificate verified against RootCAs or the system
	// roots). The go-redis query parameters are accepted (pool_size,
	// dial_timeout, ...) except skip_verify, which would turn off
	// certificate verification. Valkey and managed Redis (Upstash, ...)
	// speak the same protocol; Redis Cluster is not supported.
	URL string
	// KeySecret keys the HMAC that turns a token digest into a Redis key
	// (see DeriveKeySecret). Every machine must share it. At least 16
	// bytes. Without it, a Redis dump could be matched against token
	// digests seen elsewhere (logs of another system, a leaked token list).
	KeySecret []byte
	// Timeout bounds every call made on behalf of a request (Get, Set,
	// Lock, each poll of Await, Revoke). Default DefaultTimeout.
	Timeout time.Duration
	// Prefix namespaces keys and channels. Default DefaultPrefix.
	Prefix string
	// MaxValueBytes bounds a value, on Set and on Get (a larger stored
	// value is a miss). Default DefaultMaxValueBytes.
	MaxValueBytes int
	// FailureThreshold is the number of consecutive connection failures
	// or timeouts that opens the circuit. Default DefaultFailureThreshold.
	FailureThreshold int
	// MaxBackoff is the longest pause between background probes while the
	// circuit is open. Default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// PoolSize bounds the command connections. Default DefaultPoolSize,
	// or pool_size from the URL.
	PoolSize int
	// MaxRevocations bounds the records Revocations returns. Default
	// DefaultMaxRevocations.
	MaxRevocations int
	// RootCAs verifies a rediss:// server's certificate. nil uses the
	// system roots.
	RootCAs *x509.CertPool
	// Logger receives operational logs: circuit changes, reload failures.
	// Never a token, a digest, a value or the URL's password. nil
	// discards.
	Logger *slog.Logger
	// Now is the clock for the times stored with values and revocations.
	// Default time.Now.
	Now func() time.Time
	// Observer receives metrics events. nil selects NopObserver.
	Observer Observer
}

func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("sharedcache: "+format, args...))
	}
	if c.URL == "" {
		add("URL is required")
	} else if _, err := redisOptions(c.URL); err != nil {
		errs = append(errs, err)
	}
	if len(c.KeySecret) < minKeySecret {
		add("KeySecret must be at least %d bytes", minKeySecret)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Timeout", int64(c.Timeout)}, {"MaxValueBytes", int64(c.MaxValueBytes)},
		{"FailureThreshold", int64(c.FailureThreshold)}, {"MaxBackoff", int64(c.MaxBackoff)},
		{"PoolSize", int64(c.PoolSize)}, {"MaxRevocations", int64(c.MaxRevocations)},
	} {
		if f.v < 0 {
			add("%s must not be negative", f.name)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) applyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxRevocations == 0 {
		c.MaxRevocations = DefaultMaxRevocations
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	c.KeySecret = append([]byte(nil), c.KeySecret...)
}

// CheckURL reports what is wrong with a REDIS_URL, as New would, without
// repeating the URL (it may carry a password).
func CheckURL(raw string) error {
	_, err := redisOptions(raw)
	return err
}

// redisOptions parses a REDIS_URL with go-redis's own parser (so every
// documented form works: user, password, /db, ?db=, rediss://). Errors never
// quote the URL: it carries the password, and url.Parse's error would
// repeat it into a log.
func redisOptions(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("sharedcache: URL is not a valid URL")
	}
	switch u.Scheme {
	case "redis", "rediss":
	default:
		return nil, fmt.Errorf("sharedcache: URL scheme %q is not redis or rediss", u.Scheme)
	}
	if u.Query().Has("skip_verify") {
		return nil, errors.New("sharedcache: URL parameter skip_verify is refused: the server certificate is always verified")
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		// go-redis's messages name the offending part (database number,
		// unknown option), never the password.
		return nil, fmt.Errorf("sharedcache: URL: %w", err)
	}
	return opt, nil
}

// clientOptions turns the Config into go-redis options: every deadline
// comes from the caller's context (ContextTimeoutEnabled), nothing is
// retried (a retry inside a 50 ms budget only delays the fallback to the
// authorization server), and nothing is negotiated that a plain Redis,
// Valkey or Upstash might refuse.
func (c *Config) clientOptions() (*redis.Options, error) {
	opt, err := redisOptions(c.URL)
	if err != nil {
		return nil, err
	}
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	// One dial attempt per call: go-redis's default of 5 with 100 ms
	// pauses would outlast Timeout. The caller's context bounds it anyway.
	opt.DialerRetries = 1
	if opt.DialTimeout == 0 {
		// Used by dials not tied to a call (keeping MinIdleConns, the
		// pub/sub connection); calls are bounded by their own deadline.
		opt.DialTimeout = time.Second
	}
	// Socket deadlines for calls without a context deadline (the pub/sub
	// health check has its own); every Store call has one.
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = time.Second
	}
	if c.PoolSize > 0 {
		opt.PoolSize = c.PoolSize
	} else if opt.PoolSize == 0 {
		opt.PoolSize = DefaultPoolSize
	}
	if opt.MaxActiveConns == 0 {
		// A hard ceiling, not go-redis's soft one: a burst must not open
		// connections without bound against a managed Redis's limit.
		opt.MaxActiveConns = opt.PoolSize
	}
	if opt.MinIdleConns == 0 {
		opt.MinIdleConns = min(DefaultMinIdleConns, opt.PoolSize)
	}
	if opt.PoolTimeout == 0 {
		// Waiting for a free connection is part of the call's budget.
		opt.PoolTimeout = c.Timeout
	}
	// No separate pipeline pool: multi-command operations are Lua scripts,
	// so the connection ceiling stays MaxActiveConns plus one for pub/sub.
	opt.PipelinePoolSize = -1
	// Redis Enterprise's maintenance notifications: not for a plain Redis,
	// and one less handshake command a managed service could refuse.
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// CLIENT SETINFO is refused by some managed services; go-redis ignores
	// the refusal, but there is no reason to send it.
	opt.DisableIdentity = true
	if opt.TLSConfig != nil {
		opt.TLSConfig.RootCAs = c.RootCAs
		opt.TLSConfig.MinVersion = tls.VersionTLS12
		opt.TLSConfig.InsecureSkipVerify = false
	}
	return opt, nil
}

// plaintextRemote reports a redis:// URL to a host other than loopback: the
// password and the cached claims cross the network in clear. That is how
// some platforms' private networks are used (Fly.io's Upstash is reached
// over the WireGuard 6PN mesh with redis://), so it is a warning, not an
// error.
func plaintextRemote(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "redis" && u.Hostname() != "" && !loopback.Host(u.Hostname())
}

// redactedURL is the URL without its password, for logs.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
