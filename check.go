package main

// The configuration doctor: `mcp-gateway check` reads the same environment
// as the server and checks, one line each, that the gateway can work with
// its authorization server, printing a concrete fix for every failure. It
// never prints the introspection client secret or a token.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/internal/redact"
	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/prm"
	"github.com/mcp-gateway/mcp-gateway/scopes"
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
func runCheck(ctx context.Context, args []string, lookup LookupEnv, stdout io.Writer) error {
	if len(args) > 0 {
		return &configError{problems: []string{fmt.Sprintf("check takes no arguments, got %q: it reads the same environment variables as the server", args)}}
	}
	r := newReport(stdout)
	switch code := doctor(ctx, r, lookup); code {
	case checkReady:
		return nil
	case checkInvalid:
		return &configError{problems: r.problems, reported: true}
	default:
		return &checkFailedError{failures: r.failures}
	}
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

// doctor runs every check in order and returns the exit status. It only
// reports: what it knows about the authorization server and a token comes
// from the verifier's own discovery and introspection (introspect's
// DiscoverMetadata and Verifier.Inspect), so it cannot drift from what the
// gateway does.
func doctor(ctx context.Context, r *report, lookup LookupEnv) int {
	// 1. The configuration parses.
	cfg, err := loadConfig(lookup)
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
	r.ok("tool policy: %s; tools named: %s; scopes needed: %s", cfg.PolicySource, orNone(cfg.Policy.Tools()), orNone(cfg.Policy.Scopes()))
	checkTracing(ctx, r, cfg) // check_tracing.go

	// 1b. Proxy mode: the upstream MCP server.
	if cfg.UpstreamURL != "" {
		checkUpstream(ctx, r, cfg)
	}

	// 2. Development mode.
	if cfg.DevMode {
		r.warn("development mode: AUTH_ISSUER_URL is unset, so the embedded development authorization server issues and introspects tokens; there is nothing external to check")
		r.detail("development mode has no real login and is not for production: set AUTH_ISSUER_URL, INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET (docs/identity-providers.md)")
		if tok, _ := lookup(checkTokenEnv); strings.TrimSpace(tok) != "" {
			r.warn("%s is set but not checked: development tokens live in the running gateway's memory, which the doctor cannot see", checkTokenEnv)
			r.fix("start the gateway (go run .) and call the whoami tool with the token, or mint one on the token page, %s", "http://localhost:<PORT>/dev-auth/")
		}
		return r.summary()
	}
	r.ok("authorization server: AUTH_ISSUER_URL=%s", cfg.IssuerURL)

	// 3. The resource URL.
	resourceSet := cfg.ResourceURL != ""
	cfg.resolveResource(cfg.Port)
	checkResourceURL(r, cfg.ResourceURL, resourceSet)

	client := &http.Client{
		Timeout:       cfg.IntrospectionTimeout,
		CheckRedirect: urlrule.NoRedirects,
	}
	defer client.CloseIdleConnections()

	// 4. How tokens are validated, and what that means for revocation.
	mode := checkMode(r, cfg)

	// 5. Issuer metadata: the one fetch of this run.
	md, declared := checkIssuerMetadata(ctx, r, client, cfg, mode.Introspects)

	// 6. The verifier the server would build: introspection credentials
	// at the endpoint it would use, and the JWKS it would verify JWTs with.
	endpoint := cfg.IntrospectionURL
	if endpoint == "" && md != nil {
		endpoint = md.IntrospectionEndpoint
	}
	ic := introspectConfig(cfg, client, endpoint)
	jwksURL := ""
	if mode.JWT {
		jwksURL = checkJWKSURL(r, cfg, md, mode)
		ic.JWKSURL = jwksURL
		if cfg.JWKSURL == "" && md != nil {
			// As the server: the exact issuer tokens must name is the
			// one the metadata declares (RFC 9068 §4).
			ic.Issuer = md.Issuer
		}
	}
	var v *introspect.Verifier
	switch {
	case mode.Introspects && endpoint == "" && (!mode.JWT || jwksURL == ""):
		r.fail("introspection credentials: not checked: the introspection endpoint is unknown (see the issuer metadata check), and INTROSPECTION_URL is unset")
	case !mode.Introspects && jwksURL == "":
		// checkJWKSURL said why.
	default:
		if v, err = introspect.New(ctx, ic); err != nil {
			r.fail("token verification: the verifier cannot be built: %v", err)
			v = nil
			break
		}
		defer v.Close()
		if mode.Introspects {
			if endpoint == "" {
				r.fail("introspection credentials: not checked: the introspection endpoint is unknown (see the issuer metadata check), and INTROSPECTION_URL is unset")
			} else {
				checkCredentials(ctx, r, v, cfg)
			}
		}
		if mode.JWT && jwksURL != "" {
			checkJWKS(ctx, r, v, cfg)
		}
	}

	// 7. Protected resource metadata.
	checkPRM(r, cfg, declared)

	// 7b. Redis, the admin API and Shared Signals (check_shared.go).
	checkShared(ctx, r, cfg)

	// 8. A real token, if the operator gave one.
	if tok, _ := lookup(checkTokenEnv); strings.TrimSpace(tok) != "" && v != nil {
		checkToken(ctx, r, v, cfg, strings.TrimSpace(tok))
	} else if v != nil {
		r.detail("tip: set %s to a real access token (from Claude's or your IdP's token endpoint) to check whether the gateway would accept it", checkTokenEnv)
	}
	return r.summary()
}

// introspectConfig is the verifier configuration the server builds, with
// the doctor's HTTP client, the endpoint it found, and no cache worth
// keeping.
func introspectConfig(cfg *config, client *http.Client, endpoint string) introspect.Config {
	ic := cfg.introspectConfig()
	ic.Endpoint = endpoint
	ic.CacheMaxTTL = time.Second
	ic.CacheNegativeTTL = -1
	ic.CacheMaxBytes = 1 << 20
	ic.StaleIfError = 0
	ic.RefusalRate = 0
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

// checkIssuerMetadata is check 4. It returns the metadata the gateway would
// accept (or nil), and the issuer the metadata found declares ("" when
// none was found).
func checkIssuerMetadata(ctx context.Context, r *report, client *http.Client, cfg *config, introspects bool) (*introspect.ServerMetadata, string) {
	ctx, cancel := context.WithTimeout(ctx, cfg.IntrospectionTimeout)
	defer cancel()
	md, err := introspect.DiscoverMetadata(ctx, client, cfg.IssuerURL)
	var de *introspect.DiscoveryError
	switch {
	case err == nil:
		r.ok("issuer metadata: %s answered", md.URL)
		if md.Issuer == cfg.IssuerURL {
			r.ok("issuer: the metadata declares %q, equal to AUTH_ISSUER_URL", md.Issuer)
		} else {
			// The gateway tolerates one trailing slash (urlrule.SameIssuer);
			// clients comparing exactly do not.
			r.fail("issuer: the metadata declares %q, AUTH_ISSUER_URL is %q: they differ only by a trailing slash, but clients compare issuers exactly (RFC 8414 §3.3) and AUTH_ISSUER_URL is what the protected resource metadata advertises", md.Issuer, cfg.IssuerURL)
			r.fix("set AUTH_ISSUER_URL=%s", md.Issuer)
		}
	case !errors.As(err, &de) || de.Err != nil:
		r.fail("issuer metadata: cannot fetch the metadata of %s: %v", cfg.IssuerURL, err)
		r.fix("check that AUTH_ISSUER_URL is right and that this machine can reach it (DNS, firewall, TLS certificate); INTROSPECTION_TIMEOUT=%s bounds each call", cfg.IntrospectionTimeout)
		return nil, ""
	case de.FoundAt == "":
		r.fail("issuer metadata: no RFC 8414 or OpenID metadata for %s; tried %s", cfg.IssuerURL, strings.Join(de.Tried, ", "))
		r.fix("AUTH_ISSUER_URL must be the exact issuer of your IdP (the \"issuer\" in its /.well-known/openid-configuration); see docs/identity-providers.md")
		return nil, ""
	default:
		r.ok("issuer metadata: %s answered", de.FoundAt)
		if de.DeclaredIssuer == "" {
			r.fail("issuer: the document at %s has no \"issuer\": it is not authorization server metadata", de.FoundAt)
			r.fix("set AUTH_ISSUER_URL to your IdP's issuer (docs/identity-providers.md)")
		} else {
			r.fail("issuer: the metadata at %s declares %q, but AUTH_ISSUER_URL is %q; the gateway refuses metadata for another issuer (RFC 8414 §3.3)", de.FoundAt, de.DeclaredIssuer, cfg.IssuerURL)
			r.fix("if %q is your IdP, set AUTH_ISSUER_URL=%s; otherwise AUTH_ISSUER_URL points at the wrong server", de.DeclaredIssuer, de.DeclaredIssuer)
		}
		if cfg.IntrospectionURL != "" {
			r.ok("introspection_endpoint: INTROSPECTION_URL=%s", cfg.IntrospectionURL)
		} else {
			r.detail("introspection_endpoint: the gateway will not use metadata it refused (see above)")
		}
		return nil, de.DeclaredIssuer
	}

	// introspection_endpoint
	switch ep := md.IntrospectionEndpoint; {
	case !introspects:
		r.ok("introspection_endpoint: not used (no introspection credentials: tokens are verified locally as JWTs)")
	case cfg.IntrospectionURL != "" && ep != "" && ep != cfg.IntrospectionURL:
		r.warn("introspection_endpoint: INTROSPECTION_URL=%s is used; the metadata advertises %s", cfg.IntrospectionURL, ep)
	case cfg.IntrospectionURL != "":
		r.ok("introspection_endpoint: INTROSPECTION_URL=%s", cfg.IntrospectionURL)
	case ep != "":
		r.ok("introspection_endpoint: %s (discovered)", ep)
	default:
		r.fail("introspection_endpoint: the metadata has none and INTROSPECTION_URL is unset")
		r.fix("set INTROSPECTION_URL to your IdP's RFC 7662 endpoint; if your IdP has none (Auth0, WorkOS), verify its JWT access tokens locally instead: unset INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET (docs/identity-providers.md)")
	}
	if methods := md.IntrospectionEndpointAuthMethodsSupported; introspects && len(methods) > 0 && !slices.Contains(methods, cfg.IntrospectionAuthMethod) {
		r.warn("introspection_endpoint_auth_methods_supported is %v, without INTROSPECTION_AUTH_METHOD=%s", methods, cfg.IntrospectionAuthMethod)
		r.fix("set INTROSPECTION_AUTH_METHOD=%s", methods[0])
	}

	// registration_endpoint
	if md.RegistrationEndpoint != "" {
		r.ok("registration_endpoint: %s (dynamic client registration)", md.RegistrationEndpoint)
	} else {
		r.warn("registration_endpoint: absent: Claude needs dynamic client registration (RFC 7591) or a client you pre-register")
		r.fix("enable dynamic client registration at your IdP, or pre-register a client with redirect URI https://claude.ai/api/mcp/auth_callback and enter its client id (and secret) in Claude's connector settings")
	}

	// PKCE
	if slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
		r.ok("code_challenge_methods_supported includes S256 (PKCE)")
	} else {
		r.warn("code_challenge_methods_supported does not list S256: MCP clients require PKCE with S256 and may refuse this authorization server")
		r.fix("enable PKCE (S256) for the clients at your IdP; if it already is, the metadata just does not say so")
	}

	// scopes
	if sup := md.ScopesSupported; len(sup) == 0 {
		r.warn("scopes_supported: the metadata lists none, so the scopes %s cannot be confirmed", strings.Join(cfg.ScopesSupported, " "))
		r.fix("make sure these scopes exist at your IdP: %s", strings.Join(cfg.ScopesSupported, " "))
	} else if missing := missingFrom(cfg.ScopesSupported, sup); len(missing) > 0 {
		r.warn("scopes_supported lacks %s (SCOPES_SUPPORTED=%q)", strings.Join(missing, " "), strings.Join(cfg.ScopesSupported, " "))
		r.fix("create these scopes at your IdP: %s (some IdPs do not list custom scopes in their metadata: then verify in the IdP's console)", strings.Join(missing, " "))
	} else {
		r.ok("scopes_supported covers %s", strings.Join(cfg.ScopesSupported, " "))
	}
	return md, md.Issuer
}

// checkCredentials is check 5: introspect a random token. The authorization
// server must answer active:false (or reject the token); a 401 means the
// credentials are wrong.
func checkCredentials(ctx context.Context, r *report, v *introspect.Verifier, cfg *config) {
	who := fmt.Sprintf("INTROSPECTION_CLIENT_ID=%q, INTROSPECTION_CLIENT_SECRET set (%d characters), INTROSPECTION_AUTH_METHOD=%s",
		cfg.IntrospectionClientID, len(cfg.IntrospectionSecret), cfg.IntrospectionAuthMethod)
	err := v.Inspect(ctx, randomToken()).Err
	var (
		invalid    *accesstoken.InvalidError
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
		r.fix("check that %s is reachable from here and is the RFC 7662 introspection endpoint", v.Endpoint())
	case err == nil:
		r.fail("introspection: %s said a random token is active: this is not an RFC 7662 endpoint that can be trusted", v.Endpoint())
	default:
		r.fail("introspection credentials: %v", err)
	}
}

// checkPRM is check 6: the protected resource metadata the gateway will
// serve, and its consistency with the issuer metadata.
func checkPRM(r *report, cfg *config, declaredIssuer string) {
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
	case declaredIssuer == "":
		r.warn("authorization_servers[0]=%q: not compared, the issuer metadata was not found", doc.AuthorizationServers[0])
	case declaredIssuer == doc.AuthorizationServers[0]:
		r.ok("authorization_servers[0]=%q is the issuer the metadata declares", doc.AuthorizationServers[0])
	default:
		r.fail("authorization_servers[0]=%q, but the authorization server declares %q: clients that check RFC 8414 §3.3 will refuse it", doc.AuthorizationServers[0], declaredIssuer)
		r.fix("set AUTH_ISSUER_URL=%s", declaredIssuer)
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

// checkToken is check 7: have the verifier inspect the operator's token,
// show what the authorization server says about it (never the token), and
// say whether the gateway would accept it and why not.
func checkToken(ctx context.Context, r *report, v *introspect.Verifier, cfg *config, token string) {
	in := v.Inspect(ctx, token)
	var (
		invalid    *accesstoken.InvalidError
		clientAuth *introspect.ClientAuthError
	)
	how := "introspected"
	if in.Validator == introspect.ValidatorJWT {
		how = "verified locally as a JWT: " + jwtHeaderSummary(token)
	}
	switch {
	case in.Err == nil:
		r.ok("CHECK_TOKEN: the gateway would accept this token (%s)", how)
		printClaims(r, in)
		// The scope policy decides (a parent scope such as "op" covers
		// "op:add"), exactly as for a request.
		var missing []string
		for _, s := range cfg.ScopesSupported {
			if !scopes.Satisfies(in.Claims.Scopes, s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			r.warn("CHECK_TOKEN lacks the scope(s) %s: calls needing them get 403 insufficient_scope (the client then asks for them)", strings.Join(missing, " "))
		}
	case errors.As(in.Err, &invalid):
		r.fail("CHECK_TOKEN: the gateway would refuse this token: %v (%s)", in.Err, how)
		printClaims(r, in)
		explainRefusal(r, cfg, invalid, in.Claims)
		if in.Validator == introspect.ValidatorJWT {
			explainJWTRefusal(r, cfg, string(invalid.Reason), in, token)
		}
	case errors.As(in.Err, &clientAuth):
		r.fail("CHECK_TOKEN: not checked: the introspection credentials were rejected (see above)")
	default:
		r.fail("CHECK_TOKEN: not checked: %v", in.Err)
	}
}

// printClaims shows what the authorization server said about a token (or
// what a JWT says of itself), without the token and with the subject
// hashed as the request log does.
func printClaims(r *report, in *introspect.Inspection) {
	c := in.Claims
	if c == nil {
		var invalid *accesstoken.InvalidError
		if errors.As(in.Err, &invalid) && invalid.Reason == accesstoken.ReasonInactive {
			r.detail("the authorization server says: active=false")
		}
		return
	}
	exp := "absent"
	if c.HasExp {
		t := time.Unix(c.Exp, 0)
		exp = fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), time.Until(t).Round(time.Second))
	}
	aud := "absent"
	if c.HasAud {
		aud = fmt.Sprintf("%q", c.Aud)
	}
	sub := "(no sub)"
	if c.Sub != "" {
		sub = redact.Subject(c.Sub)
	}
	if in.Validator == introspect.ValidatorJWT {
		r.detail("the JWT says: iss=%q aud=%s scope=%q exp=%s subject_hash=%s client=%q",
			c.Iss, aud, strings.Join(c.Scopes, " "), exp, sub, c.Client())
		return
	}
	r.detail("the authorization server says: active=true aud=%s scope=%q exp=%s subject_hash=%s client_id=%q token_type=%q",
		aud, strings.Join(c.Scopes, " "), exp, sub, c.Client(), c.TokenType)
}

// explainRefusal turns a refusal reason into a fix.
func explainRefusal(r *report, cfg *config, e *accesstoken.InvalidError, c *accesstoken.Claims) {
	switch e.Reason {
	case accesstoken.ReasonInactive, accesstoken.ReasonRejected:
		r.fix("the authorization server does not know this token as an active access token: it expired, was revoked, or was issued by another server than AUTH_ISSUER_URL=%s; get a fresh token", cfg.IssuerURL)
	case accesstoken.ReasonExpired:
		r.fix("the token has expired; get a fresh one")
	case accesstoken.ReasonNotYetValid:
		r.fix("the token's nbf is in the future: check this machine's clock (CLOCK_SKEW=%s)", cfg.ClockSkew)
	case accesstoken.ReasonIssuer:
		iss := "?"
		if c != nil {
			iss = c.Iss
		}
		r.fix("the token's iss is %q, not AUTH_ISSUER_URL=%s: the token comes from another issuer (or another tenant/authorization server of your IdP)", iss, cfg.IssuerURL)
	case accesstoken.ReasonTokenType:
		if c != nil || !strings.Contains(e.Detail, "typ") {
			r.fix("this is not an access token (a refresh or ID token?): paste the access_token")
		}
	case accesstoken.ReasonAudience:
		if c == nil || !c.HasAud || len(c.Aud) == 0 {
			r.fix("the token carries no aud: make your IdP put %q in aud (docs/identity-providers.md), or, only if it cannot, set ALLOW_MISSING_AUDIENCE=true", cfg.ResourceURL)
			return
		}
		x := c.Aud[0]
		r.fix("the token carries aud %q: set MCP_RESOURCE_URL to %s (if that is this server's public URL) or add %s to ACCEPTED_AUDIENCES, or make your IdP put %s in aud", strings.Join(c.Aud, " "), x, x, cfg.ResourceURL)
	}
}

// missingFrom returns the elements of want that have lacks.
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

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, " ")
}
