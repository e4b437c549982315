// Package gateway assembles the HTTP surface of the MCP gateway: the MCP
// Streamable HTTP endpoint behind bearer-token authentication, the RFC 9728
// protected resource metadata, and health endpoints, on one Echo instance.
//
// The order of checks on the MCP endpoint is deliberate: Origin (MCP
// transport spec, DNS-rebinding and CSRF defence), then the bearer token
// (RFC 6750 §2.1, refused outright when malformed, before any network call),
// then introspection (RFC 7662, cached), then the scope the JSON-RPC request
// needs (RFC 6750 §3.1 insufficient_scope), and only then the Go MCP SDK,
// or in proxy mode (Config.Upstream) the upstream MCP server (proxymode.go).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/internal/flushjson"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/proxy"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// Verifier validates a bearer token. *introspect.Verifier implements it.
type Verifier interface {
	// Verify returns the token's information, or an error: an
	// *introspect.InvalidTokenError when the token is not valid, an
	// *introspect.UnavailableError or *introspect.ClientAuthError when no
	// answer could be had. Anything else is treated as unavailable: the
	// gateway fails closed.
	Verify(ctx context.Context, token string) (*auth.TokenInfo, error)
	// Ready reports whether tokens can be verified now.
	Ready(ctx context.Context) error
}

// Scope challenge modes (SCOPE_CHALLENGE).
const (
	// ScopeChallengeHTTP answers a tools/call whose scope the token lacks
	// with 403 insufficient_scope before the tool runs, so clients can step up.
	ScopeChallengeHTTP = "http"
	// ScopeChallengeTool leaves the check to the tool, which returns an
	// isError result naming the missing scope.
	ScopeChallengeTool = "tool"
)

// Mount routes every request whose path starts with one of Prefixes to
// Handler; the embedded development authorization server uses it.
type Mount struct {
	Prefixes []string
	Handler  http.Handler
}

// Config is the gateway's configuration, already validated by the caller.
type Config struct {
	// Resource is MCP_RESOURCE_URL: the PRM "resource" and the audience a
	// token must carry. Its path is where MCP is served.
	Resource string
	// AuthorizationServers are listed in the PRM authorization_servers.
	AuthorizationServers  []string
	ScopesSupported       []string
	ResourceName          string
	ResourceDocumentation string

	// AllowedOrigins may call the MCP endpoint from a browser, besides the
	// resource's own origin. "*" allows any.
	AllowedOrigins []string

	Stateless      bool
	JSONResponse   bool
	SessionTimeout time.Duration
	ScopeChallenge string // ScopeChallengeHTTP (default) or ScopeChallengeTool
	// ToolsList is ToolsListAll (default) or ToolsListAllowed.
	ToolsList string
	// MaxBodyBytes bounds an MCP request body (default 1 MiB).
	MaxBodyBytes int64
	// ClockSkew is tolerated on token expiry.
	ClockSkew time.Duration

	// MaxSessions bounds the live MCP sessions in stateful mode; a request
	// that would open one more gets 503 with Retry-After. 0 means
	// DefaultMaxSessions, a negative value no limit.
	MaxSessions int
	// MaxSessionsPerUser bounds one user's live sessions (stateful mode);
	// one more gets 429 with Retry-After. 0 means
	// DefaultMaxSessionsPerUser, a negative value no limit.
	MaxSessionsPerUser int
	// MaxStreams bounds the open streams in every mode: GET event streams
	// (stateful), subscriptions/listen, and POSTs answered with SSE
	// (JSONResponse false); one more gets 503 with Retry-After. 0 means
	// DefaultMaxStreams, a negative value no limit.
	MaxStreams int
	// MaxStreamsPerUser bounds one user's open streams; one more gets 429
	// with Retry-After. 0 means DefaultMaxStreamsPerUser, a negative value
	// no limit. A user is the token's subject, else its client id.
	MaxStreamsPerUser int
	// Now and AfterFunc are the clock that ends a stream when its token
	// expires; tests inject their own. Defaults: time.Now, and
	// time.AfterFunc's timer (the returned function stops it).
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// LoopbackOnly answers only requests addressed to a loopback host
	// (their Host header), on every route: development mode, whose
	// embedded authorization server has no real login, unless
	// DEV_AUTH_ALLOW_PUBLIC opens it on purpose. A tunnel or reverse proxy
	// on the same machine reaches a loopback listener but keeps its
	// public Host, so the listener's address alone cannot tell.
	LoopbackOnly bool
	// ClientIPHeader names a request header set by a trusted proxy with the
	// client's IP address (e.g. "Fly-Client-IP"); it is what introspection
	// load shedding attributes a request to, when present and a valid IP.
	// Otherwise the connection's remote address is used. Leave it empty
	// when no proxy sets it: any client can send any header.
	ClientIPHeader string

	// Metrics, when not nil, records the gateway's Prometheus metrics.
	Metrics *metrics.Metrics
	// ServeMetrics serves Metrics at GET /metrics on this handler (when
	// Metrics is not nil). Leave it false when the metrics have a listener
	// of their own.
	ServeMetrics bool

	Verifier Verifier
	// Server is the MCP server behind the gateway, with its tools already
	// registered (tools.Register for the built-in ones). Its tools read the
	// caller from req.Extra.TokenInfo. Exactly one of Server and Upstream
	// is set.
	Server *mcp.Server
	// Upstream, in proxy mode (UPSTREAM_URL), is the upstream MCP server
	// every authorized MCP request is forwarded to: the gateway then
	// serves no tools of its own. The gateway builds the proxy and sets
	// what it owns: FilterTool (tools/list as the Policy and ToolsList
	// say; a filter set here must also let a tool through), and, where
	// left zero, MaxBodyBytes, SessionIdleTimeout (SessionTimeout), the
	// session and stream bounds (MaxSessions, MaxSessionsPerUser,
	// MaxStreams, MaxStreamsPerUser), Logger and Observer (Metrics).
	// Stateless and JSONResponse do not apply: the upstream decides its
	// transport.
	Upstream *proxy.Config
	// Policy decides, for every tool, whether it exists for clients and
	// which scopes a call needs: the HTTP step-up before the SDK runs
	// anything, tools/list, and the server middleware (enforcePolicy). It
	// is required (tools.Policy() for the built-in tools).
	Policy *scopes.Policy
	Logger *slog.Logger
	Mounts []Mount
	// TracerProvider, when not nil, records a server span per request and
	// a span per tool call (trace.go); the verifier and the proxy take it
	// in their own configuration. nil: no spans, and nothing of tracing on
	// the hot path.
	TracerProvider trace.TracerProvider
}

// Gateway is the assembled HTTP handler.
type Gateway struct {
	cfg          Config
	echo         *echo.Echo
	challenge    prm.Challenge // the base challenge: resource_metadata and scope
	mcpPath      string
	origin       string // the resource's own origin, always allowed
	resourceHost string
	landing      *landingPage
	// routes are the registered route patterns; any other c.Path() is
	// logged and counted as unmatched.
	routes   map[string]struct{}
	sessions *sessionLimiter // nil: stateless, no limit, or proxy mode
	streams  *streamLimiter  // in proxy mode a registry of forwarded requests, without bounds
	server   *mcp.Server     // nil in proxy mode
	proxy    *proxy.Proxy    // nil unless in proxy mode

	requestIDs *requestIDs
	tracer     trace.Tracer // nil: no spans
}

// PRM is the RFC 9728 protected resource metadata configuration the
// gateway serves (the configuration doctor builds the same document).
func (c Config) PRM() prm.Config {
	return prm.Config{
		Resource:              c.Resource,
		AuthorizationServers:  c.AuthorizationServers,
		ScopesSupported:       c.ScopesSupported,
		ResourceName:          c.ResourceName,
		ResourceDocumentation: c.ResourceDocumentation,
	}
}

// New validates cfg and builds the gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.ScopeChallenge == "" {
		cfg.ScopeChallenge = ScopeChallengeHTTP
	}
	if len(cfg.ScopesSupported) == 0 && cfg.Policy != nil {
		cfg.ScopesSupported = cfg.Policy.Scopes()
	}
	if cfg.ToolsList == "" {
		cfg.ToolsList = ToolsListAll
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxSessionsPerUser == 0 {
		cfg.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if cfg.MaxStreamsPerUser == 0 {
		cfg.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	var errs []error
	if cfg.Verifier == nil {
		errs = append(errs, errors.New("gateway: no token verifier"))
	}
	switch {
	case cfg.Server == nil && cfg.Upstream == nil:
		errs = append(errs, errors.New("gateway: no MCP server and no upstream"))
	case cfg.Server != nil && cfg.Upstream != nil:
		errs = append(errs, errors.New("gateway: both an MCP server and an upstream: set one"))
	}
	if cfg.Policy == nil {
		errs = append(errs, errors.New("gateway: no tool policy (tools.Policy() for the built-in tools)"))
	}
	if cfg.ToolsList != ToolsListAll && cfg.ToolsList != ToolsListAllowed {
		errs = append(errs, fmt.Errorf("gateway: tools list mode %q is neither %q nor %q", cfg.ToolsList, ToolsListAll, ToolsListAllowed))
	}
	if cfg.ScopeChallenge != ScopeChallengeHTTP && cfg.ScopeChallenge != ScopeChallengeTool {
		errs = append(errs, fmt.Errorf("gateway: scope challenge mode %q is neither %q nor %q", cfg.ScopeChallenge, ScopeChallengeHTTP, ScopeChallengeTool))
	}
	md, err := prm.NewMetadata(cfg.PRM())
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	mdURL, err := prm.MetadataURL(cfg.Resource)
	if err != nil {
		return nil, err
	}
	mdPaths, err := prm.MetadataPaths(cfg.Resource)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Resource)
	if err != nil {
		return nil, err
	}
	mcpPath := u.EscapedPath()
	if mcpPath == "" {
		mcpPath = "/"
	}

	g := &Gateway{
		cfg:          cfg,
		challenge:    prm.Challenge{ResourceMetadata: mdURL, Scope: cfg.ScopesSupported},
		mcpPath:      mcpPath,
		origin:       strings.ToLower(u.Scheme + "://" + u.Host),
		resourceHost: u.Host,
		requestIDs:   newRequestIDs(),
	}

	if cfg.TracerProvider != nil {
		g.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	if g.landing, err = newLandingPage(cfg, mdURL); err != nil {
		return nil, err
	}
	var mcpHandler echo.HandlerFunc
	var mcpMiddleware []echo.MiddlewareFunc
	if cfg.Upstream != nil {
		g.streams = newStreamLimiter(0, 0)
		if g.proxy, err = g.newProxy(); err != nil {
			return nil, err
		}
		// The proxy bounds its sessions and streams itself.
		mcpHandler = g.forward
		mcpMiddleware = []echo.MiddlewareFunc{g.checkHost, g.checkOrigin, g.cors(), g.authenticate, g.readBody, g.stepUp}
	} else {
		mcpHandler = echo.WrapHandler(g.builtIn(mdURL))
		mcpMiddleware = []echo.MiddlewareFunc{g.checkHost, g.checkOrigin, g.cors(), g.authenticate, g.readBody, g.stepUp, g.limits}
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = g.httpError
	e.Use(g.observe)
	e.Use(middleware.Recover())
	if cfg.LoopbackOnly {
		e.Use(g.loopbackOnly)
	}

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", g.readyz)
	if cfg.ServeMetrics && cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics.Handler()))
	}
	if mcpPath != "/" {
		e.GET("/", g.landing.serve)
	}

	mdHandler := echo.WrapHandler(prm.Handler(md))
	for _, p := range mdPaths {
		e.Any(p, mdHandler)
	}

	if mcpPath == "/" {
		mcpMiddleware = append([]echo.MiddlewareFunc{g.landingOnRoot}, mcpMiddleware...)
	}
	e.Any(mcpPath, mcpHandler, mcpMiddleware...)

	// A mounted server (the development authorization server) gets the
	// same DNS-rebinding check as the MCP endpoint.
	for _, m := range cfg.Mounts {
		h := echo.WrapHandler(m.Handler)
		for _, p := range m.Prefixes {
			e.Any(p, h, g.checkHost)
			if !strings.HasSuffix(p, "/") {
				e.Any(p+"/*", h, g.checkHost)
			} else {
				e.Any(p+"*", h, g.checkHost)
			}
		}
	}
	g.routes = make(map[string]struct{})
	for _, r := range e.Routes() {
		g.routes[r.Path] = struct{}{}
	}
	g.echo = e
	return g, nil
}

// builtIn is the handler of the built-in server (Config.Server): the
// SDK's Streamable HTTP handler, with the policy and metrics middleware
// on the server and the session and stream bounds set up.
func (g *Gateway) builtIn(mdURL string) http.Handler {
	cfg := g.cfg
	server := cfg.Server
	g.server = server
	server.AddReceivingMiddleware(enforcePolicy(cfg.Policy, cfg.ToolsList))
	if cfg.Metrics != nil {
		server.AddReceivingMiddleware(toolCallMetrics(cfg.Metrics, cfg.Policy))
	}
	if g.tracer != nil {
		server.AddReceivingMiddleware(traceToolCalls(g.tracer, cfg.Policy))
	}
	if !cfg.Stateless && (cfg.MaxSessions > 0 || cfg.MaxSessionsPerUser > 0) {
		g.sessions = newSessionLimiter(server, cfg.MaxSessions, cfg.MaxSessionsPerUser)
	}
	g.streams = newStreamLimiter(cfg.MaxStreams, cfg.MaxStreamsPerUser)
	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{
		Stateless:           cfg.Stateless,
		JSONResponse:        cfg.JSONResponse,
		SessionTimeout:      cfg.SessionTimeout,
		MaxRequestBodyBytes: cfg.MaxBodyBytes,
		Logger:              sdkLogger(cfg.Logger),
		// checkHost does this, allowing the resource's own host too.
		DisableLocalhostProtection: true,
	})
	// The SDK keeps its TokenInfo context key unexported: the only way to
	// hand it our already-verified TokenInfo (for req.Extra.TokenInfo and
	// the per-user session binding) is its own middleware, fed by a
	// verifier that reads what authenticate stored. The token is verified
	// once.
	return jsonErrors(auth.RequireBearerToken(verifiedTokenInfo, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL:    mdURL,
		AllowMissingExpiration: true,
		// The verifier has decided expiry with its own (injectable) clock;
		// the SDK's second check, with time.Now, must never overrule it.
		ClockSkew: sdkSkewNeverDecides,
	})(flushjson.Wrap(streamable)))
}

// Close ends every live MCP session, and with them their goroutines and
// open SSE streams: the built-in server's (stateful mode), or in proxy
// mode the upstream sessions the proxy holds (ended at the upstream with
// DELETE). Call it after the HTTP server has shut down; the SDK's handler
// has no Close of its own.
func (g *Gateway) Close() {
	if g.server != nil {
		for ss := range g.server.Sessions() {
			_ = ss.Close()
		}
	}
	if g.proxy != nil {
		g.proxy.Close()
	}
}

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.echo }

// sdkSkewNeverDecides is the clock skew handed to the SDK's
// RequireBearerToken, whose own expiry check uses time.Now: a century, so
// that only the verifier decides whether a token has expired.
const sdkSkewNeverDecides = 100 * 365 * 24 * time.Hour

// readyz is the readiness probe. Its answer is public, so it says only
// ready or unavailable and a short reason code (readinessReason); what
// went wrong, with addresses and errors, goes to the log (and the
// configuration doctor, go run . check).
func (g *Gateway) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	if err := g.cfg.Verifier.Ready(ctx); err != nil {
		reason := readinessReason(err)
		g.cfg.Logger.WarnContext(ctx, "not ready", "reason", reason, "error", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
	}
	if g.proxy != nil {
		// The answer is public: a reason code, the details in the log.
		if err := g.proxy.Ready(ctx); err != nil {
			reason := upstreamReason(err)
			g.cfg.Logger.WarnContext(ctx, "not ready", "reason", reason, "error", err)
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// Readiness reason codes (GET /readyz).
const (
	// ReasonCredentialsRejected: the authorization server refused the
	// gateway's own introspection credentials.
	ReasonCredentialsRejected = "introspection_credentials_rejected"
	// ReasonASMisconfigured: the authorization server answered, but its
	// metadata cannot be used (wrong issuer, no introspection endpoint).
	ReasonASMisconfigured = "authorization_server_metadata_invalid"
	// ReasonASUnreachable: no usable answer from the authorization server
	// (connection, timeout, 5xx, no metadata document found).
	ReasonASUnreachable = "authorization_server_unreachable"
)

// readinessReason is the reason code for a Verifier.Ready error.
func readinessReason(err error) string {
	var clientAuth *introspect.ClientAuthError
	var disc *introspect.DiscoveryError
	switch {
	case errors.As(err, &clientAuth):
		return ReasonCredentialsRejected
	case errors.As(err, &disc) && disc.FoundAt != "":
		return ReasonASMisconfigured
	case errors.Is(err, introspect.ErrNoIntrospectionEndpoint):
		return ReasonASMisconfigured
	}
	return ReasonASUnreachable
}

// httpError makes every error Echo itself produces (404, 405, panics
// recovered) a JSON body.
func (g *Gateway) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = strings.ToLower(http.StatusText(code))
	}
	if code >= 500 {
		g.cfg.Logger.ErrorContext(c.Request().Context(), "request failed", "error", err, "path", c.Request().URL.Path)
	}
	body := prm.ErrorBody{Error: strings.ReplaceAll(msg, " ", "_")}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, body)
}
