package devauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
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

// tokenError is an RFC 6749 §5.2 error response.
type tokenError struct {
	status int
	code   string
	desc   string
}

func grantError(desc string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_grant", desc}
}

func requestError(desc string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_request", desc}
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	form, ok := parseForm(w, r)
	if !ok {
		return
	}
	resp, terr := s.token(r, form)
	if terr != nil {
		if terr.code == "invalid_client" {
			w.Header().Set("WWW-Authenticate", `Basic realm="devauth"`)
		}
		writeOAuthError(w, terr.status, terr.code, terr.desc)
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(r *http.Request, form url.Values) (*tokenResponse, *tokenError) {
	if k := repeated(form, "grant_type", "client_id", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "resource"); k != "" {
		return nil, requestError("the parameter " + k + " is repeated")
	}
	clientID, terr := publicClientID(r, form)
	if terr != nil {
		return nil, terr
	}
	s.mu.Lock()
	c, ok := s.clients.get(clientID)
	if ok {
		s.clients.touch(clientID)
	}
	s.mu.Unlock()
	if !ok {
		return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "unknown client_id"}
	}
	if res := form.Get("resource"); res != "" && res != s.cfg.Resource {
		return nil, &tokenError{http.StatusBadRequest, "invalid_target", "this server issues tokens only for the resource " + s.cfg.Resource}
	}
	grant := form.Get("grant_type")
	switch grant {
	case grantAuthorizationCode, grantRefreshToken:
		if !c.allowsGrant(grant) {
			return nil, &tokenError{http.StatusBadRequest, "unauthorized_client", "the client did not register the " + grant + " grant"}
		}
	case "":
		return nil, requestError("grant_type is required")
	default:
		return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "supported grant types are authorization_code and refresh_token"}
	}
	if grant == grantAuthorizationCode {
		return s.exchangeCode(c, form)
	}
	return s.refresh(c, form)
}

// publicClientID reads the client_id of a public client from the form, or
// from HTTP Basic authentication with an empty password (some libraries send
// that first).
func publicClientID(r *http.Request, form url.Values) (string, *tokenError) {
	id := form.Get("client_id")
	if user, pass, ok := r.BasicAuth(); ok {
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || p != "" || (id != "" && id != u) {
			return "", &tokenError{http.StatusUnauthorized, "invalid_client", "this server has public clients only: send client_id without a secret"}
		}
		id = u
	}
	if form.Get("client_secret") != "" {
		return "", &tokenError{http.StatusUnauthorized, "invalid_client", "this server has public clients only: send client_id without a secret"}
	}
	if id == "" {
		return "", &tokenError{http.StatusUnauthorized, "invalid_client", "client_id is required"}
	}
	return id, nil
}

func (s *Server) exchangeCode(c *client, form url.Values) (*tokenResponse, *tokenError) {
	code := form.Get("code")
	if code == "" {
		return nil, requestError("code is required")
	}
	verifier := form.Get("code_verifier")
	now := s.now()

	s.mu.Lock()
	defer s.mu.Unlock()
	ac, ok := s.codes.get(digest(code))
	if !ok || ac.clientID != c.id {
		return nil, grantError("the authorization code is invalid or expired")
	}
	if ac.used {
		// A replayed code: revoke everything issued from it (RFC 6749 §4.1.2).
		n := s.revokeFamilyLocked(ac.family)
		s.log.Warn("devauth: authorization code reused; revoked the tokens issued from it", "client_id", c.id, "revoked", n)
		return nil, grantError("the authorization code was already used")
	}
	// Any attempt with the right client uses the code up, so that a wrong
	// verifier cannot be retried.
	ac.used = true
	if !now.Before(ac.expires) {
		return nil, grantError("the authorization code is invalid or expired")
	}
	if ru := form.Get("redirect_uri"); ac.redirectGiven || ru != "" {
		if ru != ac.redirectURI {
			return nil, grantError("redirect_uri does not match the authorization request")
		}
	}
	if verifier == "" {
		return nil, requestError("code_verifier is required")
	}
	if !verifierRE.MatchString(verifier) {
		return nil, grantError("code_verifier is malformed")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return nil, grantError("code_verifier does not match the code_challenge")
	}
	resp := s.issueLocked(c.id, ac.user, ac.scopes, ac.family, c.allowsGrant(grantRefreshToken), now)
	s.log.Info("devauth: issued tokens for an authorization code", "client_id", c.id, "user", ac.user, "scopes", ac.scopes)
	return resp, nil
}

func (s *Server) refresh(c *client, form url.Values) (*tokenResponse, *tokenError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, requestError("refresh_token is required")
	}
	requested, err := scopes.Parse(form.Get("scope"))
	if err != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", err.Error()}
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.tokens.get(digest(rt))
	if !ok || rec.kind != refreshToken || rec.clientID != c.id || !now.Before(rec.exp) {
		return nil, grantError("the refresh token is invalid or expired")
	}
	if rec.rotated {
		n := s.revokeFamilyLocked(rec.family)
		s.log.Warn("devauth: rotated refresh token reused; revoked the whole grant", "client_id", c.id, "user", rec.user, "revoked", n)
		return nil, grantError("the refresh token was already used")
	}
	granted := rec.scopes
	if len(requested) > 0 {
		for _, sc := range requested {
			if !slices.Contains(rec.scopes, sc) {
				return nil, &tokenError{http.StatusBadRequest, "invalid_scope", "the scope " + sc + " was not granted"}
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
	s.tokens.dropOldestWhile(func(t *tokenRecord) bool { return !rec.iat.Before(t.exp) })
	if s.tokens.put(digest(token), rec) > 0 {
		s.log.Warn("devauth: token store full; evicted the oldest token", "max_tokens", s.cfg.MaxTokens)
	}
}

// revokeFamilyLocked deletes every token of a grant. s.mu must be held.
func (s *Server) revokeFamilyLocked(family string) int {
	return s.tokens.removeIf(func(_ [32]byte, t *tokenRecord) bool { return t.family == family })
}

// MintToken issues an access token (no refresh token) for user with the given
// scopes, as the token page does. Each scope must be offered, or be a parent
// of offered scopes (such as "op").
func (s *Server) MintToken(user string, sc []string) (string, error) {
	if !ValidUser(user) {
		return "", errors.New("devauth: the user name must be 1 to 64 letters, digits or . _ @ + -")
	}
	if len(sc) == 0 {
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
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	form, ok := parseForm(w, r)
	if !ok {
		return
	}
	clientID, terr := publicClientID(r, form)
	if terr != nil {
		writeOAuthError(w, terr.status, terr.code, terr.desc)
		return
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	d := digest(token)
	s.mu.Lock()
	n := 0
	if rec, ok := s.tokens.get(d); ok && rec.clientID == clientID {
		if rec.kind == refreshToken {
			n = s.revokeFamilyLocked(rec.family)
		} else {
			s.tokens.remove(d)
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
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	form, ok := parseForm(w, r)
	if !ok {
		return
	}
	if !s.introspectionClient(r, form) {
		w.Header().Set("WWW-Authenticate", `Basic realm="devauth introspection", charset="UTF-8"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "introspection requires client authentication")
		return
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	now := s.now()
	s.mu.Lock()
	rec, ok := s.tokens.get(digest(token))
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

func (s *Server) introspectionClient(r *http.Request, form url.Values) bool {
	var id, secret string
	if user, pass, ok := r.BasicAuth(); ok {
		if form.Has("client_secret") {
			return false // one authentication method only
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.introID))
	secOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.introSec))
	return idOK&secOK == 1 && secret != ""
}
