package devauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/internal/clientip"
	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"

	maxRedirectURIs   = 10
	maxRedirectURILen = 2000
	maxClientNameLen  = 200
	maxScopeLen       = 1000
)

// client is a registered public client.
type client struct {
	id           string
	name         string
	redirectURIs []string
	grantTypes   []string
	scope        string
	issuedAt     time.Time
}

func (c *client) allowsGrant(g string) bool { return slices.Contains(c.grantTypes, g) }

// registrationRequest is the subset of RFC 7591 client metadata this server
// reads. Other members are ignored.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod *string  `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
}

// registrationResponse is the RFC 7591 §3.2.1 client information response.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope,omitempty"`
}

// errRegistration is an RFC 7591 §3.2.2 error.
type errRegistration struct{ code, desc string }

func (e *errRegistration) Error() string { return e.code + ": " + e.desc }

func badMetadata(format string, args ...any) error {
	return &errRegistration{"invalid_client_metadata", fmt.Sprintf(format, args...)}
}

func badRedirect(format string, args ...any) error {
	return &errRegistration{"invalid_redirect_uri", fmt.Sprintf(format, args...)}
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !s.allowMethods(w, r, http.MethodPost) {
		return
	}
	noStore(w)
	ip := s.clientIP(r)
	if !s.allowRegistration(ip) {
		w.Header().Set("Retry-After", s.retryAfter())
		ref := refused(http.StatusTooManyRequests, "temporarily_unavailable", "too many client registrations from this address; try again later")
		ref.warn = true
		s.refuse(w, r, ref, slog.String("remote", ip))
		return
	}
	if ct := r.Header.Get("Content-Type"); !isJSONMediaType(ct) {
		s.refuse(w, r, refused(http.StatusBadRequest, "invalid_client_metadata", "the request's Content-Type is "+quoted(ct)+"; RFC 7591 registration requests must be application/json"))
		return
	}
	var req registrationRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&req); err != nil {
		s.refuse(w, r, refused(http.StatusBadRequest, "invalid_client_metadata", "the request body is not valid client metadata JSON (or is larger than 64 KiB): "+truncate(err.Error(), 200)))
		return
	}
	c, err := s.validateRegistration(&req)
	if err != nil {
		code := "invalid_client_metadata"
		var re *errRegistration
		if errors.As(err, &re) {
			code = re.code
		}
		s.refuse(w, r, refused(http.StatusBadRequest, code, errDescription(err)), slog.String("client_name", truncate(req.ClientName, 100)))
		return
	}
	s.mu.Lock()
	evicted := s.clients.Put(c.id, c)
	s.mu.Unlock()
	if evicted > 0 {
		s.log.Warn("devauth: client registry full; evicted the least recently used client", "max_clients", s.cfg.MaxClients)
	}
	s.log.Info("devauth: registered client", "client_id", c.id, "client_name", c.name, "redirect_uris", c.redirectURIs, "remote", ip)
	writeJSON(w, http.StatusCreated, registrationResponse{
		ClientID:                c.id,
		ClientIDIssuedAt:        c.issuedAt.Unix(),
		ClientName:              c.name,
		RedirectURIs:            c.redirectURIs,
		GrantTypes:              c.grantTypes,
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "none",
		Scope:                   c.scope,
	})
}

// allowRegistration applies the per-address registration rate limit.
func (s *Server) allowRegistration(ip string) bool {
	key := clientip.Key(ip) // IPv6 by /64
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters.Get(key)
	if !ok {
		l = rate.NewLimiter(s.cfg.RegistrationRate, s.cfg.RegistrationBurst)
		s.limiters.Put(key, l)
	} else {
		s.limiters.Touch(key)
	}
	return l.AllowN(s.now(), 1)
}

// retryAfter is the Retry-After value, in seconds, of a rate-limited
// registration or metadata fetch: the time to earn one token back.
func (s *Server) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(1/float64(s.cfg.RegistrationRate)))))
}

// isJSONMediaType reports whether a Content-Type is application/json or
// an application/<subtype>+json type (RFC 6839 §3.1).
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// errDescription is the description of a registration error: the
// errRegistration's own, without its code.
func errDescription(err error) string {
	var re *errRegistration
	if errors.As(err, &re) {
		return re.desc
	}
	return err.Error()
}

// validateRegistration checks an RFC 7591 registration request and returns
// the client it registers, with a new random client_id. Generated ids
// start with "dc-", never "https://", so they cannot be taken for a Client
// ID Metadata Document URL (draft-ietf-oauth-client-id-metadata-document,
// "Supporting Both Pre-Registered and Unregistered Clients").
func (s *Server) validateRegistration(req *registrationRequest) (*client, error) {
	c, err := validateClientMetadata(req)
	if err != nil {
		return nil, err
	}
	c.id = "dc-" + randomString(16)
	c.issuedAt = s.now()
	return c, nil
}

// validateClientMetadata checks the client metadata this server reads, from
// a registration request or a Client ID Metadata Document, and returns the
// client it describes without an id.
func validateClientMetadata(req *registrationRequest) (*client, error) {
	// Public clients only. RFC 7591 makes client_secret_basic the default,
	// but MCP clients that omit the member expect a public client, and the
	// server may substitute a value (§3.2.1), so omitted means "none".
	if m := req.TokenEndpointAuthMethod; m != nil && *m != "none" {
		return nil, badMetadata("token_endpoint_auth_method %q is not supported: this server registers public clients only (\"none\") and uses PKCE", *m)
	}
	if len(req.RedirectURIs) == 0 {
		return nil, badRedirect("redirect_uris is required")
	}
	if len(req.RedirectURIs) > maxRedirectURIs {
		return nil, badRedirect("at most %d redirect_uris are allowed", maxRedirectURIs)
	}
	var uris []string
	for _, u := range req.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return nil, badRedirect("redirect URI %q: %v", truncate(u, 100), err)
		}
		if !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}
	grants := []string{grantAuthorizationCode, grantRefreshToken}
	if req.GrantTypes != nil {
		grants = nil
		for _, g := range req.GrantTypes {
			if g != grantAuthorizationCode && g != grantRefreshToken {
				return nil, badMetadata("grant type %q is not supported", truncate(g, 50))
			}
			if !slices.Contains(grants, g) {
				grants = append(grants, g)
			}
		}
		if !slices.Contains(grants, grantAuthorizationCode) {
			return nil, badMetadata("grant_types must include authorization_code")
		}
	}
	for _, rt := range req.ResponseTypes {
		if rt != "code" {
			return nil, badMetadata("response type %q is not supported", truncate(rt, 50))
		}
	}
	if len(req.ClientName) > maxClientNameLen || !utf8.ValidString(req.ClientName) ||
		strings.ContainsFunc(req.ClientName, unicode.IsControl) {
		return nil, badMetadata("client_name must be printable UTF-8 of at most %d bytes", maxClientNameLen)
	}
	if len(req.Scope) > maxScopeLen {
		return nil, badMetadata("scope is longer than %d bytes", maxScopeLen)
	}
	if _, err := scopes.Parse(req.Scope); err != nil {
		return nil, badMetadata("scope: %v", err)
	}
	return &client{
		name:         strings.TrimSpace(req.ClientName),
		redirectURIs: uris,
		grantTypes:   grants,
		scope:        req.Scope,
	}, nil
}

// validateRedirectURI accepts https URIs, http URIs on a loopback host (any
// port, RFC 8252 §7.3) and private-use URI schemes in reverse-DNS form (RFC
// 8252 §7.1). Fragments, user info and control characters are refused.
func validateRedirectURI(raw string) error {
	if raw == "" {
		return errors.New("empty")
	}
	if len(raw) > maxRedirectURILen {
		return fmt.Errorf("longer than %d bytes", maxRedirectURILen)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r >= 0x80 }) {
		return errors.New("contains spaces, control or non-ASCII characters")
	}
	if strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URI")
	}
	if u.Scheme == "" {
		return errors.New("must be an absolute URI")
	}
	if u.User != nil {
		return errors.New("must not contain user info")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("https URIs need a host")
		}
	case "http":
		if !loopback.Host(u.Hostname()) {
			return errors.New("http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("scheme %q is not allowed: use https, http on a loopback host, or a reverse-DNS private-use scheme such as com.example.app:/callback", u.Scheme)
		}
	}
	return nil
}

// matchRedirect returns the registered redirect URI that given matches. The
// match is exact, except that for http loopback URIs the port may differ
// (RFC 8252 §7.3: native apps pick an ephemeral port at request time).
func matchRedirect(registered []string, given string) bool {
	if slices.Contains(registered, given) {
		return true
	}
	g, err := url.Parse(given)
	if err != nil || g.Scheme != "http" || g.User != nil || strings.Contains(given, "#") || !loopback.Host(g.Hostname()) {
		return false
	}
	for _, reg := range registered {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" {
			continue
		}
		if r.Hostname() == g.Hostname() && r.EscapedPath() == g.EscapedPath() && r.RawQuery == g.RawQuery {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
