package main

// The configuration doctor: `mcp-gateway check` reads the same environment
// as the server and checks, one line each, that the gateway can work with
// its authorization server, printing a concrete fix for every failure. It
// never prints the introspection client secret or a token.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/prm"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
)

// Exit statuses of `mcp-gateway check`.
const (
	checkReady   = 0 // every check passed (warnings allowed)
	checkFailed  = 1 // at least one check failed
	checkInvalid = 2 // the configuration does not parse
)

// checkTokenEnv names the optional variable holding a real access token for
// the doctor to introspect. The server never reads it.
const checkTokenEnv = "CHECK_TOKEN"

// checkFailedError is what run returns when a check failed: main exits 1.
type checkFailedError struct{ failures int }

func (e *checkFailedError) Error() string {
	return fmt.Sprintf("check: %d check(s) failed; see the FAIL lines above", e.failures)
}

// runCheck is `mcp-gateway check`, as dispatched by run. Its error makes
// main exit with the doctor's status: nil 0, *checkFailedError 1,
// *configError 2.
func runCheck(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return &configError{problems: []string{fmt.Sprintf("check takes no arguments, got %q: it reads the same environment variables as the server", args)}}
	}
	r := newReport(stdout)
	switch code := doctor(ctx, r, lookupEnv); code {
	case checkReady:
		return nil
	case checkInvalid:
		return &configError{problems: r.problems}
	default:
		return &checkFailedError{failures: r.failures}
	}
}

// check runs the doctor against the process environment and returns its
// exit status.
func check(ctx context.Context, stdout io.Writer) int {
	return doctor(ctx, newReport(stdout), lookupEnv)
}

// report prints the doctor's lines and counts the outcomes.
type report struct {
	w                  io.Writer
	failures, warnings int
	problems           []string // configuration problems, for the exit-2 error
}

func newReport(w io.Writer) *report { return &report{w: w} }

func (r *report) line(status, format string, args ...any) {
	fmt.Fprintf(r.w, "%-4s %s\n", status, fmt.Sprintf(format, args...))
}

func (r *report) ok(format string, args ...any) { r.line("ok", format, args...) }

func (r *report) warn(format string, args ...any) {
	r.warnings++
	r.line("warn", format, args...)
}

func (r *report) fail(format string, args ...any) {
	r.failures++
	r.line("FAIL", format, args...)
}

// detail prints an indented line under the previous one ("fix: ...",
// "note: ...").
func (r *report) detail(format string, args ...any) {
	fmt.Fprintf(r.w, "       %s\n", fmt.Sprintf(format, args...))
}

func (r *report) fix(format string, args ...any) { r.detail("fix: "+format, args...) }

func (r *report) summary() int {
	if r.failures > 0 {
		fmt.Fprintf(r.w, "\nNOT READY: %d check(s) failed, %d warning(s)\n", r.failures, r.warnings)
		return checkFailed
	}
	fmt.Fprintf(r.w, "\nREADY: all checks passed, %d warning(s)\n", r.warnings)
	return checkReady
}

// lookupEnv reads variables that are not part of the server's
// configuration (CHECK_TOKEN).
func lookupEnv(name string) string { return os.Getenv(name) }

// doctor runs every check in order and returns the exit status.
func doctor(ctx context.Context, r *report, getenv func(string) string) int {
	// 1. The configuration parses.
	cfg, err := loadConfig()
	if err != nil {
		var ce *configError
		if !errors.As(err, &ce) {
			ce = &configError{problems: []string{err.Error()}}
		}
		r.problems = ce.problems
		r.fail("configuration: %d problem(s); the server would refuse to start (exit status 2)", len(ce.problems))
		for _, p := range ce.problems {
			r.detail("- %s", p)
			if strings.HasPrefix(p, "MCP_RESOURCE_URL=") && strings.Contains(p, "must use https") {
				r.detail("  production needs https: Claude refuses http connectors; serve the gateway behind TLS (Fly.io does) and set MCP_RESOURCE_URL=https://<your host>/mcp")
			}
		}
		fmt.Fprintf(r.w, "\nINVALID CONFIGURATION: fix the problems above and run the check again\n")
		return checkInvalid
	}
	r.ok("configuration: every variable parses")

	// 2. Development mode.
	if cfg.DevMode {
		r.warn("development mode: AUTH_ISSUER_URL is unset, so the embedded development authorization server issues and introspects tokens; there is nothing external to check")
		r.detail("development mode has no real login and is not for production: set AUTH_ISSUER_URL, INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET (docs/identity-providers.md)")
		return r.summary()
	}
	r.ok("authorization server: AUTH_ISSUER_URL=%s", cfg.IssuerURL)

	// 3. The resource URL.
	resourceSet := cfg.ResourceURL != ""
	cfg.resolveResource(cfg.Port)
	checkResourceURL(r, cfg.ResourceURL, resourceSet)

	client := &http.Client{
		Timeout:       cfg.IntrospectionTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()

	// 4. Issuer metadata.
	md := checkIssuerMetadata(ctx, r, client, cfg)

	// 5. Introspection credentials.
	v, err := introspect.New(ctx, introspectConfig(cfg, client))
	if err != nil {
		r.fail("introspection: the verifier cannot be built: %v", err)
	} else {
		defer v.Close()
		checkCredentials(ctx, r, v, cfg, md)
	}

	// 6. Protected resource metadata.
	checkPRM(r, cfg, md)

	// 7. A real token, if the operator gave one.
	if tok := strings.TrimSpace(getenv(checkTokenEnv)); tok != "" && v != nil {
		checkToken(ctx, r, v, client, cfg, tok)
	} else if v != nil {
		r.detail("tip: set %s to a real access token (from Claude's or your IdP's token endpoint) to check whether the gateway would accept it", checkTokenEnv)
	}
	return r.summary()
}

// introspectConfig is the verifier configuration the server builds, with
// the doctor's HTTP client and no cache worth keeping.
func introspectConfig(cfg *config, client *http.Client) introspect.Config {
	ic := cfg.introspectConfig()
	ic.CacheMaxTTL = time.Second
	ic.CacheNegativeTTL = -1
	ic.CacheMaxBytes = 1 << 20
	ic.StaleIfError = 0
	ic.ClientRate = 0
	ic.HTTPClient = client
	return ic
}

// checkResourceURL is check 3: https unless loopback.
func checkResourceURL(r *report, resource string, set bool) {
	u, err := url.Parse(resource)
	if err != nil {
		r.fail("MCP_RESOURCE_URL=%q does not parse: %v", resource, err)
		return
	}
	switch {
	case !set:
		r.warn("MCP_RESOURCE_URL is unset: it defaults to %s, which only a client on this machine can use", resource)
		r.fix("set MCP_RESOURCE_URL to the public https URL Claude connects to, e.g. https://calc.example.com/mcp; it is also the audience tokens must carry")
	case u.Scheme == "https":
		r.ok("MCP_RESOURCE_URL=%s uses https", resource)
	case loopback.Host(u.Hostname()):
		r.warn("MCP_RESOURCE_URL=%s uses http on a loopback host: fine for local tests, but production needs https: Claude refuses http connectors", resource)
	default:
		r.fail("MCP_RESOURCE_URL=%s uses http: production needs https: Claude refuses http connectors", resource)
		r.fix("serve the gateway behind TLS and set MCP_RESOURCE_URL=https://%s%s", u.Host, u.EscapedPath())
	}
}

// probedMetadata is what the doctor learned from the issuer's metadata.
type probedMetadata struct {
	URL    string         // the metadata URL that answered
	Doc    map[string]any // the whole document
	Issuer string         // its "issuer"
	// Accepted is the gateway's own discovery result (nil when refused).
	Accepted *introspect.ServerMetadata
}

// probeMetadata fetches the first metadata document that answers 200, to
// say which URL answered and what it declares. tried lists the others.
func probeMetadata(ctx context.Context, client *http.Client, issuer string) (p *probedMetadata, tried []string, err error) {
	candidates, _ := introspect.MetadataURLs(issuer)
	for _, u := range candidates {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, tried, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, tried, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, tried, fmt.Errorf("reading %s: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			tried = append(tried, fmt.Sprintf("%s (HTTP %d)", u, resp.StatusCode))
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, tried, fmt.Errorf("%s answered 200 but not with a JSON metadata document: %v", u, err)
		}
		iss, _ := doc["issuer"].(string)
		return &probedMetadata{URL: u, Doc: doc, Issuer: iss}, tried, nil
	}
	return nil, tried, nil
}

// checkIssuerMetadata is check 4. It returns nil when no usable metadata
// was found.
func checkIssuerMetadata(ctx context.Context, r *report, client *http.Client, cfg *config) *probedMetadata {
	ctx, cancel := context.WithTimeout(ctx, cfg.IntrospectionTimeout)
	defer cancel()
	p, tried, err := probeMetadata(ctx, client, cfg.IssuerURL)
	if err != nil {
		r.fail("issuer metadata: cannot fetch the metadata of %s: %v", cfg.IssuerURL, err)
		r.fix("check that AUTH_ISSUER_URL is right and that this machine can reach it (DNS, firewall, TLS certificate); INTROSPECTION_TIMEOUT=%s bounds each call", cfg.IntrospectionTimeout)
		return nil
	}
	if p == nil {
		r.fail("issuer metadata: no RFC 8414 or OpenID metadata for %s; tried %s", cfg.IssuerURL, strings.Join(tried, ", "))
		r.fix("AUTH_ISSUER_URL must be the exact issuer of your IdP (the \"issuer\" in its /.well-known/openid-configuration); see docs/identity-providers.md")
		return nil
	}
	r.ok("issuer metadata: %s answered", p.URL)

	// The gateway's own discovery, for its verdict (it tolerates one
	// trailing slash; RFC 8414 §3.3 clients may not).
	accepted, derr := introspect.DiscoverMetadata(ctx, client, cfg.IssuerURL)
	switch {
	case p.Issuer == cfg.IssuerURL && derr == nil:
		r.ok("issuer: the metadata declares %q, equal to AUTH_ISSUER_URL", p.Issuer)
	case p.Issuer == cfg.IssuerURL:
		r.fail("issuer metadata: the gateway's discovery refused it: %v", derr)
	case p.Issuer != "" && strings.TrimSuffix(p.Issuer, "/") == strings.TrimSuffix(cfg.IssuerURL, "/"):
		r.fail("issuer: the metadata declares %q, AUTH_ISSUER_URL is %q: they differ only by a trailing slash, but clients compare issuers exactly (RFC 8414 §3.3) and AUTH_ISSUER_URL is what the protected resource metadata advertises", p.Issuer, cfg.IssuerURL)
		r.fix("set AUTH_ISSUER_URL=%s", p.Issuer)
	case p.Issuer == "":
		r.fail("issuer: the document at %s has no \"issuer\": it is not authorization server metadata", p.URL)
		r.fix("set AUTH_ISSUER_URL to your IdP's issuer (docs/identity-providers.md)")
	default:
		r.fail("issuer: the metadata at %s declares %q, but AUTH_ISSUER_URL is %q; the gateway refuses metadata for another issuer (RFC 8414 §3.3)", p.URL, p.Issuer, cfg.IssuerURL)
		r.fix("if %q is your IdP, set AUTH_ISSUER_URL=%s; otherwise AUTH_ISSUER_URL points at the wrong server", p.Issuer, p.Issuer)
	}
	p.Accepted = accepted

	// introspection_endpoint
	ep, _ := p.Doc["introspection_endpoint"].(string)
	switch {
	case accepted == nil && cfg.IntrospectionURL == "":
		r.detail("introspection_endpoint: %s is advertised, but the gateway will not use metadata it refused (see above)", orUnknown(ep))
	case cfg.IntrospectionURL != "" && ep != "" && ep != cfg.IntrospectionURL:
		r.warn("introspection_endpoint: INTROSPECTION_URL=%s is used; the metadata advertises %s", cfg.IntrospectionURL, ep)
	case cfg.IntrospectionURL != "":
		r.ok("introspection_endpoint: INTROSPECTION_URL=%s", cfg.IntrospectionURL)
	case ep != "":
		r.ok("introspection_endpoint: %s (discovered)", ep)
	default:
		r.fail("introspection_endpoint: the metadata has none and INTROSPECTION_URL is unset")
		r.fix("set INTROSPECTION_URL to your IdP's RFC 7662 endpoint; if your IdP has none (Auth0), this gateway cannot use it (docs/identity-providers.md)")
	}
	if methods := stringList(p.Doc["introspection_endpoint_auth_methods_supported"]); len(methods) > 0 && !slices.Contains(methods, cfg.IntrospectionAuthMethod) {
		r.warn("introspection_endpoint_auth_methods_supported is %v, without INTROSPECTION_AUTH_METHOD=%s", methods, cfg.IntrospectionAuthMethod)
		r.fix("set INTROSPECTION_AUTH_METHOD=%s", methods[0])
	}

	// registration_endpoint
	if reg, _ := p.Doc["registration_endpoint"].(string); reg != "" {
		r.ok("registration_endpoint: %s (dynamic client registration)", reg)
	} else {
		r.warn("registration_endpoint: absent: Claude needs dynamic client registration (RFC 7591) or a client you pre-register")
		r.fix("enable dynamic client registration at your IdP, or pre-register a client with redirect URI https://claude.ai/api/mcp/auth_callback and enter its client id (and secret) in Claude's connector settings")
	}

	// PKCE
	if pkce := stringList(p.Doc["code_challenge_methods_supported"]); slices.Contains(pkce, "S256") {
		r.ok("code_challenge_methods_supported includes S256 (PKCE)")
	} else {
		r.warn("code_challenge_methods_supported does not list S256: MCP clients require PKCE with S256 and may refuse this authorization server")
		r.fix("enable PKCE (S256) for the clients at your IdP; if it already is, the metadata just does not say so")
	}

	// scopes
	if sup := stringList(p.Doc["scopes_supported"]); len(sup) == 0 {
		r.warn("scopes_supported: the metadata lists none, so the scopes %s cannot be confirmed", strings.Join(cfg.ScopesSupported, " "))
		r.fix("make sure these scopes exist at your IdP: %s", strings.Join(cfg.ScopesSupported, " "))
	} else if missing := missingFrom(cfg.ScopesSupported, sup); len(missing) > 0 {
		r.warn("scopes_supported lacks %s (SCOPES_SUPPORTED=%q)", strings.Join(missing, " "), strings.Join(cfg.ScopesSupported, " "))
		r.fix("create these scopes at your IdP: %s (some IdPs do not list custom scopes in their metadata: then verify in the IdP's console)", strings.Join(missing, " "))
	} else {
		r.ok("scopes_supported covers %s", strings.Join(cfg.ScopesSupported, " "))
	}
	return p
}

// checkCredentials is check 5: introspect a random token. The authorization
// server must answer active:false (or reject the token); a 401 means the
// credentials are wrong.
func checkCredentials(ctx context.Context, r *report, v *introspect.Verifier, cfg *config, md *probedMetadata) {
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.IntrospectionTimeout) // discovery + introspection
	defer cancel()
	who := fmt.Sprintf("INTROSPECTION_CLIENT_ID=%q, INTROSPECTION_CLIENT_SECRET set (%d characters), INTROSPECTION_AUTH_METHOD=%s",
		cfg.IntrospectionClientID, len(cfg.IntrospectionSecret), cfg.IntrospectionAuthMethod)
	if cfg.IntrospectionURL == "" && (md == nil || md.Accepted == nil) {
		r.fail("introspection credentials: not checked: the introspection endpoint is unknown (see the issuer metadata check), and INTROSPECTION_URL is unset")
		return
	}
	_, err := v.Verify(ctx, randomToken())
	var (
		invalid    *introspect.InvalidTokenError
		clientAuth *introspect.ClientAuthError
		unavail    *introspect.UnavailableError
	)
	switch {
	case errors.As(err, &invalid):
		r.ok("introspection credentials: %s answered active:false for a random token (%s)", v.Endpoint(), who)
	case errors.As(err, &clientAuth):
		r.fail("introspection credentials: the authorization server rejected INTROSPECTION_CLIENT_ID/INTROSPECTION_CLIENT_SECRET (HTTP %d) at %s (%s)", clientAuth.StatusCode, v.Endpoint(), who)
		r.fix("check the secret, and INTROSPECTION_AUTH_METHOD (client_secret_basic vs client_secret_post); the client must be allowed to introspect tokens at your IdP")
	case errors.As(err, &unavail):
		r.fail("introspection credentials: not checked: %v", unavail.Err)
		r.fix("check that %s is reachable from here and is the RFC 7662 introspection endpoint", orUnknown(v.Endpoint()))
	case err == nil:
		r.fail("introspection: %s said a random token is active: this is not an RFC 7662 endpoint that can be trusted", v.Endpoint())
	default:
		r.fail("introspection credentials: %v", err)
	}
}

// checkPRM is check 6: the protected resource metadata the gateway will
// serve, and its consistency with the issuer metadata.
func checkPRM(r *report, cfg *config, md *probedMetadata) {
	doc, err := prm.NewMetadata(cfg.gatewayConfig().PRM())
	if err != nil {
		r.fail("protected resource metadata: %v", err)
		return
	}
	mdURL, err := prm.MetadataURL(doc.Resource)
	if err != nil {
		r.fail("protected resource metadata: %v", err)
		return
	}
	r.ok("protected resource metadata: %s has resource %q", mdURL, doc.Resource)
	switch {
	case md == nil || md.Issuer == "":
		r.warn("authorization_servers[0]=%q: not compared, the issuer metadata was not found", doc.AuthorizationServers[0])
	case md.Issuer == doc.AuthorizationServers[0]:
		r.ok("authorization_servers[0]=%q is the issuer the metadata declares", doc.AuthorizationServers[0])
	default:
		r.fail("authorization_servers[0]=%q, but the authorization server declares %q: clients that check RFC 8414 §3.3 will refuse it", doc.AuthorizationServers[0], md.Issuer)
		r.fix("set AUTH_ISSUER_URL=%s", md.Issuer)
	}
	if len(cfg.AcceptedAudiences) == 0 {
		r.detail("note: ACCEPTED_AUDIENCES is empty: access tokens must carry aud %q (RFC 8707 resource indicator; docs/identity-providers.md says how for each IdP)", doc.Resource)
	} else {
		r.detail("note: tokens are accepted with aud %q or any of %s", doc.Resource, strings.Join(cfg.AcceptedAudiences, ", "))
	}
	if cfg.AllowMissingAudience {
		r.warn("ALLOW_MISSING_AUDIENCE=true: tokens without aud are accepted, so a token your IdP issued for another service works here too")
	}
}

// tokenClaims is what the doctor shows of a token's introspection answer.
type tokenClaims struct {
	Active    bool
	Aud       []string
	HasAud    bool
	Scopes    []string
	Exp       int64
	Sub       string
	Iss       string
	TokenType string
	ClientID  string
}

// introspectRaw posts token to endpoint the way the verifier does and
// returns the parsed claims. It exists because the verifier only returns
// claims for accepted tokens, and the doctor must show why a token is not.
func introspectRaw(ctx context.Context, client *http.Client, cfg *config, endpoint, token string) (*tokenClaims, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if cfg.IntrospectionAuthMethod == introspect.AuthMethodClientSecretPost {
		form.Set("client_id", cfg.IntrospectionClientID)
		form.Set("client_secret", cfg.IntrospectionSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, errors.New("cannot build the introspection request")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if cfg.IntrospectionAuthMethod != introspect.AuthMethodClientSecretPost {
		req.SetBasicAuth(url.QueryEscape(cfg.IntrospectionClientID), url.QueryEscape(cfg.IntrospectionSecret))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection answered HTTP %d", resp.StatusCode)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("introspection answer is not JSON: %v", err)
	}
	c := &tokenClaims{}
	c.Active, _ = raw["active"].(bool)
	if a, ok := raw["aud"]; ok && a != nil {
		c.HasAud = true
		c.Aud = stringList(a)
	}
	switch s := raw["scope"].(type) {
	case string:
		c.Scopes = strings.Fields(s)
	default:
		c.Scopes = stringList(s)
	}
	switch e := raw["exp"].(type) {
	case float64:
		c.Exp = int64(e)
	case string:
		c.Exp, _ = strconv.ParseInt(e, 10, 64)
	}
	c.Sub, _ = raw["sub"].(string)
	c.Iss, _ = raw["iss"].(string)
	c.TokenType, _ = raw["token_type"].(string)
	c.ClientID, _ = raw["client_id"].(string)
	return c, nil
}

// checkToken is check 7: introspect the operator's token, show what the
// authorization server says about it (never the token), and say whether
// the gateway would accept it.
func checkToken(ctx context.Context, r *report, v *introspect.Verifier, client *http.Client, cfg *config, token string) {
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.IntrospectionTimeout)
	defer cancel()
	_, verr := v.Verify(ctx, token)
	var claims *tokenClaims
	if ep := v.Endpoint(); ep != "" {
		c, err := introspectRaw(ctx, client, cfg, ep, token)
		if err == nil {
			claims = c
		}
	}
	var (
		invalid    *introspect.InvalidTokenError
		clientAuth *introspect.ClientAuthError
	)
	switch {
	case verr == nil:
		r.ok("CHECK_TOKEN: the gateway would accept this token")
		printClaims(r, claims)
		if missing := missingFrom(cfg.ScopesSupported, scopesOf(claims)); len(missing) > 0 {
			r.warn("CHECK_TOKEN lacks the scope(s) %s: calculator operations needing them get 403 insufficient_scope (the client then asks for them)", strings.Join(missing, " "))
		}
	case errors.As(verr, &invalid):
		r.fail("CHECK_TOKEN: the gateway would refuse this token: %v", verr)
		printClaims(r, claims)
		explainRefusal(r, cfg, invalid, claims)
	case errors.As(verr, &clientAuth):
		r.fail("CHECK_TOKEN: not checked: the introspection credentials were rejected (see above)")
	default:
		r.fail("CHECK_TOKEN: not checked: %v", verr)
	}
}

// printClaims shows what the authorization server said about a token,
// without the token and with the subject hashed.
func printClaims(r *report, claims *tokenClaims) {
	if claims == nil {
		return
	}
	exp := "absent"
	if claims.Exp != 0 {
		t := time.Unix(claims.Exp, 0)
		exp = fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), time.Until(t).Round(time.Second))
	}
	aud := "absent"
	if claims.HasAud {
		aud = fmt.Sprintf("%q", claims.Aud)
	}
	r.detail("the authorization server says: active=%t aud=%s scope=%q exp=%s sub-sha256=%s client_id=%q token_type=%q",
		claims.Active, aud, strings.Join(claims.Scopes, " "), exp, subHash(claims.Sub), claims.ClientID, claims.TokenType)
}

// explainRefusal turns a refusal reason into a fix.
func explainRefusal(r *report, cfg *config, e *introspect.InvalidTokenError, c *tokenClaims) {
	switch e.Reason {
	case introspect.ReasonInactive, introspect.ReasonRejected:
		r.fix("the authorization server does not know this token as an active access token: it expired, was revoked, or was issued by another server than AUTH_ISSUER_URL=%s; get a fresh token", cfg.IssuerURL)
	case introspect.ReasonExpired:
		r.fix("the token has expired; get a fresh one")
	case introspect.ReasonNotYetValid:
		r.fix("the token's nbf is in the future: check this machine's clock (CLOCK_SKEW=%s)", cfg.ClockSkew)
	case introspect.ReasonIssuer:
		iss := "?"
		if c != nil {
			iss = c.Iss
		}
		r.fix("the token's iss is %q, not AUTH_ISSUER_URL=%s: the token comes from another issuer (or another tenant/authorization server of your IdP)", iss, cfg.IssuerURL)
	case introspect.ReasonTokenType:
		r.fix("this is not an access token (a refresh or ID token?): paste the access_token")
	case introspect.ReasonAudience:
		if c == nil || !c.HasAud || len(c.Aud) == 0 {
			r.fix("the token carries no aud: make your IdP put %q in aud (docs/identity-providers.md), or, only if it cannot, set ALLOW_MISSING_AUDIENCE=true", cfg.ResourceURL)
			return
		}
		x := c.Aud[0]
		r.fix("the token carries aud %q: set MCP_RESOURCE_URL to %s (if that is this server's public URL) or add %s to ACCEPTED_AUDIENCES, or make your IdP put %s in aud", strings.Join(c.Aud, " "), x, x, cfg.ResourceURL)
	}
}

func scopesOf(c *tokenClaims) []string {
	if c == nil {
		return nil
	}
	return c.Scopes
}

// stringList reads a JSON string or array of strings.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return x
	}
	return nil
}

// missingFrom returns the elements of want that have is lacks.
func missingFrom(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// randomToken is a 256-bit token no authorization server has issued.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// subHash identifies a subject without printing it.
func subHash(sub string) string {
	if sub == "" {
		return "(no sub)"
	}
	h := sha256.Sum256([]byte(sub))
	return hex.EncodeToString(h[:6])
}

func orUnknown(s string) string {
	if s == "" {
		return "the introspection endpoint"
	}
	return s
}
