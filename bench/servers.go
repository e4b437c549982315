package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/gateway"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/scopes"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

// Defaults from .env.example, as main.go would load them with an empty
// environment apart from AUTH_ISSUER_URL and the client credentials.
const (
	defClockSkew        = 30 * time.Second
	defIntrospectTO     = 5 * time.Second
	defCacheMaxTTL      = 60 * time.Second
	defCacheNegativeTTL = 5 * time.Second
	defCacheMaxBytes    = 64 << 20
	defMaxBodyBytes     = 1 << 20
	defSessionTimeout   = 30 * time.Minute
)

// server is an HTTP server on a loopback listener.
type server struct {
	URL string // MCP endpoint
	srv *http.Server
}

func (s *server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// httpServer mirrors the http.Server main.go builds.
func httpServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// benchLogger is main.go's logger (JSON, level info) writing nowhere, so
// that level checks cost what they cost in production.
func benchLogger() *slog.Logger {
	if os.Getenv("BENCH_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func listenLoopback() (net.Listener, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	return ln, ln.Addr().(*net.TCPAddr).Port, nil
}

// gatewayServer is the real gateway wired exactly as main.go wires it in
// production mode (AUTH_ISSUER_URL set, discovery, defaults from
// .env.example).
type gatewayServer struct {
	server
	Verifier *introspect.Verifier
}

func (g *gatewayServer) Close() {
	g.server.Close()
	g.Verifier.Close()
}

// newVerifier builds the verifier as main.go does; cacheMaxBytes 0 means
// the default.
// The per-client miss rate (INTROSPECTION_CLIENT_RATE) is left off: every
// request here comes from one loopback address, and the burst targets
// measure coalescing, which a rate limit on unknown tokens from one address
// would (by design) cut short. Metrics are on, as in production.
func newVerifier(ctx context.Context, issuer, resource string, cacheMaxBytes int64, logger *slog.Logger, obs introspect.Observer) (*introspect.Verifier, error) {
	if cacheMaxBytes == 0 {
		cacheMaxBytes = defCacheMaxBytes
	}
	return introspect.New(ctx, introspect.Config{
		Endpoint:             "", // discovered, as with INTROSPECTION_URL unset
		Issuer:               issuer,
		ClientID:             asClientID,
		ClientSecret:         asClientSecret,
		AuthMethod:           introspect.AuthMethodClientSecretBasic,
		Audiences:            []string{resource},
		AllowMissingAudience: false,
		ClockSkew:            defClockSkew,
		Timeout:              defIntrospectTO,
		CacheMaxTTL:          defCacheMaxTTL,
		CacheNegativeTTL:     defCacheNegativeTTL,
		CacheMaxBytes:        cacheMaxBytes,
		MaxConcurrency:       introspect.DefaultMaxConcurrency,
		Observer:             obs,
		Logger:               logger.With("component", "introspect"),
	})
}

// startGateway starts the gateway on ln; resource is its MCP_RESOURCE_URL.
func startGateway(ctx context.Context, ln net.Listener, resource, issuer string) (*gatewayServer, error) {
	logger := benchLogger()
	m := metrics.New()
	v, err := newVerifier(ctx, issuer, resource, 0, logger, m)
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(gateway.Config{
		Resource:             resource,
		AuthorizationServers: []string{issuer},
		ScopesSupported:      scopes.All(),
		ResourceName:         "Calculator",
		Stateless:            true,
		JSONResponse:         true,
		SessionTimeout:       defSessionTimeout,
		ScopeChallenge:       gateway.ScopeChallengeHTTP,
		MaxBodyBytes:         defMaxBodyBytes,
		ClockSkew:            defClockSkew,
		Verifier:             v,
		Policy:               scopes.Default(),
		Logger:               logger,
		Metrics:              m,
		ServeMetrics:         true,
	})
	if err != nil {
		v.Close()
		return nil, err
	}
	srv := httpServer(gw.Handler(), logger)
	go func() { _ = srv.Serve(ln) }()
	// main.go discovers in the background once listening; do it now so the
	// first measured request does not pay for it.
	if err := v.Ready(ctx); err != nil {
		_ = srv.Close()
		v.Close()
		return nil, err
	}
	return &gatewayServer{server: server{URL: resource, srv: srv}, Verifier: v}, nil
}

// startBaseline starts the baseline: the Go SDK's Streamable HTTP handler
// with the same server, tools and options as the gateway builds, and no
// authentication. The calculator reads the caller's scopes from
// req.Extra.TokenInfo, which only auth.RequireBearerToken can set (the
// SDK's context key is unexported), so the baseline wraps the handler in
// RequireBearerToken with a verifier that accepts any token without
// looking at it and returns one constant TokenInfo. That is the minimum
// for the tool to answer; everything the gateway adds (Echo, request id,
// recover, host/origin/CORS checks, token extraction, introspection
// verification and cache, the scope step-up body peek, the JSON error
// wrapper) is absent.
func startBaseline(ln net.Listener) (*server, error) {
	logger := benchLogger()
	s := mcp.NewServer(&mcp.Implementation{Name: "mcp-gateway-calculator", Title: "Calculator", Version: "1.0.0"}, &mcp.ServerOptions{Logger: logger})
	if err := tools.Register(s, scopes.Default()); err != nil {
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
	ti := &auth.TokenInfo{UserID: "baseline", Scopes: scopes.All(), Expiration: time.Now().Add(24 * time.Hour)}
	anyToken := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return ti, nil }
	handler := auth.RequireBearerToken(anyToken, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
	// No router either: the handler serves every path.
	srv := httpServer(handler, logger)
	go func() { _ = srv.Serve(ln) }()
	port := ln.Addr().(*net.TCPAddr).Port
	return &server{URL: "http://127.0.0.1:" + strconv.Itoa(port) + "/mcp", srv: srv}, nil
}
