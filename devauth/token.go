package devauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

type tokenKind int

const (
	accessToken tokenKind = iota
	refreshToken
)

// tokenRecord is what the server knows about an issued token. The token
// itself is never stored: the map key is its SHA-256 digest.
type tokenRecord struct {
	kind     tokenKind
	clientID string
	user     string
	scopes   []string
	iat, exp time.Time
	family   string // the grant the token belongs to
	rotated  bool   // a refresh token that was already exchanged
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !s.allowMethods(w, r, http.MethodPost) {
		return
	}
	form, ok := s.parseForm(w, r)
	if !ok {
		return
	}
	resp, ref := s.token(r, form)
	if ref != nil {
		if ref.code == "invalid_client" {
			w.Header().Set("WWW-Authenticate", `Basic realm="devauth"`)
		}
		if ref.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", s.retryAfter())
		}
		s.refuse(w, r, ref,
			slog.String("client_id", truncate(form.Get("client_id"), 200)),
			slog.String("grant_type", truncate(form.Get("grant_type"), 50)))
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, resp)
}

// clientRefusal turns a failed client lookup into the token endpoint's
// refusal (RFC 6749 §5.2 invalid_client).
func clientRefusal(err error) *refusal {
	var me *ClientMetadataError
	if errors.As(err, &me) {
		if me.Status != http.StatusBadRequest {
			return refused(me.Status, "temporarily_unavailable", me.Reason)
		}
		return refused(http.StatusUnauthorized, "invalid_client", me.Reason)
	}
	return refused(http.StatusUnauthorized, "invalid_client",
		"unknown client_id: no client is registered with it (registrations live in memory and are lost when the server restarts; register again)")
}

// badResource is the RFC 8707 §2 invalid_target refusal for a resource
// this server does not issue tokens for, naming both.
func (s *Server) badResource(asked string) *refusal {
	return refused(http.StatusBadRequest, "invalid_target",
		"resource "+quoted(asked)+" is not served here: this server issues tokens only for the resource "+quoted(s.cfg.Resource)+" (the gateway's MCP_RESOURCE_URL)")
}

func (s *Server) token(r *http.Request, form url.Values) (*tokenResponse, *refusal) {
	if k := repeated(form, "grant_type", "client_id", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "resource"); k != "" {
		return nil, requestError("the parameter " + k + " is repeated")
	}
	clientID, ref := publicClientID(r, form)
	if ref != nil {
		return nil, ref
	}
	c, err := s.lookupClient(r.Context(), r, clientID)
	if err != nil {
		return nil, clientRefusal(err)
	}
	if res := form.Get("resource"); res != "" && res != s.cfg.Resource {
		return nil, s.badResource(res)
	}
	grant := form.Get("grant_type")
	switch grant {
	case grantAuthorizationCode, grantRefreshToken:
		if !c.allowsGrant(grant) {
			return nil, refused(http.StatusBadRequest, "unauthorized_client", "the client's grant_types do not include "+grant)
		}
	case "":
		return nil, requestError("grant_type is required")
	default:
		return nil, refused(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+quoted(grant)+" is not supported; supported grant types are authorization_code and refresh_token")
	}
	if grant == grantAuthorizationCode {
		return s.exchangeCode(c, form)
	}
	return s.refresh(c, form)
}

// publicClientID reads the client_id of a public client from the form, or
// from HTTP Basic authentication with an empty password (some libraries send
// that first).
func publicClientID(r *http.Request, form url.Values) (string, *refusal) {
	id := form.Get("client_id")
	if user, pass, ok := r.BasicAuth(); ok {
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		switch {
		case err1 != nil || err2 != nil:
			return "", refused(http.StatusUnauthorized, "invalid_client", "the Authorization header's Basic credentials are not form-urlencoded (RFC 6749 §2.3.1)")
		case p != "":
			return "", refused(http.StatusUnauthorized, "invalid_client", "this server has public clients only: send client_id without a secret (the Basic password must be empty)")
		case id != "" && id != u:
			return "", refused(http.StatusUnauthorized, "invalid_client", "the client_id in the form differs from the one in the Authorization header")
		}
		id = u
	}
	if form.Get("client_secret") != "" {
		return "", refused(http.StatusUnauthorized, "invalid_client", "this server has public clients only: send client_id without a client_secret")
	}
	if id == "" {
		return "", refused(http.StatusUnauthorized, "invalid_client", "client_id is required (in the form, for a public client)")
	}
	return id, nil
}

func (s *Server) exchangeCode(c *client, form url.Values) (*tokenResponse, *refusal) {
	code := form.Get("code")
	if code == "" {
		return nil, requestError("code is required")
	}
	verifier := form.Get("code_verifier")
	now := s.now()

	s.mu.Lock()
	defer s.mu.Unlock()
	ac, ok := s.codes.Get(digest(code))
	switch {
	case !ok:
		return nil, grantError("the authorization code is unknown: it was never issued by this server, was evicted, or the server restarted since")
	case ac.clientID != c.id:
		return nil, grantError("the authorization code was issued to another client_id")
	}
	if ac.used {
		// A replayed code: revoke everything issued from it (RFC 6749 §4.1.2).
		n := s.revokeFamilyLocked(ac.family)
		s.log.Warn("devauth: authorization code reused; revoked the tokens issued from it", "client_id", c.id, "revoked", n)
		ref := grantError("the authorization code was already used; the tokens issued from it are revoked (RFC 6749 §4.1.2)")
		ref.warn = true
		return nil, ref
	}
	// Any attempt with the right client uses the code up, so that a wrong
	// verifier cannot be retried.
	ac.used = true
	if !now.Before(ac.expires) {
		return nil, grantError(fmt.Sprintf("the authorization code expired %s ago (codes are valid for %s)", now.Sub(ac.expires).Round(time.Second), s.cfg.CodeTTL))
	}
	if ru := form.Get("redirect_uri"); ac.redirectGiven || ru != "" {
		if ru != ac.redirectURI {
			return nil, grantError("redirect_uri " + quoted(ru) + " does not match " + quoted(ac.redirectURI) + " given in the authorization request")
		}
	}
	if verifier == "" {
		return nil, requestError("code_verifier is required: this server requires PKCE")
	}
	if !verifierRE.MatchString(verifier) {
		return nil, grantError("code_verifier is malformed: it must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return nil, grantError("code_verifier does not match the code_challenge of the authorization request (S256)")
	}
	resp := s.issueLocked(c.id, ac.user, ac.scopes, ac.family, c.allowsGrant(grantRefreshToken), now)
	s.log.Info("devauth: issued tokens for an authorization code", "client_id", c.id, "user", ac.user, "scopes", ac.scopes)
	return resp, nil
}

func (s *Server) refresh(c *client, form url.Values) (*tokenResponse, *refusal) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, requestError("refresh_token is required")
	}
	requested, err := scopes.Parse(form.Get("scope"))
	if err != nil {
		return nil, refused(http.StatusBadRequest, "invalid_scope", err.Error())
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.tokens.Get(digest(rt))
	switch {
	case !ok:
		return nil, grantError("the refresh token is unknown: it was never issued by this server, was revoked or evicted, or the server restarted since")
	case rec.kind != refreshToken:
		return nil, grantError("the token given as refresh_token is an access token")
	case rec.clientID != c.id:
		return nil, grantError("the refresh token was issued to another client_id")
	case !now.Before(rec.exp):
		return nil, grantError(fmt.Sprintf("the refresh token expired %s ago", now.Sub(rec.exp).Round(time.Second)))
	}
	if rec.rotated {
		n := s.revokeFamilyLocked(rec.family)
		s.log.Warn("devauth: rotated refresh token reused; revoked the whole grant", "client_id", c.id, "user", rec.user, "revoked", n)
		ref := grantError("the refresh token was already used (refresh tokens rotate); the whole grant is revoked: authorize again")
		ref.warn = true
		return nil, ref
	}
	granted := rec.scopes
	if len(requested) > 0 {
		for _, sc := range requested {
			if !slices.Contains(rec.scopes, sc) {
				return nil, refused(http.StatusBadRequest, "invalid_scope", "the scope "+quoted(sc)+" was not granted; the grant has "+quoted(strings.Join(rec.scopes, " ")))
			}
		}
		granted = requested
	}
	rec.rotated = true
	resp := s.issueLocked(c.id, rec.user, granted, rec.family, true, now)
	s.log.Info("devauth: refreshed tokens", "client_id", c.id, "user", rec.user, "scopes", granted)
	return resp, nil
}

// issueLocked stores a new access token (and refresh token) and returns the
// token response. s.mu must be held.
func (s *Server) issueLocked(clientID, user string, sc []string, family string, withRefresh bool, now time.Time) *tokenResponse {
	at := newSecret()
	s.putTokenLocked(at, &tokenRecord{
		kind: accessToken, clientID: clientID, user: user, scopes: slices.Clone(sc),
		iat: now, exp: now.Add(s.cfg.AccessTokenTTL), family: family,
	})
	resp := &tokenResponse{
		AccessToken: at,
		TokenType:   "Bearer",
		ExpiresIn:   int64(s.cfg.AccessTokenTTL / time.Second),
		Scope:       strings.Join(sc, " "),
	}
	if withRefresh {
		rt := newSecret()
		s.putTokenLocked(rt, &tokenRecord{
			kind: refreshToken, clientID: clientID, user: user, scopes: slices.Clone(sc),
			iat: now, exp: now.Add(s.cfg.RefreshTokenTTL), family: family,
		})
		resp.RefreshToken = rt
	}
	return resp
}

func (s *Server) putTokenLocked(token string, rec *tokenRecord) {
	s.tokens.DropOldestWhile(func(t *tokenRecord) bool { return !rec.iat.Before(t.exp) })
	if s.tokens.Put(digest(token), rec) > 0 {
		s.log.Warn("devauth: token store full; evicted the oldest token", "max_tokens", s.cfg.MaxTokens)
	}
}

// revokeFamilyLocked deletes every token of a grant. s.mu must be held.
func (s *Server) revokeFamilyLocked(family string) int {
	return s.tokens.RemoveIf(func(_ [32]byte, t *tokenRecord) bool { return t.family == family })
}

// MintToken issues an access token (no refresh token) for user with the given
// scopes, as the token page does. Each scope must be offered, or be a parent
// of offered scopes (such as "op").
func (s *Server) MintToken(user string, sc []string) (string, error) {
	if !ValidUser(user) {
		return "", errors.New("devauth: the user name must be 1 to 64 letters, digits or . _ @ + -")
	}
	if len(sc) == 0 && len(s.offered) > 0 {
		return "", errors.New("devauth: at least one scope is required")
	}
	var clean []string
	for _, x := range sc {
		known := slices.Contains(s.offered, x)
		for _, o := range s.offered {
			known = known || (x != "" && scopes.Satisfies([]string{x}, o))
		}
		if !known {
			return "", fmt.Errorf("devauth: unknown scope %q", x)
		}
		if !slices.Contains(clean, x) {
			clean = append(clean, x)
		}
	}
	now := s.now()
	s.mu.Lock()
	resp := s.issueLocked(TokenPageClientID, user, clean, randomString(12), false, now)
	s.mu.Unlock()
	s.log.Info("devauth: minted a token", "user", user, "scopes", clean)
	return resp.AccessToken, nil
}

// handleRevoke implements RFC 7009 for public clients: the client names
// itself with client_id, and may revoke only its own tokens. The answer is
// 200 whether or not the token was valid. Revoking a refresh token revokes
// the whole grant.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if !s.allowMethods(w, r, http.MethodPost) {
		return
	}
	form, ok := s.parseForm(w, r)
	if !ok {
		return
	}
	clientID, ref := publicClientID(r, form)
	if ref != nil {
		s.refuse(w, r, ref)
		return
	}
	token := form.Get("token")
	if token == "" {
		s.refuse(w, r, requestError("token is required"), slog.String("client_id", truncate(clientID, 200)))
		return
	}
	d := digest(token)
	s.mu.Lock()
	n := 0
	if rec, ok := s.tokens.Get(d); ok && rec.clientID == clientID {
		if rec.kind == refreshToken {
			n = s.revokeFamilyLocked(rec.family)
		} else {
			s.tokens.Remove(d)
			n = 1
		}
	}
	s.mu.Unlock()
	s.log.Info("devauth: revocation request", "client_id", clientID, "revoked", n)
	noStore(w)
	w.WriteHeader(http.StatusOK)
}

// introspection is the RFC 7662 response for an active token.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope"`
	ClientID  string `json:"client_id"`
	Username  string `json:"username"`
	Sub       string `json:"sub"`
	Aud       string `json:"aud"`
	Iss       string `json:"iss"`
	Exp       int64  `json:"exp"`
	Iat       int64  `json:"iat"`
	Nbf       int64  `json:"nbf"`
	TokenType string `json:"token_type"`
	TokenUse  string `json:"token_use"`
}

// handleIntrospect implements RFC 7662. The caller must authenticate with
// the introspection credentials, by client_secret_basic (with the RFC 6749
// §2.3.1 form-urlencoding) or client_secret_post.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if !s.allowMethods(w, r, http.MethodPost) {
		return
	}
	form, ok := s.parseForm(w, r)
	if !ok {
		return
	}
	if reason := s.introspectionClient(r, form); reason != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="devauth introspection", charset="UTF-8"`)
		ref := refused(http.StatusUnauthorized, "invalid_client", reason)
		ref.warn = true // the gateway's own credentials are wrong, or a stranger is probing
		s.refuse(w, r, ref)
		return
	}
	token := form.Get("token")
	if token == "" {
		s.refuse(w, r, requestError("token is required"))
		return
	}
	now := s.now()
	s.mu.Lock()
	rec, ok := s.tokens.Get(digest(token))
	var out introspection
	if ok && !rec.rotated && now.Before(rec.exp) {
		out = introspection{
			Active:    true,
			Scope:     strings.Join(rec.scopes, " "),
			ClientID:  rec.clientID,
			Username:  rec.user,
			Sub:       rec.user,
			Aud:       s.cfg.Resource,
			Iss:       s.issuer,
			Exp:       rec.exp.Unix(),
			Iat:       rec.iat.Unix(),
			Nbf:       rec.iat.Unix(),
			TokenType: "Bearer",
			TokenUse:  "access_token",
		}
		if rec.kind == refreshToken {
			out.TokenType, out.TokenUse = "refresh_token", "refresh_token"
		}
	}
	s.mu.Unlock()
	s.log.Debug("devauth: introspection", "active", out.Active)
	noStore(w)
	if !out.Active {
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// introspectionClient checks the caller's client authentication and
// returns why it fails, or "".
func (s *Server) introspectionClient(r *http.Request, form url.Values) (reason string) {
	var id, secret string
	if user, pass, ok := r.BasicAuth(); ok {
		if form.Has("client_secret") {
			return "use one client authentication method: Basic or client_secret in the form, not both"
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return "the Authorization header's Basic credentials are not form-urlencoded (RFC 6749 §2.3.1)"
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" && secret == "" {
		return "introspection requires client authentication (client_secret_basic or client_secret_post) with the introspection credentials"
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.introID))
	secOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.introSec))
	if idOK&secOK != 1 || secret == "" {
		return "the introspection client credentials are wrong"
	}
	return ""
}
