package devauth

import (
	"crypto/subtle"
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

// pendingAuth is an authorization request waiting for the user's answer on
// the consent page. It is single-use and keyed by a random id; the form must
// also carry its CSRF token.
type pendingAuth struct {
	csrf          string
	clientID      string
	clientName    string
	clientHost    string // the client_id URL's host, for a metadata-document client
	redirectURI   string
	redirectGiven bool
	state         string
	challenge     string
	scopes        []string
	loginHint     string // the user name to prefill
	hintFrom      string // where loginHint comes from, said under the field
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
		s.refusePage(w, r, refused(http.StatusMethodNotAllowed, "invalid_request", "method "+quoted(r.Method)+" is not allowed; use GET"),
			"Method not allowed", "The authorization endpoint accepts GET requests.")
		return
	}
	q := r.URL.Query()
	// Until the client and its redirect URI are known to be good, errors are
	// shown to the user and never redirected (RFC 6749 §4.1.2.1).
	if k := repeated(q, "client_id", "redirect_uri"); k != "" {
		s.refusePage(w, r, requestError("the parameter "+k+" is repeated"),
			"Invalid authorization request", "The parameter "+k+" is repeated.")
		return
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		s.refusePage(w, r, requestError("client_id is missing"), "Invalid authorization request", "The request has no client_id.")
		return
	}
	idAttr := slog.String("client_id", truncate(clientID, 200))
	c, err := s.lookupClient(r.Context(), r, clientID)
	if err != nil {
		var me *ClientMetadataError
		if errors.As(err, &me) {
			ref := refused(me.Status, "invalid_client", me.Reason)
			if me.Status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", s.retryAfter())
				ref.code = "temporarily_unavailable"
			}
			s.refusePage(w, r, ref, "Application not accepted",
				"This application identifies itself with the URL "+truncate(clientID, 200)+", but its client metadata document was not accepted.", idAttr)
			return
		}
		s.refusePage(w, r, refused(http.StatusBadRequest, "invalid_client", "unknown client_id: no client is registered with it"), "Unknown application",
			"No application is registered with this client_id. It may have been registered with an earlier run of the server: remove the saved registration from your MCP client and connect again.", idAttr)
		return
	}
	redirectURI := q.Get("redirect_uri")
	redirectGiven := redirectURI != ""
	switch {
	case !redirectGiven && len(c.redirectURIs) == 1:
		redirectURI = c.redirectURIs[0]
	case !redirectGiven:
		s.refusePage(w, r, requestError("redirect_uri is missing and the client has more than one"), "Invalid authorization request",
			"The request has no redirect_uri, and the application registered more than one.", idAttr)
		return
	case !matchRedirect(c.redirectURIs, redirectURI):
		reason := "redirect_uri " + quoted(redirectURI) + " is not one of the client's redirect_uris " + quoted(strings.Join(c.redirectURIs, " "))
		s.refusePage(w, r, requestError(reason), "Invalid authorization request",
			"The redirect_uri does not match any redirect URI the application registered.", idAttr)
		return
	}

	// From here on, errors go back to the client.
	state := q.Get("state")
	fail := func(ref *refusal) {
		ref.status = http.StatusFound
		s.logRefusal(r, ref, idAttr, slog.String("redirect_uri", redirectURI))
		s.redirect(w, r, redirectURI, url.Values{"error": {ref.code}, "error_description": {ref.desc}}, state)
	}
	if k := repeated(q, "response_type", "scope", "state", "code_challenge", "code_challenge_method"); k != "" {
		fail(requestError("the parameter " + k + " is repeated"))
		return
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		fail(requestError("response_type is required"))
		return
	default:
		fail(refused(0, "unsupported_response_type", "response_type "+quoted(rt)+" is not supported; only response_type=code is"))
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		fail(requestError("code_challenge is required: this server requires PKCE with S256"))
		return
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		fail(requestError("code_challenge_method is " + quoted(m) + "; it must be S256 (plain is not supported)"))
		return
	}
	if !challengeRE.MatchString(challenge) {
		fail(requestError("code_challenge must be the 43-character base64url S256 hash of the code_verifier"))
		return
	}
	for _, res := range q["resource"] {
		if res != s.cfg.Resource {
			fail(s.badResource(res))
			return
		}
	}
	requested, err := s.requestedScopes(q.Get("scope"))
	if err != nil {
		fail(refused(0, "invalid_scope", err.Error()))
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
	if isURLClientID(c.id) {
		if u, err := url.Parse(c.id); err == nil {
			p.clientHost = u.Host
		}
	}
	id := randomString(16)
	now := s.now()
	s.mu.Lock()
	// The name to prefill: the client's login_hint (OpenID Connect Core
	// §3.1.2.1) when it is a valid user name, else the name last approved
	// for this client_id, so that a step-up consent needs no retyping.
	if hint := q.Get("login_hint"); ValidUser(hint) {
		p.loginHint, p.hintFrom = hint, "Suggested by the application (login_hint)."
	} else if last, ok := s.lastUser.Get(c.id); ok {
		p.loginHint, p.hintFrom = last, "Filled in from your last approval for this application."
	}
	s.pending.DropOldestWhile(func(p *pendingAuth) bool { return !now.Before(p.expires) })
	s.pending.Put(id, p)
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
		s.refusePage(w, r, refused(http.StatusMethodNotAllowed, "invalid_request", "method "+quoted(r.Method)+" is not allowed; the consent form is POSTed"),
			"Method not allowed", "The consent form must be submitted with POST.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.refusePage(w, r, requestError("the consent form does not parse (or is larger than 64 KiB)"), "Invalid form", "The consent form could not be read.")
		return
	}
	form := r.PostForm
	id, csrf, action := form.Get("id"), form.Get("csrf"), form.Get("action")
	user := strings.TrimSpace(form.Get("user"))
	now := s.now()

	s.mu.Lock()
	p, ok := s.pending.Get(id)
	if ok && !now.Before(p.expires) {
		s.pending.Remove(id)
		ok = false
	}
	if !ok {
		s.mu.Unlock()
		s.refusePage(w, r, requestError(fmt.Sprintf("the consent request is unknown, expired (consent pages are valid for %s) or already answered", s.cfg.ConsentTTL)),
			"Request expired", "This authorization request has expired or was already answered. Start again from your application.")
		return
	}
	idAttr := slog.String("client_id", p.clientID)
	if subtle.ConstantTimeCompare([]byte(csrf), []byte(p.csrf)) != 1 {
		s.mu.Unlock()
		ref := refused(http.StatusForbidden, "invalid_request", "the consent form's CSRF token is wrong")
		ref.warn = true
		s.refusePage(w, r, ref, "Forbidden", "The form's security token is not valid. Reload the application's login and try again.", idAttr)
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
		s.logRefusal(r, refused(http.StatusBadRequest, "invalid_request", "the user name is empty or not 1 to 64 letters, digits or . _ @ + -"), idAttr)
		s.renderConsent(w, http.StatusBadRequest, id, p, user, checked,
			"Enter a user name of 1 to 64 letters, digits or . _ @ + -")
		return
	}
	if action != "approve" && action != "deny" {
		s.mu.Unlock()
		s.refusePage(w, r, requestError("the consent form's action is neither approve nor deny"), "Invalid form", "Choose Approve or Deny.", idAttr)
		return
	}
	// The request is answered: it cannot be answered twice.
	s.pending.Remove(id)
	if action == "deny" || (len(granted) == 0 && len(p.scopes) > 0) {
		s.mu.Unlock()
		desc := "the user denied the request"
		if action == "approve" {
			desc = "the user approved no scopes"
		}
		s.logRefusal(r, refused(http.StatusSeeOther, "access_denied", desc), idAttr)
		s.redirect(w, r, p.redirectURI, url.Values{"error": {"access_denied"}, "error_description": {desc}}, p.state)
		return
	}
	code := newSecret()
	s.codes.DropOldestWhile(func(c *authCode) bool { return !now.Before(c.expires) })
	s.codes.Put(digest(code), &authCode{
		clientID:      p.clientID,
		redirectURI:   p.redirectURI,
		redirectGiven: p.redirectGiven,
		challenge:     p.challenge,
		scopes:        granted,
		user:          user,
		expires:       now.Add(s.cfg.CodeTTL),
		family:        randomString(12),
	})
	s.lastUser.Put(p.clientID, user)
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
		s.refusePage(w, r, refused(http.StatusInternalServerError, "server_error", "the redirect URI does not parse"), "Internal error", "The redirect URI is invalid.")
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
