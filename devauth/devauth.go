// Package devauth is the embedded development authorization server that the
// gateway runs when no external issuer is configured.
//
// It lets a newcomer run the gateway with no configuration and complete a
// real, spec-following OAuth flow from any MCP client: RFC 8414 metadata,
// RFC 7591 dynamic client registration (public clients only), the
// authorization code grant with mandatory PKCE S256 (RFC 7636), RFC 8707
// resource indicators, RFC 9207 "iss" on the authorization response, refresh
// token rotation with reuse detection, RFC 7009 revocation and RFC 7662
// introspection. The gateway talks to it only over HTTP, exactly as it talks
// to an external authorization server.
//
// Clients may also skip registration and use the URL of a Client ID
// Metadata Document as their client_id (draft-ietf-oauth-client-id-
// metadata-document, MCP authorization 2025-11-25): the server fetches it
// with strict limits (see cimd.go), caches it, and shows the client's name
// and the URL's host on the consent page.
//
// There are no passwords: whoever reaches the consent page chooses a user
// name. The page prefills the login_hint, or else the name last approved
// for the same client_id, so that a step-up consent is one click; since
// anyone may type any name, remembering one reveals nothing a visitor could
// not choose anyway. It is for development only. All state lives in
// bounded in-memory maps, tokens are opaque random strings stored only by
// their SHA-256 digest, and neither tokens nor codes are ever logged.
//
// Every refusal is logged at info level (warn for what may be an attack)
// with the endpoint, the OAuth error code and the reason, and the reason is
// the error_description the client receives: a developer sees why on both
// sides.
package devauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/internal/lru"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// Config configures a Server. Only Issuer and Resource are required.
type Config struct {
	// Issuer is the absolute URL of this authorization server, with a path
	// and no trailing slash, e.g. "http://localhost:8080/dev-auth".
	Issuer string
	// Resource is the gateway's MCP_RESOURCE_URL. It is the only RFC 8707
	// resource accepted, and the "aud" of every token.
	Resource string
	// Scopes are the scopes offered on consent and listed in the metadata
	// (the gateway passes its tool policy's). A request for a parent scope
	// such as "op" that is not itself offered asks for every offered scope
	// it covers. Required; an empty, non-nil list offers none: consent then
	// only says who the user is, and tokens carry no scope (a proxy whose
	// policy needs none).
	Scopes []string
	// Describe says, for people, what a scope allows, on the consent page
	// (the gateway passes its tool policy's Describe). nil, or "", shows
	// the scope itself.
	Describe func(scope string) string

	// IntrospectionClientID and IntrospectionClientSecret are the
	// credentials the introspection endpoint requires. New generates random
	// ones when they are empty; read them back with IntrospectionCredentials.
	IntrospectionClientID, IntrospectionClientSecret string

	AccessTokenTTL  time.Duration // default 10m
	RefreshTokenTTL time.Duration // default 24h
	CodeTTL         time.Duration // default 1m
	ConsentTTL      time.Duration // how long a consent page stays valid; default 10m

	// MaxClients, MaxCodes and MaxTokens bound the in-memory state (default
	// 1000, 1000, 10000). When a map is full, its oldest entry is evicted:
	// the least recently used client, the oldest code or pending consent,
	// the oldest token.
	MaxClients, MaxCodes, MaxTokens int

	// RegistrationRate and RegistrationBurst limit client registrations per
	// remote address (IPv6 addresses are grouped by /64). Defaults: one
	// every 3 seconds, burst 20.
	RegistrationRate  rate.Limit
	RegistrationBurst int
	// ClientIP returns the address a request comes from, for the
	// registration rate limit. Default: the host of r.RemoteAddr. Set it
	// when the server runs behind a trusted proxy.
	ClientIP func(r *http.Request) string

	// ExampleArguments are the calculator arguments of the curl command on
	// the token page; default {"operation":"add","a":2,"b":3}.
	ExampleArguments string

	// AllowLoopbackClientIDs lets Client ID Metadata Documents be fetched
	// from loopback addresses, and accepts http:// client_id URLs on a
	// loopback host: for a client developed on this machine, and for
	// tests. The draft allows it only for a server that itself listens on
	// loopback (§6.5), so leave it off when the server is reachable from
	// elsewhere (DEV_AUTH_ALLOW_PUBLIC): a stranger could otherwise make
	// it send requests to services on this machine.
	AllowLoopbackClientIDs bool
	// ClientMetadataTimeout bounds one fetch of a Client ID Metadata
	// Document, connection and body included; default 5s.
	ClientMetadataTimeout time.Duration

	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
}

// TokenPageClientID is the client_id of tokens minted by MintToken and the
// token page.
const TokenPageClientID = "devauth-token-page"

const (
	maxBody          = 64 << 10
	maxLimiters      = 10000
	maxPageCSRF      = 1000
	pageCSRFTTL      = time.Hour
	defaultExampleJS = `{"operation":"add","a":2,"b":3}`
)

// Server is the development authorization server. Create it with New.
type Server struct {
	cfg       Config
	issuer    string // Config.Issuer
	path      string // the issuer's path, e.g. "/dev-auth"
	log       *slog.Logger
	now       func() time.Time
	handler   http.Handler
	offered   []string
	introID   string
	introSec  string
	clientIP  func(*http.Request) string
	exampleJS string

	mu       sync.Mutex
	clients  *lru.Map[string, *client]
	pending  *lru.Map[string, *pendingAuth]
	codes    *lru.Map[[32]byte, *authCode]
	tokens   *lru.Map[[32]byte, *tokenRecord]
	limiters *lru.Map[string, *rate.Limiter]
	pageCSRF *lru.Map[string, time.Time]
	// documents caches the clients of Client ID Metadata Documents, by
	// client_id URL (bounded by MaxClients).
	documents *lru.Map[string, *cachedClient]
	// lastUser remembers, per client_id, the user name last approved, to
	// prefill the consent page of the next authorization (a step-up, most
	// often). Bounded by MaxClients.
	lastUser *lru.Map[string, string]
	fetcher  *metadataFetcher
}

var issuerPathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

// New validates cfg, fills in defaults and returns a Server. All validation
// problems are reported together.
func New(cfg Config) (*Server, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("devauth: "+format, args...)) }

	iss, err := url.Parse(cfg.Issuer)
	switch {
	case cfg.Issuer == "":
		bad("Issuer is required")
	case err != nil:
		bad("Issuer: %v", err)
	case iss.Scheme != "http" && iss.Scheme != "https", iss.Host == "":
		bad("Issuer %q must be an absolute http or https URL", cfg.Issuer)
	case iss.RawQuery != "" || iss.Fragment != "" || iss.User != nil:
		bad("Issuer %q must not have a query, fragment or user info", cfg.Issuer)
	case !issuerPathRE.MatchString(iss.Path) || iss.RawPath != "":
		bad("Issuer %q must have a plain path such as /dev-auth and no trailing slash", cfg.Issuer)
	}
	res, err := url.Parse(cfg.Resource)
	switch {
	case cfg.Resource == "":
		bad("Resource is required")
	case err != nil:
		bad("Resource: %v", err)
	case res.Scheme != "http" && res.Scheme != "https", res.Host == "", res.Fragment != "":
		bad("Resource %q must be an absolute http or https URL without a fragment", cfg.Resource)
	}
	if cfg.Scopes == nil {
		bad("Scopes is required (an empty list offers none)")
	}
	for _, sc := range cfg.Scopes {
		if !scopes.ValidToken(sc) {
			bad("invalid scope %q", sc)
		}
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"AccessTokenTTL", &cfg.AccessTokenTTL, 10 * time.Minute},
		{"RefreshTokenTTL", &cfg.RefreshTokenTTL, 24 * time.Hour},
		{"CodeTTL", &cfg.CodeTTL, time.Minute},
		{"ConsentTTL", &cfg.ConsentTTL, 10 * time.Minute},
		{"ClientMetadataTimeout", &cfg.ClientMetadataTimeout, 5 * time.Second},
	}
	for _, d := range durations {
		if *d.d < 0 {
			bad("%s must not be negative", d.name)
		} else if *d.d == 0 {
			*d.d = d.def
		}
	}
	limits := []struct {
		name string
		n    *int
		def  int
	}{
		{"MaxClients", &cfg.MaxClients, 1000},
		{"MaxCodes", &cfg.MaxCodes, 1000},
		{"MaxTokens", &cfg.MaxTokens, 10000},
		{"RegistrationBurst", &cfg.RegistrationBurst, 20},
	}
	for _, l := range limits {
		if *l.n < 0 {
			bad("%s must not be negative", l.name)
		} else if *l.n == 0 {
			*l.n = l.def
		}
	}
	if cfg.RegistrationRate < 0 {
		bad("RegistrationRate must not be negative")
	} else if cfg.RegistrationRate == 0 {
		cfg.RegistrationRate = rate.Every(3 * time.Second)
	}
	if cfg.ExampleArguments == "" {
		cfg.ExampleArguments = defaultExampleJS
	} else if !json.Valid([]byte(cfg.ExampleArguments)) {
		bad("ExampleArguments must be JSON")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if cfg.IntrospectionClientID == "" {
		cfg.IntrospectionClientID = "devauth-introspect-" + randomString(8)
	}
	if cfg.IntrospectionClientSecret == "" {
		cfg.IntrospectionClientSecret = randomString(32)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	s := &Server{
		cfg:       cfg,
		issuer:    cfg.Issuer,
		path:      iss.Path,
		log:       cfg.Logger,
		now:       cfg.Now,
		offered:   slices.Clone(cfg.Scopes),
		introID:   cfg.IntrospectionClientID,
		introSec:  cfg.IntrospectionClientSecret,
		clientIP:  cfg.ClientIP,
		exampleJS: cfg.ExampleArguments,
		clients:   lru.New[string, *client](cfg.MaxClients),
		pending:   lru.New[string, *pendingAuth](cfg.MaxCodes),
		codes:     lru.New[[32]byte, *authCode](cfg.MaxCodes),
		tokens:    lru.New[[32]byte, *tokenRecord](cfg.MaxTokens),
		limiters:  lru.New[string, *rate.Limiter](maxLimiters),
		pageCSRF:  lru.New[string, time.Time](maxPageCSRF),
		documents: lru.New[string, *cachedClient](cfg.MaxClients),
		lastUser:  lru.New[string, string](cfg.MaxClients),
		fetcher:   newMetadataFetcher(cfg.AllowLoopbackClientIDs, cfg.ClientMetadataTimeout),
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves every path listed by Paths, as full request paths.
func (s *Server) Handler() http.Handler { return s.handler }

// Paths lists the paths the gateway must route to Handler: the issuer path
// with and without a trailing slash, the path-inserted RFC 8414 and OpenID
// discovery documents, and then every endpoint by its own path. The
// prefixes alone would route everything; the endpoints are listed so that
// a router that registers each path as a route (the gateway does) logs and
// counts every request under its real endpoint, such as /dev-auth/token,
// instead of one catch-all pattern.
func (s *Server) Paths() []string {
	paths := []string{
		s.path,
		s.path + "/",
		"/.well-known/oauth-authorization-server" + s.path,
		"/.well-known/openid-configuration" + s.path,
	}
	for _, e := range []string{
		"/authorize", "/consent", "/token", "/register", "/revoke", "/introspect",
		"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration",
	} {
		paths = append(paths, s.path+e)
	}
	return paths
}

// IntrospectionCredentials returns the client credentials the introspection
// endpoint accepts.
func (s *Server) IntrospectionCredentials() (id, secret string) { return s.introID, s.introSec }

// MetadataURL returns the RFC 8414 path-inserted metadata URL.
func (s *Server) MetadataURL() string {
	u, _ := url.Parse(s.issuer)
	u.Path = "/.well-known/oauth-authorization-server" + s.path
	return u.String()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.path
	meta := cors(s.handleMetadata)
	mux.Handle("/.well-known/oauth-authorization-server"+p, meta)
	mux.Handle("/.well-known/openid-configuration"+p, meta)
	mux.Handle(p+"/.well-known/oauth-authorization-server", meta)
	mux.Handle(p+"/.well-known/openid-configuration", meta)
	mux.Handle(p+"/register", cors(s.handleRegister))
	mux.HandleFunc(p+"/authorize", s.handleAuthorize)
	mux.HandleFunc(p+"/consent", s.handleConsent)
	mux.Handle(p+"/token", cors(s.handleToken))
	mux.Handle(p+"/revoke", cors(s.handleRevoke))
	mux.HandleFunc(p+"/introspect", s.handleIntrospect)
	mux.HandleFunc(p+"/{$}", s.handleTokenPage)
	mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"/", http.StatusFound)
	})
	return mux
}

// metadata is the RFC 8414 authorization server metadata document.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// ClientIDMetadataDocumentSupported: draft-ietf-oauth-client-id-
	// metadata-document §5, so that MCP clients (2025-11-25) use a URL
	// client_id instead of registering.
	ClientIDMetadataDocumentSupported bool   `json:"client_id_metadata_document_supported"`
	ServiceDocumentation              string `json:"service_documentation"`
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	if !s.allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, metadata{
		Issuer:                                     s.issuer,
		AuthorizationEndpoint:                      s.issuer + "/authorize",
		TokenEndpoint:                              s.issuer + "/token",
		RegistrationEndpoint:                       s.issuer + "/register",
		IntrospectionEndpoint:                      s.issuer + "/introspect",
		RevocationEndpoint:                         s.issuer + "/revoke",
		ScopesSupported:                            s.offered,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{grantAuthorizationCode, grantRefreshToken},
		CodeChallengeMethodsSupported:              []string{"S256"},
		TokenEndpointAuthMethodsSupported:          []string{"none"},
		RevocationEndpointAuthMethodsSupported:     []string{"none"},
		IntrospectionEndpointAuthMethodsSupported:  []string{"client_secret_basic", "client_secret_post"},
		AuthorizationResponseIssParameterSupported: true,
		ClientIDMetadataDocumentSupported:          true,
		ServiceDocumentation:                       s.issuer + "/",
	})
}

// cors opens an endpoint to browser clients on other origins (the MCP
// Inspector, for one) and answers CORS preflight requests. No credentials
// are involved, so "*" is safe.
func cors(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
		if r.Method == http.MethodOptions {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, MCP-Protocol-Version")
			hd.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	})
}

func (s *Server) allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	allow := strings.Join(methods, ", ")
	w.Header().Set("Allow", allow)
	s.refuse(w, r, refused(http.StatusMethodNotAllowed, "invalid_request", "method "+quoted(r.Method)+" is not allowed here; use "+allow))
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeOAuthError writes an RFC 6749 §5.2 error response.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	noStore(w)
	writeJSON(w, status, struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
	}{code, description})
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// parseForm bounds the body and parses an application/x-www-form-urlencoded
// POST body. Parameters in the query string are not consulted.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.refuse(w, r, requestError("the request body is not a valid application/x-www-form-urlencoded form (or is larger than 64 KiB)"))
		return nil, false
	}
	return r.PostForm, true
}

// repeated returns the first of keys that occurs more than once in v: RFC
// 6749 §3.1 forbids repeating request parameters.
func repeated(v url.Values, keys ...string) string {
	for _, k := range keys {
		if len(v[k]) > 1 {
			return k
		}
	}
	return ""
}

// randomString returns n random bytes, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newSecret returns an opaque 256-bit token or code.
func newSecret() string { return randomString(32) }

func digest(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// remoteHost is the default Config.ClientIP.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
