// Command mcp-gateway is an OAuth-protected MCP server: a calculator whose
// operations each need their own scope, behind RFC 9728 protected resource
// metadata, with tokens of an external authorization server validated by
// RFC 7662 introspection or, for JWT access tokens (RFC 9068), locally
// against the issuer's JWKS (TOKEN_VALIDATION). With no AUTH_ISSUER_URL it runs in development
// mode, with an embedded authorization server on the same listener. With UPSTREAM_URL it serves
// no tools of its own and forwards each authorized request to that MCP server (proxy mode).
//
// Configuration is by environment variables only; see .env.example.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/devauth"
	"github.com/mcp-gateway/mcp-gateway/gateway"
	"github.com/mcp-gateway/mcp-gateway/internal/httpserver"
	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/proxy"
	"github.com/mcp-gateway/mcp-gateway/scopes"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

func main() {
	// Fly.io stops machines with SIGINT, Kubernetes and Docker with SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, nil); err != nil {
		var ce *configError
		isConfig := errors.As(err, &ce)
		if !isConfig || !ce.reported {
			fmt.Fprintln(os.Stderr, "mcp-gateway:", err)
		}
		if isConfig {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run starts the gateway and serves until ctx is cancelled, then shuts down
// gracefully. It reads its configuration only through lookup. onListen,
// when not nil, is called with the base URL once the listener is bound;
// tests use it to start the whole server in-process.
func run(ctx context.Context, args []string, lookup LookupEnv, stdout, stderr io.Writer, onListen func(baseURL string)) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return runCheck(ctx, args[1:], lookup, stdout) // configuration doctor, check.go
		case "help", "-h", "-help", "--help":
			usage(stdout)
			return nil
		case "version", "--version":
			printVersion(stdout)
			return nil
		}
		return unknownArguments(args)
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)

	// Traces, when an OTEL_* endpoint is configured; nil otherwise, and
	// then nothing of tracing runs.
	tracer, err := tracing.New(ctx, cfg.Tracing, tracing.Options{Logger: logger.With("component", "tracing"), ServiceVersion: buildVersion()})
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		// Last, once the server and the verifier have stopped: the spans
		// still queued are exported within the shutdown timeout.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(cfg.ShutdownTimeout, time.Second))
		defer cancel()
		if err := tracer.Shutdown(sctx); err != nil {
			logger.Warn("trace export at shutdown failed", "error", err)
		}
	}()
	if tracer != nil {
		// Every log line made within a request names its trace.
		logger = slog.New(tracing.LogHandler(logger.Handler()))
		logger.Info("tracing on", "endpoint", cfg.Tracing.Endpoint(), "service_name", cfg.Tracing.ServiceName,
			"sampler", cfg.Tracing.Sampler.Name, "sampler_ratio", cfg.Tracing.Sampler.Ratio)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return listenError("PORT", cfg.Port, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cfg.resolveResource(port)

	m := metrics.New(metrics.Labels{
		AuthOutcomes: labelValues(gateway.AllAuthOutcomes()),
		Tools:        cfg.Policy.Tools(),
		Operations:   argumentValues(cfg.Policy),
		Shared:       sharedMetricLabels(),
	})
	var mounts []gateway.Mount
	if cfg.DevMode {
		issuer, err := devIssuer(cfg.ResourceURL)
		if err != nil {
			return err
		}
		// A policy that needs no scope (proxy mode without POLICY) offers
		// none: consent then only signs the user in.
		offered := cfg.ScopesSupported
		if offered == nil {
			offered = []string{}
		}
		das, err := devauth.New(devauth.Config{
			Issuer:   issuer,
			Resource: cfg.ResourceURL,
			Scopes:   offered,
			Describe: cfg.Policy.Describe,
			// A client id URL on loopback is a client on this machine;
			// behind a public tunnel it could be anyone's.
			AllowLoopbackClientIDs: !cfg.DevAuthAllowPublic,
			AccessTokenTTL:         cfg.DevAuthTokenTTL,
			Logger:                 logger.With("component", "devauth"),

			IntrospectionClientID:     cfg.DevAuthIntrospectionClientID,
			IntrospectionClientSecret: cfg.DevAuthIntrospectionSecret,
		})
		if err != nil {
			return fmt.Errorf("development authorization server: %w", err)
		}
		cfg.IssuerURL = issuer
		cfg.IntrospectionClientID, cfg.IntrospectionSecret = das.IntrospectionCredentials()
		mounts = append(mounts, gateway.Mount{Prefixes: das.Paths(), Handler: das.Handler()})
	}

	// The shared tier, revocations, admin API and Shared Signals
	// (sharedtier.go). Closed after the verifier, whose writes use it.
	shared, err := newSharedTier(ctx, cfg, logger, m)
	if err != nil {
		return err
	}
	defer shared.Close()
	mounts = append(mounts, shared.mounts()...)

	ic := cfg.introspectConfig()
	ic.Shared = shared.verifierTier()
	ic.KnownScopes = append(cfg.Policy.Scopes(), cfg.Policy.Described()...)
	ic.Observer = m
	ic.Logger = logger.With("component", "introspect")
	ic.TracerProvider = tracer.TracerProvider()
	verifier, err := introspect.New(ctx, ic)
	if err != nil {
		return &configError{problems: []string{err.Error()}}
	}
	defer verifier.Close()

	gwCfg := cfg.gatewayConfig()
	if cfg.UpstreamURL != "" {
		// Proxy mode: no tools of the gateway's own.
		pc := cfg.proxyConfig()
		gwCfg.Upstream = &pc
		logger.Info("proxy mode", "upstream", proxy.Redacted(cfg.UpstreamURL), "upstream_authorization", cfg.UpstreamAuthorization != "")
		if cfg.PolicySource == policyNone {
			logger.Warn("proxy mode without POLICY or POLICY_FILE: every tool of the upstream needs only a valid token, and the upstream alone decides what each user may do; declare a policy (README.md, \"Per-tool policy\")")
		}
	} else {
		server := gateway.NewMCPServer(&mcp.Implementation{Name: "mcp-gateway-calculator", Title: cfg.ResourceName, Version: "1.0.0"}, logger)
		if err := tools.Register(server, cfg.Policy); err != nil {
			return err
		}
		gwCfg.Server = server
	}
	gwCfg.Verifier = verifier
	gwCfg.Logger = logger
	gwCfg.Mounts = mounts
	gwCfg.Metrics = m
	gwCfg.TracerProvider = tracer.TracerProvider()
	gw, err := gateway.New(gwCfg)
	if err != nil {
		return &configError{problems: []string{err.Error()}}
	}
	shared.attach(gw) // a revocation ends the streams it names

	srv := httpserver.New(gw.Handler(), logger)
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()

	// METRICS_PORT keeps /metrics off the public listener.
	var metricsSrv *http.Server
	if cfg.MetricsPort != 0 {
		mln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.MetricsPort)))
		if err != nil {
			return listenError("METRICS_PORT", cfg.MetricsPort, err)
		}
		defer mln.Close()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		shared.routeAdmin(mux, logger)
		metricsSrv = httpserver.New(mux, logger)
		go func() { serveErr <- metricsSrv.Serve(mln) }()
		logger.Info("metrics listening", "addr", mln.Addr().String())
	}

	baseURL := "http://" + net.JoinHostPort(displayHost(cfg.Host), strconv.Itoa(port))
	logger.Info("listening", "addr", ln.Addr().String(), "resource", cfg.ResourceURL, "issuer", cfg.IssuerURL, "dev_mode", cfg.DevMode, "policy", cfg.PolicySource)
	if cfg.DevMode {
		printBanner(stdout, cfg)
		// With DEV_AUTH_ALLOW_PUBLIC the listener may be on loopback and
		// still be public, through a tunnel: warn either way.
		if cfg.DevAuthAllowPublic || !loopback.Host(cfg.Host) {
			go warnPublicDevMode(ctx, logger, cfg.Host, time.Minute)
		}
	}

	// The endpoint is discovered after the listener is up, because in
	// development mode the authorization server is on this very listener.
	// /readyz retries when this gives up.
	discoverCtx, cancelDiscover := context.WithCancel(ctx)
	defer cancelDiscover()
	go discover(discoverCtx, verifier, logger)

	if onListen != nil {
		onListen(baseURL)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	err = srv.Shutdown(shutdownCtx)
	// In-flight requests are done (or out of time): end the stateful
	// sessions, which would otherwise outlive the server.
	gw.Close()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// discover finds the introspection endpoint and the issuer's jwks_uri
// (one discovery serves both), retrying with jittered backoff for about a
// minute; the JWKS itself is then fetched, and retried, by the verifier's
// key set.
func discover(ctx context.Context, v *introspect.Verifier, logger *slog.Logger) {
	backoff := 100 * time.Millisecond
	for attempt := 1; attempt <= 10; attempt++ {
		err := v.Discover(ctx)
		if err == nil {
			jwks := ""
			if j := v.JWT(); j != nil {
				jwks = j.Keys().URL()
			}
			m := v.Mode()
			logger.Info("authorization server known", "token_validation", string(m.Validation), "jwt_only", m.JWTOnly,
				"introspection_endpoint", v.Endpoint(), "jwks_uri", jwks)
			return
		}
		logger.Warn("authorization server discovery failed", "attempt", attempt, "error", err)
		d := backoff/2 + rand.N(backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}

// newLogger logs at level in format: "json", "text", or "auto" (text on a
// terminal, where people read it; JSON anywhere else, where machines do).
// Durations are written as Go duration strings ("10s"), not nanoseconds.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			return slog.String(a.Key, a.Value.Duration().String())
		}
		return a
	}}
	if format == "text" || (format == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// listenError explains a listener that could not be bound, with the
// variable that picks its port.
func listenError(variable string, port int, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen: port %d is already in use by another process: stop it, or set %s to a free port (for example %s=%d): %w", port, variable, variable, port+1, err)
	}
	return fmt.Errorf("listen on port %d (%s): %w", port, variable, err)
}

// argumentValues are the values of the arguments the policy's rules read
// (the calculator's operations): the operation label set.
func argumentValues(p *scopes.Policy) []string {
	var out []string
	for _, t := range p.Tools() {
		out = append(out, p.ArgumentValues(t)...)
	}
	return out
}

// labelValues turns a vocabulary into metric label values.
func labelValues[S ~string](vs []S) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func displayHost(h string) string {
	if h == "" || h == "0.0.0.0" || h == "::" {
		return "localhost"
	}
	return h
}
