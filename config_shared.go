package main

// The configuration of issue 15: the shared cache tier (Redis), the admin
// API and OpenID Shared Signals. Its variables are part of env (embedded),
// so the contract test, .env.example and the README cover them.

import (
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/revoke"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// SharedEnv is exported only because envconfig reads embedded structs
// through reflection, which skips unexported ones.
type SharedEnv struct {
	RedisURL       string `envconfig:"REDIS_URL"`
	RedisTimeout   string `envconfig:"REDIS_TIMEOUT" default:"50ms"`
	CacheKeySecret string `envconfig:"CACHE_KEY_SECRET"`
	AdminToken     string `envconfig:"ADMIN_TOKEN"`

	SSFIssuer        string `envconfig:"SSF_ISSUER"`
	SSFJWKSURL       string `envconfig:"SSF_JWKS_URL"`
	SSFAudience      string `envconfig:"SSF_AUDIENCE"`
	SSFAuthorization string `envconfig:"SSF_AUTHORIZATION"`
	SSFAcceptUntyped string `envconfig:"SSF_ACCEPT_UNTYPED" default:"false"`

	DevAuthIntrospectionClientID string `envconfig:"DEV_AUTH_INTROSPECTION_CLIENT_ID"`
	DevAuthIntrospectionSecret   string `envconfig:"DEV_AUTH_INTROSPECTION_CLIENT_SECRET"`
}

// sharedConfig is the validated SharedEnv. Its secrets (REDIS_URL's
// password, CACHE_KEY_SECRET, ADMIN_TOKEN, SSF_AUTHORIZATION) are never
// logged or printed.
type sharedConfig struct {
	RedisURL       string
	RedisTimeout   time.Duration
	CacheKeySecret string
	AdminToken     string

	SSFIssuer        string
	SSFJWKSURL       string
	SSFAudience      []string // empty: the resource URL
	SSFAuthorization string
	SSFAcceptUntyped bool

	DevAuthIntrospectionClientID string
	DevAuthIntrospectionSecret   string
}

// minCacheKeySecret is the shortest secret sharedcache.DeriveKeySecret
// takes.
const minCacheKeySecret = 16

// validate checks the variables of issue 15 against each other and against
// the rest of c (already validated), adding every problem to p.
func (e SharedEnv) validate(p *problems, c *config) {
	s := &c.sharedConfig
	s.RedisURL = strings.TrimSpace(e.RedisURL)
	s.RedisTimeout = p.duration("REDIS_TIMEOUT", e.RedisTimeout, time.Millisecond)
	if s.RedisTimeout > 10*time.Second {
		p.addf("REDIS_TIMEOUT=%s is longer than 10s: Redis is asked on cache misses, and a request must not wait that long for an optimisation", s.RedisTimeout)
	}
	s.CacheKeySecret = e.CacheKeySecret
	s.AdminToken = e.AdminToken
	s.SSFIssuer = strings.TrimSpace(e.SSFIssuer)
	s.SSFJWKSURL = strings.TrimSpace(e.SSFJWKSURL)
	s.SSFAudience = splitList(e.SSFAudience)
	s.SSFAuthorization = strings.TrimSpace(e.SSFAuthorization)
	s.SSFAcceptUntyped = p.boolean("SSF_ACCEPT_UNTYPED", e.SSFAcceptUntyped)
	s.DevAuthIntrospectionClientID = e.DevAuthIntrospectionClientID
	s.DevAuthIntrospectionSecret = e.DevAuthIntrospectionSecret

	if s.RedisURL != "" {
		if err := sharedcache.CheckURL(s.RedisURL); err != nil {
			// sharedcache's errors never repeat the URL (its password).
			p.addf("REDIS_URL: %v", strings.TrimPrefix(err.Error(), "sharedcache: "))
		}
		if c.DevMode {
			p.addf("REDIS_URL is set but AUTH_ISSUER_URL is not: the shared cache serves several gateways of one external authorization server, and each development-mode gateway has its own")
		}
	}
	switch {
	case s.CacheKeySecret != "":
		if len(s.CacheKeySecret) < minCacheKeySecret {
			p.addf("CACHE_KEY_SECRET is shorter than %d bytes: generate one with `openssl rand -hex 32`", minCacheKeySecret)
		}
	case s.RedisURL != "" && !c.DevMode && len(c.IntrospectionSecret) < minCacheKeySecret:
		p.addf("CACHE_KEY_SECRET is required with REDIS_URL when INTROSPECTION_CLIENT_SECRET is shorter than %d bytes: every machine must share it (generate one with `openssl rand -hex 32`)", minCacheKeySecret)
	}
	if s.AdminToken != "" {
		if len(s.AdminToken) < revoke.MinAdminTokenLength {
			p.addf("ADMIN_TOKEN is shorter than %d characters: generate one with `openssl rand -hex 32`", revoke.MinAdminTokenLength)
		}
		if strings.ContainsAny(s.AdminToken, " \t\r\n") {
			p.addf("ADMIN_TOKEN must not contain spaces or line breaks")
		}
		if c.MetricsPort == 0 {
			p.addf("ADMIN_TOKEN is set but METRICS_PORT is not: the admin API is served only on the internal listener (METRICS_PORT), never on the public port; set METRICS_PORT (for example 9091) and keep that port private")
		}
	}
	if s.SSFIssuer == "" {
		for _, kv := range [][2]string{
			{"SSF_JWKS_URL", s.SSFJWKSURL}, {"SSF_AUDIENCE", e.SSFAudience}, {"SSF_AUTHORIZATION", s.SSFAuthorization},
		} {
			if strings.TrimSpace(kv[1]) != "" {
				p.addf("%s is set but SSF_ISSUER is not: SSF_ISSUER (the transmitter's issuer) enables the Shared Signals receiver", kv[0])
			}
		}
	} else {
		p.url("SSF_ISSUER", s.SSFIssuer, true)
		if s.SSFJWKSURL != "" {
			p.url("SSF_JWKS_URL", s.SSFJWKSURL, false)
		}
		for _, a := range s.SSFAudience {
			if strings.ContainsAny(a, "\"\\") {
				p.addf("SSF_AUDIENCE entry %q contains a quote or backslash", a)
			}
		}
	}
	if strings.ContainsAny(s.SSFAuthorization, "\r\n") {
		p.addf("SSF_AUTHORIZATION must be a single header value")
	}
	if (s.DevAuthIntrospectionClientID != "" || s.DevAuthIntrospectionSecret != "") && !c.DevMode {
		p.addf("DEV_AUTH_INTROSPECTION_CLIENT_ID/SECRET are set but AUTH_ISSUER_URL is too: they configure the development authorization server, which runs only without AUTH_ISSUER_URL")
	}
	if s.DevAuthIntrospectionSecret != "" && len(s.DevAuthIntrospectionSecret) < minCacheKeySecret {
		p.addf("DEV_AUTH_INTROSPECTION_CLIENT_SECRET is shorter than %d bytes", minCacheKeySecret)
	}
}

// sharedTTL is how long a revocation must be remembered: until every
// answer verified before it has left every cache, including the stale
// window (STALE_IF_ERROR) and the clock skew tolerated between machines.
func (c *config) revocationTTL() time.Duration {
	return c.CacheMaxTTL + c.StaleIfError + c.ClockSkew
}

// cacheKeySecret is the secret the shared cache's keys are derived from:
// CACHE_KEY_SECRET, else INTROSPECTION_CLIENT_SECRET (which every machine
// of a deployment shares). "" when neither is long enough.
func (c *config) cacheKeySecret() (secret, source string) {
	switch {
	case c.CacheKeySecret != "":
		return c.CacheKeySecret, "CACHE_KEY_SECRET"
	case len(c.IntrospectionSecret) >= minCacheKeySecret:
		return c.IntrospectionSecret, "INTROSPECTION_CLIENT_SECRET"
	}
	return "", ""
}
