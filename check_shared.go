package main

// The doctor's checks of issue 15: Redis answers (with the key secret the
// machines must share), the admin API is where it must be, and the Shared
// Signals transmitter's keys can be fetched. Redis being down is a warning,
// not a failure: the gateway works without it, each machine on its own.

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/revoke"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
	"github.com/mcp-gateway/mcp-gateway/ssf"
)

// doctorRedisTimeout bounds the doctor's Redis calls: a first connection
// (TCP, TLS, AUTH) may take longer than REDIS_TIMEOUT, which bounds calls
// on warm connections.
const doctorRedisTimeout = 2 * time.Second

func checkShared(ctx context.Context, r *report, cfg *config) {
	checkRedis(ctx, r, cfg)
	if cfg.AdminToken != "" {
		r.ok("admin API: POST %s on METRICS_PORT=%d only (ADMIN_TOKEN set); keep that port private", revoke.AdminPath, cfg.MetricsPort)
	}
	checkSSF(ctx, r, cfg)
}

func checkRedis(ctx context.Context, r *report, cfg *config) {
	if cfg.RedisURL == "" {
		return
	}
	secret, source := cfg.cacheKeySecret()
	key, err := sharedcache.DeriveKeySecret(secret)
	if err != nil {
		r.fail("shared cache: no key secret: %v", err)
		return
	}
	r.ok("shared cache: keys derived from %s; every machine must have the same value", source)
	store, err := sharedcache.New(ctx, sharedcache.Config{
		URL: cfg.RedisURL, KeySecret: key, Timeout: max(cfg.RedisTimeout, doctorRedisTimeout),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		r.fail("shared cache: %v", err)
		return
	}
	defer store.Close()
	start := time.Now()
	if err := store.Ping(ctx); err != nil {
		r.warn("shared cache: Redis at %s does not answer: %v", redactedURL(cfg.RedisURL), pingProblem(err))
		r.detail("the gateway still works without it (each machine then caches and revokes on its own, and retries Redis in the background)")
		r.fix("check REDIS_URL (host, port, password, database; rediss:// for TLS) and that this machine can reach it")
		return
	}
	rtt := time.Since(start)
	r.ok("shared cache: Redis at %s answers PING in %s", redactedURL(cfg.RedisURL), rtt.Round(10*time.Microsecond))
	if rtt > cfg.RedisTimeout {
		r.warn("shared cache: a round trip (%s) is longer than REDIS_TIMEOUT=%s: most Redis calls would time out and be skipped", rtt.Round(time.Millisecond), cfg.RedisTimeout)
		r.fix("run Redis close to the gateway (same region), or raise REDIS_TIMEOUT")
	}
	if recs, err := store.Revocations(ctx); err == nil {
		r.ok("revocations: %d live record(s) in Redis", len(recs))
	}
}

// pingProblem says what a failed PING means, without the URL's password.
func pingProblem(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"):
		return "the password (or user) in REDIS_URL is refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return msg
}

func checkSSF(ctx context.Context, r *report, cfg *config) {
	if cfg.SSFIssuer == "" {
		return
	}
	sc := cfg.ssfConfig()
	sc.OnRevocation = func(context.Context, ssf.Revocation) error { return nil }
	rcv, err := ssf.New(sc)
	if err != nil {
		r.fail("shared signals: %v", err)
		return
	}
	defer rcv.Close()
	ks, err := rcv.Refresh(ctx)
	if err != nil {
		r.fail("shared signals: the keys of SSF_ISSUER=%s cannot be fetched: %v", cfg.SSFIssuer, err)
		r.fix("SSF_ISSUER must be the transmitter's exact issuer (its /.well-known/ssf-configuration must answer), or set SSF_JWKS_URL")
		return
	}
	r.ok("shared signals: POST %s accepts SETs from %s signed with %d key(s) from %s, for aud %s", SSFPath, cfg.SSFIssuer, len(ks.KeyIDs), ks.JWKSURL, strings.Join(sc.Audience, ", "))
	for _, w := range ks.Warnings {
		r.warn("shared signals: %s", w)
	}
}
