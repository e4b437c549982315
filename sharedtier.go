package main

// Issue 15's wiring: the shared cache tier on Redis (REDIS_URL), the
// revocations every machine honours, the admin API that issues them
// (ADMIN_TOKEN, on the METRICS_PORT listener only) and the OpenID Shared
// Signals receiver that turns transmitters' events into them (SSF_ISSUER,
// POST /ssf/events on the public listener).

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-gateway/mcp-gateway/gateway"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/revoke"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
	"github.com/mcp-gateway/mcp-gateway/ssf"
)

// SSFPath is where the Shared Signals receiver is served.
const SSFPath = "/ssf/events"

// sharedTier is what issue 15 adds to a gateway. A nil *sharedTier (none
// of REDIS_URL, ADMIN_TOKEN, SSF_ISSUER set) adds nothing, and the
// verifier's hot path is exactly as without it.
type sharedTier struct {
	store      *sharedcache.Store // nil without REDIS_URL
	set        *sharedcache.RevocationSet
	ids        introspect.TokenIDs
	revoker    *revoke.Revoker
	ssf        *ssf.Receiver                   // nil without SSF_ISSUER
	adminToken string                          // "" : no admin API
	gw         atomic.Pointer[gateway.Gateway] // its open streams end on a revocation
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// redisLogger routes go-redis's process-wide logger (for example a line per
// failed dial while Redis is down) to the gateway's log at Debug, once per
// process: go-redis has no per-client logger.
var redisLogger sync.Once

// ssfConfig is the Shared Signals receiver the configuration describes
// (SSF_*), for the server and the doctor alike; the caller adds where the
// revocations go.
func (c *config) ssfConfig() ssf.Config {
	aud := c.SSFAudience
	if len(aud) == 0 {
		aud = []string{c.ResourceURL}
	}
	return ssf.Config{Issuer: c.SSFIssuer, JWKSURL: c.SSFJWKSURL, Audience: aud,
		AuthorizationHeader: c.SSFAuthorization, AcceptUntyped: c.SSFAcceptUntyped}
}

func setRedisLogger(l *slog.Logger) {
	redisLogger.Do(func() { redis.SetLogger(sharedcache.LibraryLogger{Logger: l}) })
}

// newSharedTier builds what the configuration asks for. Redis being down
// is not an error (the Store starts with its circuit open and keeps
// probing); only a configuration problem is.
func newSharedTier(ctx context.Context, cfg *config, logger *slog.Logger, m *metrics.Metrics) (*sharedTier, error) {
	if cfg.RedisURL == "" && cfg.AdminToken == "" && cfg.SSFIssuer == "" {
		return nil, nil
	}
	st := &sharedTier{adminToken: cfg.AdminToken}
	secret, source := cfg.cacheKeySecret()
	if secret == "" {
		// No Redis (validated): token revocations only need to agree
		// with this process's verifier.
		secret, source = rand.Text(), "random (this process only)"
	}
	key, err := sharedcache.DeriveKeySecret(secret)
	if err != nil {
		return nil, &configError{problems: []string{"CACHE_KEY_SECRET: " + err.Error()}}
	}
	if cfg.RedisURL != "" {
		setRedisLogger(logger.With("component", "go-redis"))
		st.store, err = sharedcache.New(ctx, sharedcache.Config{
			URL:       cfg.RedisURL,
			KeySecret: key,
			Timeout:   cfg.RedisTimeout,
			Logger:    logger.With("component", "sharedcache"),
			Observer:  redisMetrics{m},
		})
		if err != nil {
			return nil, &configError{problems: []string{err.Error()}}
		}
		st.ids = st.store
		logger.Info("shared cache on Redis", "redis", redactedURL(cfg.RedisURL), "timeout", cfg.RedisTimeout,
			"key_secret_from", source, "available", st.store.Healthy())
	} else {
		ids, err := sharedcache.NewIDs(key)
		if err != nil {
			return nil, err
		}
		st.ids = ids
	}
	ttl := cfg.revocationTTL()
	st.set = sharedcache.NewRevocationSet(ttl, 0, nil)
	st.revoker, err = revoke.New(revoke.Config{
		Set: st.set, Store: st.store, IDs: st.ids, TTL: ttl,
		Logger: logger.With("component", "revoke"), Observer: revocationMetrics{m},
		OnApply: func(rev sharedcache.Revocation) { st.endStreams(rev, logger) },
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	st.revoker.Start()
	if cfg.SSFIssuer != "" {
		sc := cfg.ssfConfig()
		sc.OnRevocation = st.revoker.OnSSF(cfg.IssuerURL)
		sc.Logger, sc.Observer = logger.With("component", "ssf"), ssfMetrics{m}
		st.ssf, err = ssf.New(sc)
		if err != nil {
			st.Close()
			return nil, &configError{problems: []string{err.Error()}}
		}
		// Warm the transmitter's keys so the first SET is not the one
		// that waits for them; a failure is retried on the first SET.
		wctx, cancel := context.WithCancel(ctx)
		st.cancel = cancel
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			if ks, err := st.ssf.Refresh(wctx); err != nil {
				logger.Warn("ssf: the transmitter's keys cannot be fetched yet; retrying on the first SET", "issuer", cfg.SSFIssuer, "err", err)
			} else {
				logger.Info("ssf: receiving Shared Signals", "path", SSFPath, "issuer", cfg.SSFIssuer, "jwks", ks.JWKSURL, "keys", len(ks.KeyIDs))
			}
		}()
	}
	return st, nil
}

// attach gives the tier the gateway whose open streams a revocation ends.
func (st *sharedTier) attach(gw *gateway.Gateway) {
	if st != nil {
		st.gw.Store(gw)
	}
}

// endStreams ends the open streams (event streams, subscriptions) of what
// rev names: a stream must not outlive its token's revocation, any more
// than its expiry. The client reconnects, and its token is verified
// again.
func (st *sharedTier) endStreams(rev sharedcache.Revocation, logger *slog.Logger) {
	gw := st.gw.Load()
	if gw == nil {
		return
	}
	n := gw.EndStreamsWhere(func(d [32]byte, ti *auth.TokenInfo) bool {
		return rev.Matches(st.ids.ID(d), introspect.PrincipalOf(ti))
	})
	if n > 0 {
		logger.Info("revocation: open streams ended", "kind", rev.Kind, "streams", n)
	}
}

// verifierTier is the verifier's view: the Store and the revocations.
func (st *sharedTier) verifierTier() introspect.SharedTier {
	if st == nil {
		return introspect.SharedTier{}
	}
	return introspect.SharedTier{Store: st.store, Revocations: st.set, IDs: st.ids}
}

// mounts are the public routes: POST /ssf/events, outside the bearer check
// and the Origin check (a transmitter is neither a browser nor an MCP
// client; the SET's signature authenticates it), under the request log and
// metrics.
func (st *sharedTier) mounts() []gateway.Mount {
	if st == nil || st.ssf == nil {
		return nil
	}
	return []gateway.Mount{{Prefixes: []string{SSFPath}, Handler: st.ssf}}
}

// routeAdmin adds POST /admin/revoke to the internal listener's mux. It is
// the only place the admin API is routed: never on the public listener.
func (st *sharedTier) routeAdmin(mux *http.ServeMux, logger *slog.Logger) {
	if st == nil || st.adminToken == "" {
		return
	}
	mux.Handle(http.MethodPost+" "+revoke.AdminPath, st.revoker.AdminHandler(st.adminToken))
	logger.Info("admin API on the internal listener", "path", revoke.AdminPath, "distributed", st.revoker.Distributed())
}

// Close stops the background work and closes the Redis connections. Call
// it after the verifier's Close (whose pending writes use the Store).
func (st *sharedTier) Close() {
	if st == nil {
		return
	}
	if st.cancel != nil {
		st.cancel()
	}
	st.wg.Wait()
	if st.revoker != nil {
		st.revoker.Close()
	}
	if st.ssf != nil {
		st.ssf.Close()
	}
	if st.store != nil {
		st.store.Close()
	}
}

// sharedMetricLabels are the label sets of the shared tier's metrics, from
// the packages that own each vocabulary.
func sharedMetricLabels() metrics.SharedLabels {
	return metrics.SharedLabels{
		RedisOps:          labelValues(sharedcache.AllOps()),
		RedisOutcomes:     labelValues(sharedcache.AllOutcomes()),
		RevocationSources: labelValues(revoke.AllSources()),
		RevocationKinds:   sharedcache.AllKinds(),
		SSFReasons:        labelValues(ssf.AllReasons()),
	}
}

// Adapters from the packages' typed observers to the metrics.
type (
	redisMetrics      struct{ m *metrics.Metrics }
	revocationMetrics struct{ m *metrics.Metrics }
	ssfMetrics        struct{ m *metrics.Metrics }
)

func (r redisMetrics) Call(op sharedcache.Op, o sharedcache.Outcome, d time.Duration) {
	r.m.RedisCall(string(op), string(o), d)
}
func (r redisMetrics) Circuit(open bool) { r.m.RedisCircuit(open) }
func (r revocationMetrics) Revocation(src revoke.Source, kind string, applied bool) {
	r.m.Revocation(string(src), kind, applied)
}
func (r ssfMetrics) Push(reason ssf.Reason) { r.m.SSFPush(string(reason)) }

// redactedURL is a REDIS_URL without its password, for logs and the
// doctor.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
