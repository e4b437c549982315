package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/gateway"
	"github.com/mcp-gateway/mcp-gateway/internal/flushjson"
	"github.com/mcp-gateway/mcp-gateway/internal/httpserver"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/jwks"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/proxy"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

// Defaults from .env.example, as main.go would load them with an empty
// environment apart from AUTH_ISSUER_URL and the client credentials; the
// introspection ones are introspect's own defaults.
const (
	defClockSkew        = 30 * time.Second
	defIntrospectTO     = introspect.DefaultTimeout
	defCacheMaxTTL      = introspect.DefaultCacheMaxTTL
	defCacheNegativeTTL = introspect.DefaultCacheNegativeTTL
	defCacheMaxBytes    = introspect.DefaultCacheMaxBytes
	defMaxBodyBytes     = 1 << 20
	defSessionTimeout   = 30 * time.Minute
	defJWKSMinRefresh   = jwks.DefaultMinRefresh
)

// benchLogger is main.go's logger (JSON, level info) writing nowhere, for
// the verifiers the memory target builds in the load generator's process.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// prodLogger is main.go's logger (JSON, level info), on stdout rather than
// stderr because the bench points a child's stdout at /dev/null and keeps
// its stderr for errors; a served request pays for its log line as it does
// in production.
func prodLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func listenLoopback() (net.Listener, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	return ln, ln.Addr().(*net.TCPAddr).Port, nil
}

// newVerifier builds the verifier as main.go does; cacheMaxBytes 0 means
// the default. With introspection false it is configured as
// AUTH_ISSUER_URL alone (no introspection credentials): every token must
// be a JWT verified with the issuer's JWKS.
// The per-client refusal limit (CLIENT_REFUSAL_RATE) is left off, as it
// was when it limited every unknown token; it counts only refused tokens
// now, and the bench sends valid ones. The per-client cap on unknown
// tokens in flight is the default (half of MaxConcurrency: 32, the
// bench's -conns). Metrics are on, as in production.
func newVerifier(ctx context.Context, issuer, resource string, cacheMaxBytes int64, logger *slog.Logger, obs introspect.Observer, introspection bool, shared introspect.SharedTier) (*introspect.Verifier, error) {
	if cacheMaxBytes == 0 {
		cacheMaxBytes = defCacheMaxBytes
	}
	id, secret := asClientID, asClientSecret
	if !introspection {
		id, secret = "", ""
	}
	return introspect.New(ctx, introspect.Config{
		Endpoint:             "", // discovered, as with INTROSPECTION_URL unset
		Issuer:               issuer,
		ClientID:             id,
		ClientSecret:         secret,
		AuthMethod:           introspect.AuthMethodClientSecretBasic,
		Audiences:            []string{resource},
		AllowMissingAudience: false,
		ClockSkew:            defClockSkew,
		Timeout:              defIntrospectTO,
		CacheMaxTTL:          defCacheMaxTTL,
		CacheNegativeTTL:     defCacheNegativeTTL,
		CacheMaxBytes:        cacheMaxBytes,
		MaxConcurrency:       introspect.DefaultMaxConcurrency,
		JWKSMinRefresh:       defJWKSMinRefresh,
		JWTAlgorithms:        jwtaccess.DefaultAlgorithms,
		Observer:             obs,
		Logger:               logger.With("component", "introspect"),
		Shared:               shared,
	})
}

// gatewayServer is the gateway wired exactly as main.go wires it in
// production mode (AUTH_ISSUER_URL set, discovery, defaults from
// .env.example); resource is its MCP_RESOURCE_URL. introspection says
// whether it has introspection credentials (without them it accepts JWTs
// only). It returns once discovery is done (and, for JWTs, the JWKS is
// fetched), as main.go's /readyz would.
//
// redisURL, when set, is its REDIS_URL: the shared tier and revocations
// wired as main.go wires them (sharedTier); closeShared releases them
// after the verifier.
func gatewayServer(ctx context.Context, resource, issuer, redisURL string, logger *slog.Logger, introspection bool) (_ *http.Server, _ *introspect.Verifier, closeShared func(), _ error) {
	m := metrics.New(metrics.Labels{
		AuthOutcomes: labels(gateway.AllAuthOutcomes()),
		Tools:        tools.Policy().Tools(),
		Operations:   tools.Operations(),
		Shared:       sharedMetricLabels(),
	})
	tier, closeShared, err := sharedTier(ctx, redisURL, logger, m)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := newVerifier(ctx, issuer, resource, 0, logger, m, introspection, tier)
	if err != nil {
		closeShared()
		return nil, nil, nil, err
	}
	server, err := calculatorServer(logger)
	if err != nil {
		v.Close()
		closeShared()
		return nil, nil, nil, err
	}
	gw, err := gateway.New(gateway.Config{
		Resource:             resource,
		AuthorizationServers: []string{issuer},
		ScopesSupported:      tools.Policy().Scopes(),
		ResourceName:         "Calculator",
		Stateless:            true,
		JSONResponse:         true,
		SessionTimeout:       defSessionTimeout,
		ScopeChallenge:       gateway.ScopeChallengeHTTP,
		MaxBodyBytes:         defMaxBodyBytes,
		ClockSkew:            defClockSkew,
		Verifier:             v,
		Server:               server,
		Policy:               tools.Policy(),
		Logger:               logger,
		Metrics:              m,
		ServeMetrics:         true,
	})
	if err != nil {
		v.Close()
		closeShared()
		return nil, nil, nil, err
	}
	if err := v.Ready(ctx); err != nil {
		v.Close()
		closeShared()
		return nil, nil, nil, err
	}
	return httpserver.New(gw.Handler(), logger), v, closeShared, nil
}

// upstreamAuthorization is what the proxy-mode gateway sends the upstream
// (UPSTREAM_AUTHORIZATION); the baseline, its upstream, accepts any bearer
// token.
const upstreamAuthorization = "Bearer bench-upstream-credential"

// gatewayProxyServer is the gateway wired as main.go wires it in proxy
// mode (UPSTREAM_URL set, AUTH_ISSUER_URL with introspection, defaults from
// .env.example, the built-in tools' policy declared, as POLICY would), in
// front of upstream: the baseline server, a Go SDK server that needs a
// bearer token (UPSTREAM_AUTHORIZATION). It returns once discovery is
// done and the upstream answers, as /readyz would.
func gatewayProxyServer(ctx context.Context, resource, issuer, upstream string, logger *slog.Logger) (*http.Server, func(), error) {
	policy := tools.Policy()
	m := metrics.New(metrics.Labels{
		AuthOutcomes: labels(gateway.AllAuthOutcomes()),
		Tools:        policy.Tools(),
		Operations:   tools.Operations(),
	})
	v, err := newVerifier(ctx, issuer, resource, 0, logger, m, true, introspect.SharedTier{})
	if err != nil {
		return nil, nil, err
	}
	gw, err := gateway.New(gateway.Config{
		Resource:             resource,
		AuthorizationServers: []string{issuer},
		ScopesSupported:      policy.Scopes(),
		ResourceName:         "MCP server",
		SessionTimeout:       defSessionTimeout,
		ScopeChallenge:       gateway.ScopeChallengeHTTP,
		MaxBodyBytes:         defMaxBodyBytes,
		ClockSkew:            defClockSkew,
		Verifier:             v,
		Upstream: &proxy.Config{
			Upstream:           upstream,
			Authorization:      upstreamAuthorization,
			Timeout:            proxy.DefaultTimeout,
			MaxSessions:        1000,
			MaxSessionsPerUser: 20,
			MaxStreams:         1000,
			MaxStreamsPerUser:  20,
		},
		Policy:       policy,
		Logger:       logger,
		Metrics:      m,
		ServeMetrics: true,
	})
	if err != nil {
		v.Close()
		return nil, nil, err
	}
	closeAll := func() { gw.Close(); v.Close() }
	if err := v.Ready(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	return httpserver.New(gw.Handler(), logger), closeAll, nil
}

// baselineServer is the baseline: the Go SDK's Streamable HTTP handler
// with the same server, tools and options as the gateway builds, and no
// authentication. The calculator reads the caller's scopes from
// req.Extra.TokenInfo, which only auth.RequireBearerToken can set (the
// SDK's context key is unexported), so the baseline wraps the handler in
// RequireBearerToken with a verifier that accepts any token without
// looking at it and returns one constant TokenInfo. That is the minimum
// for the tool to answer. Its answers go out as the gateway's do
// (flushjson.Wrap: as soon as the SDK has written them), which is
// transport, not authentication. Everything the gateway adds (Echo, request id,
// recover, host/origin/CORS checks, token extraction, introspection
// verification and cache, the scope step-up body peek, the JSON error
// wrapper) is absent.
func baselineServer(logger *slog.Logger) (*http.Server, error) {
	h, err := baselineHandler(logger)
	if err != nil {
		return nil, err
	}
	// No router either: the handler serves every path.
	return httpserver.New(h, logger), nil
}

// baselineHandler is the baseline server's handler.
func baselineHandler(logger *slog.Logger) (http.Handler, error) {
	s, err := calculatorServer(logger)
	if err != nil {
		return nil, err
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Stateless:                  true,
		JSONResponse:               true,
		SessionTimeout:             defSessionTimeout,
		MaxRequestBodyBytes:        defMaxBodyBytes,
		Logger:                     logger,
		DisableLocalhostProtection: true,
	})
	ti := &auth.TokenInfo{UserID: "baseline", Scopes: tools.Policy().Scopes(), Expiration: time.Now().Add(24 * time.Hour)}
	anyToken := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return ti, nil }
	return auth.RequireBearerToken(anyToken, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(flushjson.Wrap(h)), nil
}

// calculatorServer is the MCP server with the built-in tools, as main.go
// builds it.
func calculatorServer(logger *slog.Logger) (*mcp.Server, error) {
	s := gateway.NewMCPServer(&mcp.Implementation{Name: "mcp-gateway-calculator", Title: "Calculator", Version: "1.0.0"}, logger)
	if err := tools.Register(s, tools.Policy()); err != nil {
		return nil, err
	}
	return s, nil
}

// labels converts a vocabulary to metric label values.
func labels[S ~string](vs []S) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
