package devauth

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// pendingAuth is an authorization request waiting for the user's answer on
// the consent page. It is single-use and keyed by a random id; the form must
// also carry its CSRF token.
type pendingAuth struct {
	csrf          string
	clientID      string
	clientName    string
	redirectURI   string
	redirectGiven bool
	state         string
	challenge     string
	scopes        []string
	loginHint     string
	expires       time.Time
}

// authCode is an issued authorization code, stored by digest. A used code is
// kept until it expires so that a replay can be detected (RFC 6749 §4.1.2).
type authCode struct {
	clientID      string
	redirectURI   string
	redirectGiven bool
	challenge     string
	scopes        []string
	user          string
	expires       time.Time
	used          bool
	family        string // the grant: every token issued from this code shares it
}

var (
	userRE      = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,64}$`)
	challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

// ValidUser reports whether name is an acceptable development user name: 1
// to 64 characters of letters, digits and . _ @ + -.
func ValidUser(name string) bool { return userRE.MatchString(name) }

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.renderError(w, http.StatusMethodNotAllowed, "Method not allowed", "The authorization endpoint accepts GET requests.")
		return
	}
	q := r.URL.Query()
	// Until the client and its redirect URI are known to be good, errors are
	// shown to the user and never redirected (RFC 6749 §4.1.2.1).
	if k := repeated(q, "client_id", "redirect_uri"); k != "" {
		s.renderError(w, http.StatusBadRequest, "Invalid authorization request", "The parameter "+k+" is repeated.")
		return
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		s.renderError(w, http.StatusBadRequest, "Invalid authorization request", "The request has no client_id.")
		return
	}
	s.mu.Lock()
	c, ok := s.clients.get(clientID)
	if ok {
		s.clients.touch(clientID)
	}
	s.mu.Unlock()
	if !ok {
		s.renderError(w, http.StatusBadRequest, "Unknown application",
			"No application is registered with this client_id. It may have been registered with an earlier run of the server: remove the saved registration from your MCP client and connect again.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	redirectGiven := redirectURI != ""
	switch {
	case !redirectGiven && len(c.redirectURIs) == 1:
		redirectURI = c.redirectURIs[0]
	case !redirectGiven:
		s.renderError(w, http.StatusBadRequest, "Invalid authorization request", "The request has no redirect_uri, and the application registered more than one.")
		return
	case !matchRedirect(c.redirectURIs, redirectURI):
		s.renderError(w, http.StatusBadRequest, "Invalid authorization request", "The redirect_uri does not match any redirect URI the application registered.")
		return
	}

	// From here on, errors go back to the client.
	state := q.Get("state")
	fail := func(code, desc string) {
		s.log.Debug("devauth: authorization request refused", "client_id", clientID, "error", code, "error_description", desc)
		s.redirect(w, r, redirectURI, url.Values{"error": {code}, "error_description": {desc}}, state)
	}
	if k := repeated(q, "response_type", "scope", "state", "code_challenge", "code_challenge_method"); k != "" {
		fail("invalid_request", "the parameter "+k+" is repeated")
		return
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		fail("invalid_request", "response_type is required")
		return
	default:
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		fail("invalid_request", "code_challenge is required: this server requires PKCE with S256")
		return
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		fail("invalid_request", "code_challenge_method must be S256 (plain is not supported)")
		return
	}
	if !challengeRE.MatchString(challenge) {
		fail("invalid_request", "code_challenge must be the 43-character base64url S256 hash of the code_verifier")
		return
	}
	for _, res := range q["resource"] {
		if res != s.cfg.Resource {
			fail("invalid_target", "this server issues tokens only for the resource "+s.cfg.Resource)
			return
		}
	}
	requested, err := s.requestedScopes(q.Get("scope"))
	if err != nil {
		fail("invalid_scope", err.Error())
		return
	}

	p := &pendingAuth{
		csrf:          newSecret(),
		clientID:      c.id,
		clientName:    c.name,
		redirectURI:   redirectURI,
		redirectGiven: redirectGiven,
		state:         state,
		challenge:     challenge,
		scopes:        requested,
		expires:       s.now().Add(s.cfg.ConsentTTL),
	}
	if hint := q.Get("login_hint"); ValidUser(hint) {
		p.loginHint = hint
	}
	id := randomString(16)
	now := s.now()
	s.mu.Lock()
	s.pending.dropOldestWhile(func(p *pendingAuth) bool { return !now.Before(p.expires) })
	s.pending.put(id, p)
	s.mu.Unlock()
	s.log.Debug("devauth: showing consent page", "client_id", c.id, "scopes", requested)
	checked := make(map[string]bool, len(requested))
	for _, sc := range requested {
		checked[sc] = true
	}
	s.renderConsent(w, http.StatusOK, id, p, p.loginHint, checked, "")
}

// requestedScopes intersects the requested scopes with the offered ones.
// Unknown scopes are ignored; a parent scope that is not offered itself (such
// as "op") asks for every offered scope it covers; an empty result offers
// everything.
func (s *Server) requestedScopes(raw string) ([]string, error) {
	parsed, err := scopes.Parse(raw)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, sc := range parsed {
		for _, o := range s.offered {
			if o == sc || scopes.Satisfies([]string{sc}, o) {
				want[o] = true
			}
		}
	}
	var out []string
	for _, o := range s.offered {
		if want[o] {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		out = slices.Clone(s.offered)
	}
	return out, nil
}

// handleConsent receives the consent form.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.renderError(w, http.StatusMethodNotAllowed, "Method not allowed", "The consent form must be submitted with POST.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, "Invalid form", "The consent form could not be read.")
		return
	}
	form := r.PostForm
	id, csrf, action := form.Get("id"), form.Get("csrf"), form.Get("action")
	user := strings.TrimSpace(form.Get("user"))
	now := s.now()

	s.mu.Lock()
	p, ok := s.pending.get(id)
	if ok && !now.Before(p.expires) {
		s.pending.remove(id)
		ok = false
	}
	if !ok {
		s.mu.Unlock()
		s.renderError(w, http.StatusBadRequest, "Request expired",
			"This authorization request has expired or was already answered. Start again from your application.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(csrf), []byte(p.csrf)) != 1 {
		s.mu.Unlock()
		s.log.Warn("devauth: consent form with a bad CSRF token", "client_id", p.clientID)
		s.renderError(w, http.StatusForbidden, "Forbidden", "The form's security token is not valid. Reload the application's login and try again.")
		return
	}
	var granted []string
	for _, sc := range p.scopes {
		if slices.Contains(form["scope"], sc) {
			granted = append(granted, sc)
		}
	}
	if action == "approve" && !ValidUser(user) {
		s.mu.Unlock()
		checked := map[string]bool{}
		for _, sc := range granted {
			checked[sc] = true
		}
		s.renderConsent(w, http.StatusBadRequest, id, p, user, checked,
			"Enter a user name of 1 to 64 letters, digits or . _ @ + -")
		return
	}
	if action != "approve" && action != "deny" {
		s.mu.Unlock()
		s.renderError(w, http.StatusBadRequest, "Invalid form", "Choose Approve or Deny.")
		return
	}
	// The request is answered: it cannot be answered twice.
	s.pending.remove(id)
	if action == "deny" || len(granted) == 0 {
		s.mu.Unlock()
		desc := "the user denied the request"
		if action == "approve" {
			desc = "the user approved no scopes"
		}
		s.log.Info("devauth: authorization denied", "client_id", p.clientID)
		s.redirect(w, r, p.redirectURI, url.Values{"error": {"access_denied"}, "error_description": {desc}}, p.state)
		return
	}
	code := newSecret()
	s.codes.dropOldestWhile(func(c *authCode) bool { return !now.Before(c.expires) })
	s.codes.put(digest(code), &authCode{
		clientID:      p.clientID,
		redirectURI:   p.redirectURI,
		redirectGiven: p.redirectGiven,
		challenge:     p.challenge,
		scopes:        granted,
		user:          user,
		expires:       now.Add(s.cfg.CodeTTL),
		family:        randomString(12),
	})
	s.mu.Unlock()
	s.log.Info("devauth: authorization approved", "client_id", p.clientID, "user", user, "scopes", granted)
	s.redirect(w, r, p.redirectURI, url.Values{"code": {code}}, p.state)
}

// redirect sends the authorization response to the client's redirect URI,
// keeping the URI's own query and adding state and iss (RFC 9207). After a
// form POST it answers 303 so that the browser follows with a GET.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values, state string) {
	u, err := url.Parse(redirectURI)
	if err != nil { // cannot happen: the URI was validated at registration
		s.renderError(w, http.StatusInternalServerError, "Internal error", "The redirect URI is invalid.")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	noStore(w)
	w.Header().Set("Location", u.String())
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
}
