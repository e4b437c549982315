package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/kelseyhightower/envconfig"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/gateway"
	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess"
	"github.com/mcp-gateway/mcp-gateway/proxy"
	"github.com/mcp-gateway/mcp-gateway/scopes"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

// env is the configuration contract: every variable the gateway reads, with
// its default. Values are read as text and parsed by config.validate, so
// that one run reports every problem at once (envconfig stops at the first
// value it cannot parse). .env.example documents each variable, and a test
// checks it against this struct.
type env struct {
	Port string `envconfig:"PORT" default:"8080"`
	Host string `envconfig:"HOST"`

	ResourceURL           string `envconfig:"MCP_RESOURCE_URL"`
	ResourceName          string `envconfig:"RESOURCE_NAME"`
	ResourceDocumentation string `envconfig:"RESOURCE_DOCUMENTATION"`
	ScopesSupported       string `envconfig:"SCOPES_SUPPORTED"`

	Policy     string `envconfig:"POLICY"`
	PolicyFile string `envconfig:"POLICY_FILE"`
	ToolsList  string `envconfig:"TOOLS_LIST" default:"all"`

	UpstreamURL           string `envconfig:"UPSTREAM_URL"`
	UpstreamAllowHTTP     string `envconfig:"UPSTREAM_ALLOW_HTTP" default:"false"`
	UpstreamAuthorization string `envconfig:"UPSTREAM_AUTHORIZATION"`
	UpstreamTimeout       string `envconfig:"UPSTREAM_TIMEOUT" default:"60s"`

	IssuerURL               string `envconfig:"AUTH_ISSUER_URL"`
	IntrospectionURL        string `envconfig:"INTROSPECTION_URL"`
	IntrospectionClientID   string `envconfig:"INTROSPECTION_CLIENT_ID"`
	IntrospectionSecret     string `envconfig:"INTROSPECTION_CLIENT_SECRET"`
	IntrospectionAuthMethod string `envconfig:"INTROSPECTION_AUTH_METHOD" default:"client_secret_basic"`
	IntrospectionTimeout    string `envconfig:"INTROSPECTION_TIMEOUT" default:"5s"`

	TokenValidation string `envconfig:"TOKEN_VALIDATION" default:"auto"`
	JWKSURL         string `envconfig:"JWKS_URL"`
	JWKSMinRefresh  string `envconfig:"JWKS_MIN_REFRESH" default:"30s"`
	JWTAlgorithms   string `envconfig:"JWT_ALGORITHMS" default:"RS256 PS256 ES256 EdDSA"`
	JWTRequireATTyp string `envconfig:"JWT_REQUIRE_AT_TYP" default:"true"`
	JWTIntrospect   string `envconfig:"JWT_INTROSPECT" default:"false"`

	AcceptedAudiences    string `envconfig:"ACCEPTED_AUDIENCES"`
	AllowMissingAudience string `envconfig:"ALLOW_MISSING_AUDIENCE" default:"false"`
	ClockSkew            string `envconfig:"CLOCK_SKEW" default:"30s"`

	CacheMaxTTL      string `envconfig:"CACHE_MAX_TTL" default:"60s"`
	CacheNegativeTTL string `envconfig:"CACHE_NEGATIVE_TTL" default:"5s"`
	CacheMaxBytes    string `envconfig:"CACHE_MAX_BYTES" default:"67108864"`
	StaleIfError     string `envconfig:"STALE_IF_ERROR" default:"0s"`

	IntrospectionMaxConcurrency    string `envconfig:"INTROSPECTION_MAX_CONCURRENCY" default:"64"`
	IntrospectionClientConcurrency string `envconfig:"INTROSPECTION_CLIENT_CONCURRENCY" default:"32"`
	ClientRefusalRate              string `envconfig:"CLIENT_REFUSAL_RATE" default:"10"`
	ClientRefusalBurst             string `envconfig:"CLIENT_REFUSAL_BURST" default:"100"`
	ClientIPHeader                 string `envconfig:"CLIENT_IP_HEADER"`

	Stateless      string `envconfig:"MCP_STATELESS" default:"true"`
	JSONResponse   string `envconfig:"MCP_JSON_RESPONSE" default:"true"`
	SessionTimeout string `envconfig:"MCP_SESSION_TIMEOUT" default:"30m"`
	ScopeChallenge string `envconfig:"SCOPE_CHALLENGE" default:"http"`
	AllowedOrigins string `envconfig:"ALLOWED_ORIGINS"`
	MaxBodyBytes   string `envconfig:"MAX_BODY_BYTES" default:"1048576"`
	MaxSessions    string `envconfig:"MCP_MAX_SESSIONS" default:"1000"`
	MaxStreams     string `envconfig:"MCP_MAX_STREAMS" default:"1000"`
	MaxUserSess    string `envconfig:"MCP_MAX_SESSIONS_PER_USER" default:"20"`
	MaxUserStreams string `envconfig:"MCP_MAX_STREAMS_PER_USER" default:"20"`
	MetricsPort    string `envconfig:"METRICS_PORT"`

	ShutdownTimeout string `envconfig:"SHUTDOWN_TIMEOUT" default:"10s"`
	LogLevel        string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat       string `envconfig:"LOG_FORMAT" default:"auto"`

	DevAuthAllowPublic string `envconfig:"DEV_AUTH_ALLOW_PUBLIC" default:"false"`
	DevAuthTokenTTL    string `envconfig:"DEV_AUTH_TOKEN_TTL" default:"10m"`

	SharedEnv  // config_shared.go
	TracingEnv // config_tracing.go
}

// config is the validated configuration.
type config struct {
	Port int
	Host string

	// ResourceURL is empty until the listener is bound when MCP_RESOURCE_URL
	// is unset; see resolveResource.
	ResourceURL           string
	ResourceName          string
	ResourceDocumentation string
	ScopesSupported       []string

	// Policy is the declared tool policy (POLICY or POLICY_FILE), or the
	// built-in tools' own; PolicySource says which, for logs and the doctor.
	Policy       *scopes.Policy
	PolicySource string
	ToolsList    string

	// UpstreamURL set: proxy mode, in front of that MCP server, with no
	// tools of the gateway's own.
	UpstreamURL           string
	UpstreamAllowHTTP     bool
	UpstreamAuthorization string // a secret: never logged, never in an error
	UpstreamTimeout       time.Duration

	DevMode                 bool
	IssuerURL               string
	IntrospectionURL        string
	IntrospectionClientID   string
	IntrospectionSecret     string
	IntrospectionAuthMethod string
	IntrospectionTimeout    time.Duration

	TokenValidation introspect.TokenValidation
	JWKSURL         string
	JWKSMinRefresh  time.Duration
	JWTAlgorithms   []string
	JWTRequireATTyp bool
	JWTIntrospect   bool

	AcceptedAudiences    []string
	AllowMissingAudience bool
	ClockSkew            time.Duration

	CacheMaxTTL      time.Duration
	CacheNegativeTTL time.Duration
	CacheMaxBytes    int64
	StaleIfError     time.Duration

	IntrospectionMaxConcurrency    int
	IntrospectionClientConcurrency int     // unknown tokens in flight per client address
	ClientRefusalRate              float64 // refused tokens per second per client address; 0 = no limit
	ClientRefusalBurst             int
	ClientIPHeader                 string

	Stateless      bool
	JSONResponse   bool
	SessionTimeout time.Duration
	ScopeChallenge string
	AllowedOrigins []string
	MaxBodyBytes   int64
	MaxSessions    int
	MaxStreams     int
	MaxUserSess    int
	MaxUserStreams int
	MetricsPort    int // 0: /metrics on the main port

	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string

	DevAuthAllowPublic bool
	DevAuthTokenTTL    time.Duration

	sharedConfig // config_shared.go

	// Tracing is the OTEL_* configuration (config_tracing.go); off
	// (Enabled false) unless an endpoint is set.
	Tracing tracing.Config
}

// configError lists every configuration problem; main exits with status 2.
// reported says the problems were already printed (by the doctor), so main
// does not print them twice.
type configError struct {
	problems []string
	reported bool
}

func (e *configError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.problems, "\n  - ")
}

// LookupEnv reads one environment variable, as os.LookupEnv does. The
// gateway reads its environment only through one, so that tests (and
// embedders) can hand it any environment without touching the process's.
type LookupEnv func(name string) (value string, ok bool)

// envVar is one variable of the contract.
type envVar struct {
	Field, Name, Default string
}

// envVars lists the configuration contract, as envconfig reads env's struct
// tags: the one list of variables, which .env.example and the README are
// checked against.
func envVars() []envVar {
	var b strings.Builder
	tmpl := template.Must(template.New("vars").Parse(`{{range .}}{{.Name}}	{{.Key}}	{{.Tags.Get "default"}}
{{end}}`))
	if err := envconfig.Usaget("", &env{}, &b, tmpl); err != nil {
		panic("env's struct tags are invalid: " + err.Error()) // a programming error, caught by every test
	}
	var out []envVar
	for line := range strings.Lines(b.String()) {
		f := strings.SplitN(strings.TrimSuffix(line, "\n"), "\t", 3)
		out = append(out, envVar{Field: f[0], Name: f[1], Default: f[2]})
	}
	return out
}

// readEnv fills an env from lookup: a variable that is set is taken as it
// is (even if empty, as envconfig does), one that is not gets its default.
func readEnv(lookup LookupEnv) env {
	var e env
	rv := reflect.ValueOf(&e).Elem()
	for _, v := range envVars() {
		val, ok := lookup(v.Name)
		if !ok {
			val = v.Default
		}
		rv.FieldByName(v.Field).SetString(val)
	}
	return e
}

// retiredVars are variables the gateway no longer reads, with what
// replaced them. Setting one is a configuration error rather than being
// ignored: its meaning changed, and the operator who set it meant
// something by it.
var retiredVars = map[string]string{
	"INTROSPECTION_CLIENT_RATE":  "the per-address limit now counts only tokens the authorization server refuses: set CLIENT_REFUSAL_RATE (and INTROSPECTION_CLIENT_CONCURRENCY for unknown tokens in flight) instead",
	"INTROSPECTION_CLIENT_BURST": "the per-address limit now counts only tokens the authorization server refuses: set CLIENT_REFUSAL_BURST instead",
}

// loadConfig reads and validates the configuration.
func loadConfig(lookup LookupEnv) (*config, error) {
	c, err := readEnv(lookup).validate()
	var retired []string
	for _, name := range slices.Sorted(maps.Keys(retiredVars)) {
		if _, set := lookup(name); set {
			retired = append(retired, name+" is no longer read: "+retiredVars[name])
		}
	}
	if len(retired) == 0 {
		return c, err
	}
	if ce, ok := err.(*configError); ok {
		retired = append(ce.problems, retired...)
	}
	return nil, &configError{problems: retired}
}

type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p *problems) duration(name, v string, min time.Duration) time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		p.addf("%s=%q is not a duration (examples: 500ms, 5s, 2m)", name, v)
		return 0
	}
	if d < min {
		p.addf("%s=%s must be at least %s", name, d, min)
	}
	return d
}

func (p *problems) float(name, v string, min, max float64) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		p.addf("%s=%q is not a number", name, v)
		return 0
	}
	if f < min || f > max {
		p.addf("%s=%v must be between %v and %v", name, f, min, max)
	}
	return f
}

func (p *problems) boolean(name, v string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.addf("%s=%q is not a boolean (true or false)", name, v)
	}
	return b
}

func (p *problems) integer(name, v string, min, max int64) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		p.addf("%s=%q is not a whole number", name, v)
		return 0
	}
	if n < min || n > max {
		p.addf("%s=%d must be between %d and %d", name, n, min, max)
	}
	return n
}

// url checks a URL the gateway sends secrets or tokens to, or that names a
// server (urlrule: https, or http only on loopback). identifier adds "no
// query" (an issuer, RFC 8414 §2; the resource, RFC 9728).
func (p *problems) url(name, v string, identifier bool) {
	check := urlrule.Server
	if identifier {
		check = urlrule.Identifier
	}
	if _, err := check(v); err != nil {
		p.addf("%s=%v", name, err)
	}
}

// Where the policy came from when none is declared (config.PolicySource).
const (
	policyBuiltIn = "built-in"
	// policyNone: proxy mode without POLICY or POLICY_FILE; every tool of
	// the upstream needs only a valid token.
	policyNone = "none (UPSTREAM_URL without POLICY: every tool needs only a valid token)"
)

// policy reads the declared tool policy from POLICY (inline YAML or JSON)
// or POLICY_FILE (a path), or returns the default: the built-in tools'
// policy, or in proxy mode scopes.AnyValidToken (the upstream's tools are
// none of the gateway's business until a policy says so). Every problem
// of a malformed policy is listed, with its line.
func (p *problems) policy(inline, file string, proxied bool) (*scopes.Policy, string) {
	var doc []byte
	var name string
	switch {
	case inline != "" && file != "":
		p.addf("POLICY and POLICY_FILE are both set: set one")
		return tools.Policy(), ""
	case inline != "":
		doc, name = []byte(inline), "POLICY"
	case file != "":
		name = "POLICY_FILE=" + file
		f, err := os.Open(file)
		if err != nil {
			p.addf("POLICY_FILE=%q cannot be read: %v", file, err)
			return tools.Policy(), ""
		}
		defer f.Close()
		doc, err = io.ReadAll(io.LimitReader(f, scopes.MaxPolicyBytes+1))
		if err != nil {
			p.addf("POLICY_FILE=%q cannot be read: %v", file, err)
			return tools.Policy(), ""
		}
	case proxied:
		return scopes.AnyValidToken(), policyNone
	default:
		return tools.Policy(), policyBuiltIn
	}
	policy, err := scopes.ParsePolicy(doc)
	var pe *scopes.PolicyError
	switch {
	case errors.As(err, &pe):
		for _, prob := range pe.Problems {
			p.addf("%s: %s", name, prob)
		}
		return tools.Policy(), ""
	case err != nil:
		p.addf("%s: %v", name, err)
		return tools.Policy(), ""
	}
	return policy, name
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func (e env) validate() (*config, error) {
	var p problems
	c := &config{
		Host:                    strings.TrimSpace(e.Host),
		ResourceURL:             strings.TrimSpace(e.ResourceURL),
		ResourceName:            strings.TrimSpace(e.ResourceName),
		ResourceDocumentation:   strings.TrimSpace(e.ResourceDocumentation),
		IssuerURL:               strings.TrimSpace(e.IssuerURL),
		IntrospectionURL:        strings.TrimSpace(e.IntrospectionURL),
		IntrospectionClientID:   e.IntrospectionClientID,
		IntrospectionSecret:     e.IntrospectionSecret,
		IntrospectionAuthMethod: strings.TrimSpace(e.IntrospectionAuthMethod),
		TokenValidation:         introspect.TokenValidation(strings.ToLower(strings.TrimSpace(e.TokenValidation))),
		JWKSURL:                 strings.TrimSpace(e.JWKSURL),
		JWTAlgorithms:           splitList(e.JWTAlgorithms),
		AcceptedAudiences:       splitList(e.AcceptedAudiences),
		AllowedOrigins:          splitList(e.AllowedOrigins),
		ScopeChallenge:          strings.ToLower(strings.TrimSpace(e.ScopeChallenge)),
		LogLevel:                strings.ToLower(strings.TrimSpace(e.LogLevel)),
		LogFormat:               strings.ToLower(strings.TrimSpace(e.LogFormat)),
	}
	c.Port = int(p.integer("PORT", e.Port, 0, 65535))
	c.IntrospectionTimeout = p.duration("INTROSPECTION_TIMEOUT", e.IntrospectionTimeout, 100*time.Millisecond)
	c.ClockSkew = p.duration("CLOCK_SKEW", e.ClockSkew, 0)
	c.CacheMaxTTL = p.duration("CACHE_MAX_TTL", e.CacheMaxTTL, 0)
	c.CacheNegativeTTL = p.duration("CACHE_NEGATIVE_TTL", e.CacheNegativeTTL, 0)
	c.CacheMaxBytes = p.integer("CACHE_MAX_BYTES", e.CacheMaxBytes, 1<<20, 1<<40)
	c.AllowMissingAudience = p.boolean("ALLOW_MISSING_AUDIENCE", e.AllowMissingAudience)
	c.Stateless = p.boolean("MCP_STATELESS", e.Stateless)
	c.JSONResponse = p.boolean("MCP_JSON_RESPONSE", e.JSONResponse)
	c.SessionTimeout = p.duration("MCP_SESSION_TIMEOUT", e.SessionTimeout, 0)
	c.MaxBodyBytes = p.integer("MAX_BODY_BYTES", e.MaxBodyBytes, 1<<10, 64<<20)
	c.MaxSessions = int(p.integer("MCP_MAX_SESSIONS", e.MaxSessions, 1, 1_000_000))
	c.MaxStreams = int(p.integer("MCP_MAX_STREAMS", e.MaxStreams, 1, 1_000_000))
	c.MaxUserSess = int(p.integer("MCP_MAX_SESSIONS_PER_USER", e.MaxUserSess, 1, 1_000_000))
	c.MaxUserStreams = int(p.integer("MCP_MAX_STREAMS_PER_USER", e.MaxUserStreams, 1, 1_000_000))
	if strings.TrimSpace(e.MetricsPort) != "" {
		c.MetricsPort = int(p.integer("METRICS_PORT", e.MetricsPort, 1, 65535))
	}
	c.StaleIfError = p.duration("STALE_IF_ERROR", e.StaleIfError, 0)
	c.IntrospectionMaxConcurrency = int(p.integer("INTROSPECTION_MAX_CONCURRENCY", e.IntrospectionMaxConcurrency, 1, 10_000))
	c.IntrospectionClientConcurrency = int(p.integer("INTROSPECTION_CLIENT_CONCURRENCY", e.IntrospectionClientConcurrency, 1, 10_000))
	c.ClientRefusalRate = p.float("CLIENT_REFUSAL_RATE", e.ClientRefusalRate, 0, 1e6)
	c.ClientRefusalBurst = int(p.integer("CLIENT_REFUSAL_BURST", e.ClientRefusalBurst, 1, 1_000_000))
	c.ClientIPHeader = strings.TrimSpace(e.ClientIPHeader)
	if c.ClientIPHeader != "" && !httpguts.ValidHeaderFieldName(c.ClientIPHeader) {
		p.addf("CLIENT_IP_HEADER=%q is not an HTTP header name", e.ClientIPHeader)
	}
	c.ShutdownTimeout = p.duration("SHUTDOWN_TIMEOUT", e.ShutdownTimeout, 0)
	c.DevAuthAllowPublic = p.boolean("DEV_AUTH_ALLOW_PUBLIC", e.DevAuthAllowPublic)
	c.DevAuthTokenTTL = p.duration("DEV_AUTH_TOKEN_TTL", e.DevAuthTokenTTL, time.Second)
	c.JWKSMinRefresh = p.duration("JWKS_MIN_REFRESH", e.JWKSMinRefresh, time.Second)
	c.JWTRequireATTyp = p.boolean("JWT_REQUIRE_AT_TYP", e.JWTRequireATTyp)
	c.JWTIntrospect = p.boolean("JWT_INTROSPECT", e.JWTIntrospect)
	switch c.TokenValidation {
	case introspect.ValidationAuto, introspect.ValidationJWT, introspect.ValidationIntrospection:
	default:
		p.addf("TOKEN_VALIDATION=%q must be auto, jwt or introspection", e.TokenValidation)
	}
	if _, err := jwtaccess.ParseAlgorithms(c.JWTAlgorithms); err != nil {
		p.addf("JWT_ALGORITHMS=%q: %v", e.JWTAlgorithms, strings.TrimPrefix(err.Error(), "jwtaccess: "))
	}

	c.UpstreamURL = strings.TrimSpace(e.UpstreamURL)
	c.UpstreamAllowHTTP = p.boolean("UPSTREAM_ALLOW_HTTP", e.UpstreamAllowHTTP)
	c.UpstreamAuthorization = e.UpstreamAuthorization
	c.UpstreamTimeout = p.duration("UPSTREAM_TIMEOUT", e.UpstreamTimeout, 100*time.Millisecond)
	if c.UpstreamURL != "" {
		pc := c.proxyConfig()
		pc.Timeout = max(pc.Timeout, time.Millisecond) // reported above if too short
		if err := pc.Validate(); err != nil {
			for _, prob := range splitJoined(err) {
				p.addf("%s", strings.TrimPrefix(prob.Error(), "proxy: "))
			}
		}
	} else {
		// Settings that would be ignored are refused (as in development
		// mode): whoever set them meant something by them.
		if c.UpstreamAuthorization != "" {
			p.addf("UPSTREAM_AUTHORIZATION is set but UPSTREAM_URL is not: it is the credential the gateway sends to an upstream MCP server in proxy mode")
		}
		if c.UpstreamAllowHTTP {
			p.addf("UPSTREAM_ALLOW_HTTP=true is set but UPSTREAM_URL is not")
		}
	}
	c.Policy, c.PolicySource = p.policy(e.Policy, e.PolicyFile, c.UpstreamURL != "")
	if c.ResourceName == "" {
		c.ResourceName = "Calculator"
		if c.UpstreamURL != "" {
			c.ResourceName = "MCP server"
		}
	}
	if strings.TrimSpace(e.ScopesSupported) == "" {
		// The scopes the policy needs (RFC 9728 scopes_supported).
		c.ScopesSupported = c.Policy.Scopes()
	} else if sc, err := scopes.Parse(e.ScopesSupported); err != nil || len(sc) == 0 {
		p.addf("SCOPES_SUPPORTED=%q must be a space-separated list of OAuth scopes", e.ScopesSupported)
	} else {
		c.ScopesSupported = sc
	}
	switch c.ToolsList = strings.ToLower(strings.TrimSpace(e.ToolsList)); c.ToolsList {
	case gateway.ToolsListAll, gateway.ToolsListAllowed:
	default:
		p.addf("TOOLS_LIST=%q must be all or allowed", e.ToolsList)
	}
	if c.ResourceURL != "" {
		p.url("MCP_RESOURCE_URL", c.ResourceURL, true)
	}
	if c.ResourceDocumentation != "" {
		if u, err := url.Parse(c.ResourceDocumentation); err != nil || !u.IsAbs() {
			p.addf("RESOURCE_DOCUMENTATION=%q is not an absolute URL", c.ResourceDocumentation)
		}
	}
	for _, a := range c.AcceptedAudiences {
		if strings.ContainsAny(a, "\"\\") {
			p.addf("ACCEPTED_AUDIENCES entry %q contains a quote or backslash", a)
		}
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "http" && u.Scheme != "https") {
			p.addf("ALLOWED_ORIGINS entry %q is not an origin such as https://app.example.com", o)
		}
	}
	switch c.IntrospectionAuthMethod {
	case "client_secret_basic", "client_secret_post":
	default:
		p.addf("INTROSPECTION_AUTH_METHOD=%q must be client_secret_basic or client_secret_post", e.IntrospectionAuthMethod)
	}
	switch c.ScopeChallenge {
	case "http", "tool":
	default:
		p.addf("SCOPE_CHALLENGE=%q must be http or tool", e.ScopeChallenge)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.addf("LOG_LEVEL=%q must be debug, info, warn or error", e.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		p.addf("LOG_FORMAT=%q must be auto, json or text", e.LogFormat)
	}

	c.DevMode = c.IssuerURL == ""
	hasCreds := c.IntrospectionClientID != "" || c.IntrospectionSecret != ""
	if c.DevMode {
		// Development mode: the embedded authorization server issues and
		// introspects the tokens; external settings would be ignored, which
		// is worse than refusing them.
		for _, kv := range [][2]string{
			{"INTROSPECTION_URL", c.IntrospectionURL},
			{"INTROSPECTION_CLIENT_ID", c.IntrospectionClientID},
			{"INTROSPECTION_CLIENT_SECRET", c.IntrospectionSecret},
			{"JWKS_URL", c.JWKSURL},
		} {
			if name, v := kv[0], kv[1]; v != "" {
				p.addf("%s is set but AUTH_ISSUER_URL is not: set AUTH_ISSUER_URL to use an external authorization server, or unset %s for development mode", name, name)
			}
		}
		if c.TokenValidation == introspect.ValidationJWT || c.JWTIntrospect {
			p.addf("TOKEN_VALIDATION=jwt and JWT_INTROSPECT=true need AUTH_ISSUER_URL: the development authorization server issues opaque tokens")
		}
		if c.Host == "" {
			c.Host = "localhost"
		}
		if !loopback.Host(c.Host) && !c.DevAuthAllowPublic {
			p.addf("HOST=%q is not a loopback address: development mode (no AUTH_ISSUER_URL) has no real login and listens on loopback only; set DEV_AUTH_ALLOW_PUBLIC=true to expose it anyway (for example through a tunnel)", c.Host)
		}
		if u, err := url.Parse(c.ResourceURL); c.ResourceURL != "" && err == nil && !loopback.Host(u.Hostname()) && !c.DevAuthAllowPublic {
			p.addf("MCP_RESOURCE_URL=%q is not on a loopback host: development mode (no AUTH_ISSUER_URL) has no real login and answers only requests addressed to localhost; set DEV_AUTH_ALLOW_PUBLIC=true to serve it through a tunnel anyway", c.ResourceURL)
		}
	} else {
		p.url("AUTH_ISSUER_URL", c.IssuerURL, true)
		if c.IntrospectionURL != "" {
			p.url("INTROSPECTION_URL", c.IntrospectionURL, false)
		}
		if c.JWKSURL != "" {
			p.url("JWKS_URL", c.JWKSURL, false)
		}
		// Introspection credentials: needed wherever introspection is
		// used. AUTH_ISSUER_URL alone (TOKEN_VALIDATION=auto) means every
		// token must be a JWT verified with the issuer's jwks_uri.
		needCreds := ""
		switch {
		case c.TokenValidation == introspect.ValidationIntrospection:
			needCreds = "with TOKEN_VALIDATION=introspection"
		case c.JWTIntrospect:
			needCreds = "with JWT_INTROSPECT=true"
		case hasCreds:
			needCreds = "with the other one"
		}
		if needCreds != "" {
			if c.IntrospectionClientID == "" {
				p.addf("INTROSPECTION_CLIENT_ID is required %s: the gateway authenticates to the introspection endpoint with it", needCreds)
			}
			if c.IntrospectionSecret == "" {
				p.addf("INTROSPECTION_CLIENT_SECRET is required %s", needCreds)
			}
		}
		if c.TokenValidation == introspect.ValidationJWT && hasCreds && !c.JWTIntrospect {
			p.addf("INTROSPECTION_CLIENT_ID/INTROSPECTION_CLIENT_SECRET are set but TOKEN_VALIDATION=jwt never introspects: unset them, set TOKEN_VALIDATION=auto to introspect opaque tokens, or JWT_INTROSPECT=true to introspect JWTs too")
		}
		if c.TokenValidation == introspect.ValidationIntrospection && c.JWKSURL != "" {
			p.addf("JWKS_URL is set but TOKEN_VALIDATION=introspection never verifies JWTs locally: unset it or set TOKEN_VALIDATION=auto")
		}
		if c.TokenValidation == introspect.ValidationIntrospection && c.JWTIntrospect {
			p.addf("JWT_INTROSPECT=true applies to JWTs verified locally, which TOKEN_VALIDATION=introspection does not do: unset it")
		}
		if c.ResourceURL == "" && !loopback.Host(c.Host) && c.Host != "" {
			p.addf("MCP_RESOURCE_URL is required when HOST is not loopback: it is the public URL clients use and the audience tokens must carry")
		}
	}
	e.SharedEnv.validate(&p, c)

	e.TracingEnv.validate(&p, c)
	if len(p) > 0 {
		return nil, &configError{problems: p}
	}
	return c, nil
}

// resolveResource fills MCP_RESOURCE_URL's default from the bound address.
func (c *config) resolveResource(port int) {
	if c.ResourceURL == "" {
		c.ResourceURL = fmt.Sprintf("http://localhost:%d/mcp", port)
	}
}

// gatewayConfig is the gateway's configuration from the environment; the
// caller adds what is built at run time (verifier, policy, logger, mounts,
// metrics).
func (c *config) gatewayConfig() gateway.Config {
	return gateway.Config{
		Resource:              c.ResourceURL,
		AuthorizationServers:  []string{c.IssuerURL},
		ScopesSupported:       c.ScopesSupported,
		Policy:                c.Policy,
		ToolsList:             c.ToolsList,
		ResourceName:          c.ResourceName,
		ResourceDocumentation: c.ResourceDocumentation,
		AllowedOrigins:        c.AllowedOrigins,
		Stateless:             c.Stateless,
		JSONResponse:          c.JSONResponse,
		SessionTimeout:        c.SessionTimeout,
		ScopeChallenge:        c.ScopeChallenge,
		MaxBodyBytes:          c.MaxBodyBytes,
		ClockSkew:             c.ClockSkew,
		ServeMetrics:          c.MetricsPort == 0,
		MaxSessions:           c.MaxSessions,
		MaxStreams:            c.MaxStreams,
		MaxSessionsPerUser:    c.MaxUserSess,
		MaxStreamsPerUser:     c.MaxUserStreams,
		ClientIPHeader:        c.ClientIPHeader,
		// Development mode answers only requests addressed to a loopback
		// host unless the operator opened it (a tunnel).
		LoopbackOnly: c.DevMode && !c.DevAuthAllowPublic,
	}
}

// proxyConfig is proxy mode's configuration (UPSTREAM_URL set); the
// gateway adds the tools/list filter, the logger and the metrics.
func (c *config) proxyConfig() proxy.Config {
	return proxy.Config{
		Upstream:           c.UpstreamURL,
		AllowHTTP:          c.UpstreamAllowHTTP,
		Authorization:      c.UpstreamAuthorization,
		Timeout:            c.UpstreamTimeout,
		MaxSessions:        c.MaxSessions,
		MaxSessionsPerUser: c.MaxUserSess,
		MaxStreams:         c.MaxStreams,
		MaxStreamsPerUser:  c.MaxUserStreams,
		SessionIdleTimeout: c.SessionTimeout,
		MaxBodyBytes:       c.MaxBodyBytes,
	}
}

// splitJoined returns the errors an errors.Join made, or err alone.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// introspectConfig is the token verifier's configuration.
func (c *config) introspectConfig() introspect.Config {
	return introspect.Config{
		Endpoint:             c.IntrospectionURL,
		Issuer:               c.IssuerURL,
		ClientID:             c.IntrospectionClientID,
		ClientSecret:         c.IntrospectionSecret,
		AuthMethod:           c.IntrospectionAuthMethod,
		Audiences:            append([]string{c.ResourceURL}, c.AcceptedAudiences...),
		AllowMissingAudience: c.AllowMissingAudience,
		ClockSkew:            c.ClockSkew,
		Timeout:              c.IntrospectionTimeout,
		CacheMaxTTL:          c.CacheMaxTTL,
		CacheNegativeTTL:     c.CacheNegativeTTL,
		CacheMaxBytes:        c.CacheMaxBytes,
		StaleIfError:         c.StaleIfError,
		MaxConcurrency:       c.IntrospectionMaxConcurrency,
		ClientConcurrency:    c.IntrospectionClientConcurrency,
		RefusalRate:          rate.Limit(c.ClientRefusalRate),
		RefusalBurst:         c.ClientRefusalBurst,
		Validation:           c.TokenValidation,
		JWKSURL:              c.JWKSURL,
		JWKSMinRefresh:       c.JWKSMinRefresh,
		JWTAlgorithms:        c.JWTAlgorithms,
		JWTAllowGenericType:  !c.JWTRequireATTyp,
		JWTIntrospect:        c.JWTIntrospect,
	}
}
