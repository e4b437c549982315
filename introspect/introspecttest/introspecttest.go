// Package introspecttest is a fake OAuth 2.0 authorization server for
// tests, in the spirit of go-oidc's oidctest: it serves RFC 8414 and OpenID
// Connect discovery documents and an RFC 7662 introspection endpoint backed
// by an in-memory token table.
package introspecttest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Default client credentials the server accepts.
const (
	DefaultClientID     = "gateway"
	DefaultClientSecret = "gateway-secret"
)

// Server is a fake authorization server. All methods are safe for
// concurrent use.
type Server struct {
	// URL is the issuer identifier (the httptest URL plus any issuer path).
	URL string
	// ClientID and ClientSecret are the credentials the introspection
	// endpoint requires (client_secret_basic or client_secret_post).
	ClientID, ClientSecret string

	srv          *httptest.Server
	issuerPath   string
	noOAuthMeta  bool
	metadataHook func(map[string]any)

	mu      sync.Mutex
	tokens  map[string]map[string]any
	latency time.Duration
	failure func(w http.ResponseWriter, r *http.Request) bool

	calls          atomic.Int64
	discoveryCalls atomic.Int64
}

// Option configures a Server.
type Option func(*Server)

// WithClientCredentials sets the client id and secret the introspection
// endpoint accepts.
func WithClientCredentials(id, secret string) Option {
	return func(s *Server) { s.ClientID, s.ClientSecret = id, secret }
}

// WithIssuerPath gives the issuer a path ("/tenant"), to exercise
// path-inserted discovery.
func WithIssuerPath(p string) Option {
	return func(s *Server) { s.issuerPath = "/" + strings.Trim(p, "/") }
}

// WithoutOAuthMetadata stops serving RFC 8414
// /.well-known/oauth-authorization-server, so that clients must fall back to
// OpenID Connect discovery.
func WithoutOAuthMetadata() Option { return func(s *Server) { s.noOAuthMeta = true } }

// WithMetadata lets a test edit the metadata document before it is served
// (for example to set a wrong "issuer").
func WithMetadata(f func(md map[string]any)) Option { return func(s *Server) { s.metadataHook = f } }

// New starts a fake authorization server on 127.0.0.1; it is closed by
// tb.Cleanup.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("introspecttest: listen: %v", err)
	}
	// URL is set before the server starts: handlers read it, and a request
	// from another process gives the race detector no ordering to see.
	s := NewHandler("http://"+l.Addr().String(), opts...)
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: s}}
	s.srv.Start()
	tb.Cleanup(s.srv.Close)
	return s
}

// NewHandler returns the fake authorization server as an http.Handler, to
// mount on a server of your own whose URL is origin (scheme://host:port, no
// path; WithIssuerPath adds one). Its endpoints are at the paths New's
// server uses: the issuer's metadata locations and issuer + "/introspect".
// Client does not work on a Server made this way.
func NewHandler(origin string, opts ...Option) *Server {
	s := &Server{
		ClientID:     DefaultClientID,
		ClientSecret: DefaultClientSecret,
		tokens:       make(map[string]map[string]any),
	}
	for _, o := range opts {
		o(s)
	}
	s.URL = strings.TrimSuffix(origin, "/") + s.issuerPath
	return s
}

// IntrospectionURL is the introspection endpoint: URL + "/introspect".
func (s *Server) IntrospectionURL() string { return s.URL + "/introspect" }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AddToken registers token with the claims to return for it. "active" is
// set to true unless claims has its own "active".
func (s *Server) AddToken(token string, claims map[string]any) {
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	if _, ok := c["active"]; !ok {
		c["active"] = true
	}
	s.mu.Lock()
	s.tokens[token] = c
	s.mu.Unlock()
}

// Issue mints a random opaque token (32 random bytes, base64url) with the
// standard claims iss, sub, aud (omitted when empty), scope, exp, iat,
// client_id "test-client" and token_type "Bearer", and returns it.
func (s *Server) Issue(sub string, scopes []string, aud string, ttl time.Duration) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	claims := map[string]any{
		"iss":        s.URL,
		"sub":        sub,
		"scope":      strings.Join(scopes, " "),
		"exp":        now.Add(ttl).Unix(),
		"iat":        now.Unix(),
		"client_id":  "test-client",
		"token_type": "Bearer",
	}
	if aud != "" {
		claims["aud"] = aud
	}
	s.AddToken(tok, claims)
	return tok
}

// Revoke forgets token: it is inactive from now on.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	delete(s.tokens, token)
	s.mu.Unlock()
}

// Calls is the number of introspection requests received (including
// rejected and failure-injected ones).
func (s *Server) Calls() int64 { return s.calls.Load() }

// DiscoveryCalls is the number of metadata requests received.
func (s *Server) DiscoveryCalls() int64 { return s.discoveryCalls.Load() }

// SetLatency delays every introspection answer by d (cut short if the
// client goes away).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetFailure installs a hook run on every introspection request before
// normal handling; if it returns true it has written the response. nil
// clears it.
func (s *Server) SetFailure(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.failure = f
	s.mu.Unlock()
}

// ServeHTTP serves the metadata and introspection endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == s.issuerPath+"/introspect":
		s.introspect(w, r)
	case !s.noOAuthMeta && p == "/.well-known/oauth-authorization-server"+s.issuerPath,
		p == "/.well-known/openid-configuration"+s.issuerPath,
		p == s.issuerPath+"/.well-known/openid-configuration":
		s.metadata(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	s.discoveryCalls.Add(1)
	md := map[string]any{
		"issuer":                 s.URL,
		"introspection_endpoint": s.IntrospectionURL(),
		"token_endpoint":         s.URL + "/token",
		"authorization_endpoint": s.URL + "/authorize",
		"revocation_endpoint":    s.URL + "/revoke",
		"scopes_supported":       []string{"op:add", "op:sub", "op:mult", "op:div"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	}
	if s.metadataHook != nil {
		s.metadataHook(md)
	}
	writeJSON(w, http.StatusOK, md)
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	// Read the body first: only then does net/http watch the connection and
	// cancel r.Context() when the client gives up, which ends the latency
	// wait below instead of holding the server open.
	formErr := r.ParseForm()
	s.mu.Lock()
	latency, failure := s.latency, s.failure
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if failure != nil && failure(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "invalid_request"})
		return
	}
	if formErr != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	if !s.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	s.mu.Lock()
	claims, ok := s.tokens[token]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, claims)
}

// authenticated checks client_secret_basic (RFC 6749 §2.3.1: id and secret
// form-urlencoded before base64) or client_secret_post, but not both.
func (s *Server) authenticated(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	_, postID := r.PostForm["client_id"]
	if basic && postID {
		return false // RFC 6749 §2.3: one method only
	}
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == s.ClientID && secret == s.ClientSecret
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
