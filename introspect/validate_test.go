package introspect

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

// jwtAS is an authorization server that both introspects (introspecttest)
// and issues JWTs (jwtaccesstest), with one metadata document naming the
// introspection endpoint and the jwks_uri, as real IdPs have.
type jwtAS struct {
	*introspecttest.Server
	jwt *jwtaccesstest.Issuer
}

func newJWTAS(t testing.TB, opts ...jwtaccesstest.Option) *jwtAS {
	t.Helper()
	var jwks atomic.Pointer[string]
	as := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		if u := jwks.Load(); u != nil {
			md["jwks_uri"] = *u
		}
	}))
	iss := jwtaccesstest.New(t, append([]jwtaccesstest.Option{jwtaccesstest.WithIssuerURL(as.URL)}, opts...)...)
	u := iss.JWKSURL()
	jwks.Store(&u)
	return &jwtAS{Server: as, jwt: iss}
}

// newJWTVerifier is a Verifier of as in the given mode; credentials only
// when creds.
func newJWTVerifier(t testing.TB, as *jwtAS, creds bool, mods ...func(*Config)) (*Verifier, *fakeClock, *countingObserver) {
	t.Helper()
	obs := newCountingObserver()
	v, clk := newTestVerifier(t, as.Server, append([]func(*Config){func(c *Config) {
		c.Endpoint = "" // discovered, with the jwks_uri
		c.Observer = obs
		c.ClockSkew = 30 * time.Second // the fake clock started before the tokens' iat
		if !creds {
			c.ClientID, c.ClientSecret = "", ""
		}
	}}, mods...)...)
	return v, clk, obs
}

func TestJWTOnlyWithoutCredentials(t *testing.T) {
	as := newJWTAS(t)
	v, clk, obs := newJWTVerifier(t, as, false)
	if m := v.Mode(); !m.JWTOnly || m.Introspects {
		t.Fatalf("mode %+v: auto without credentials must mean jwt", m)
	}
	if err := v.Ready(t.Context()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	tok := as.jwt.AccessToken("alice", []string{"op:add"}, testResource, time.Hour)
	info, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if info.UserID != "alice" || info.Extra["client_id"] != "test-client" || strings.Join(info.Scopes, " ") != "op:add" {
		t.Errorf("info %+v", info)
	}
	v.Wait()
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if obs.hits.Load() != 1 || obs.validated("jwt/accepted") != 1 {
		t.Errorf("hits %d, jwt validations %d: a verified JWT must be cached", obs.hits.Load(), obs.validated("jwt/accepted"))
	}
	// Past CACHE_MAX_TTL it is verified again (locally).
	clk.Advance(DefaultCacheMaxTTL + time.Second)
	if _, err := v.Verify(t.Context(), tok); err != nil || obs.validated("jwt/accepted") != 2 {
		t.Errorf("after CacheMaxTTL: %v, %d validations", err, obs.validated("jwt/accepted"))
	}
	// An opaque token: 401 without asking anyone.
	_, err = v.Verify(t.Context(), "2YotnFZFEjr1zCsicMWpAA")
	if reasonOf(err) != accesstoken.ReasonFormat {
		t.Errorf("opaque token: %v, want format", err)
	}
	// Unknown kid: signature.
	_, err = v.Verify(t.Context(), as.jwt.Token(as.jwt.Claims("a", nil, testResource, time.Hour), jwtaccesstest.Header("kid", "other")))
	if reasonOf(err) != accesstoken.ReasonSignature {
		t.Errorf("unknown kid: %v, want signature", err)
	}
	// A refusal after the key was found is cached negatively.
	bad := as.jwt.AccessToken("alice", nil, "https://other.example/mcp", time.Hour)
	for range 2 {
		if _, err := v.Verify(t.Context(), bad); reasonOf(err) != accesstoken.ReasonAudience {
			t.Errorf("wrong audience: %v", err)
		}
		v.Wait()
	}
	if n := obs.validated("jwt/refused"); n != 3 { // format, signature, audience once
		t.Errorf("jwt refusals counted %d, want 3", n)
	}
	if as.Calls() != 0 {
		t.Errorf("%d introspection calls without credentials", as.Calls())
	}
	if as.DiscoveryCalls() != 1 {
		t.Errorf("%d discoveries, want 1", as.DiscoveryCalls())
	}
	// Inspect: the JWT verdict, with claims, without the cache.
	in := v.Inspect(t.Context(), tok)
	if in.Err != nil || in.Validator != ValidatorJWT || in.Claims == nil || in.Claims.Sub != "alice" {
		t.Errorf("Inspect %+v", in)
	}
	in = v.Inspect(t.Context(), bad)
	if reasonOf(in.Err) != accesstoken.ReasonAudience || in.Claims == nil {
		t.Errorf("Inspect of a wrong audience %+v", in)
	}
}

func TestAutoWithCredentials(t *testing.T) {
	as := newJWTAS(t)
	v, _, obs := newJWTVerifier(t, as, true)
	// A JWT of the issuer: verified locally, no introspection.
	if _, err := v.Verify(t.Context(), as.jwt.AccessToken("alice", []string{"op:add"}, testResource, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if as.Calls() != 0 || obs.validated("jwt/accepted") != 1 {
		t.Errorf("introspection calls %d, jwt validations %d", as.Calls(), obs.validated("jwt/accepted"))
	}
	// A JWT with a known kid and a bad signature: refused locally, final.
	forged := jwtaccesstest.NewKey(t, jose.RS256, as.jwt.Key().KID).Sign(t, as.jwt.Claims("mallory", []string{"op"}, testResource, time.Hour))
	if _, err := v.Verify(t.Context(), forged); reasonOf(err) != accesstoken.ReasonSignature || as.Calls() != 0 {
		t.Errorf("forged: %v, %d introspection calls", err, as.Calls())
	}
	// An opaque token is introspected.
	opaque := as.Issue("bob", []string{"op:add"}, testResource, time.Hour)
	if info, err := v.Verify(t.Context(), opaque); err != nil || info.UserID != "bob" || as.Calls() != 1 {
		t.Errorf("opaque: %v %+v, %d calls", err, info, as.Calls())
	}
	// A JWT with an unknown kid is introspected (the AS does not know it).
	other := jwtaccesstest.NewKey(t, jose.ES256, "elsewhere").Sign(t, as.jwt.Claims("eve", nil, testResource, time.Hour))
	if _, err := v.Verify(t.Context(), other); reasonOf(err) != accesstoken.ReasonInactive || as.Calls() != 2 {
		t.Errorf("unknown kid: %v, %d calls", err, as.Calls())
	}
	// An alg outside the allowlist too.
	es384 := jwtaccesstest.NewKey(t, jose.ES384, "k").Sign(t, as.jwt.Claims("eve", nil, testResource, time.Hour))
	if _, err := v.Verify(t.Context(), es384); reasonOf(err) != accesstoken.ReasonInactive || as.Calls() != 3 {
		t.Errorf("ES384: %v, %d calls", err, as.Calls())
	}
	if as.DiscoveryCalls() != 1 {
		t.Errorf("%d discoveries, want one for both the endpoint and the jwks_uri", as.DiscoveryCalls())
	}
	if obs.validated("introspection/accepted") != 1 || obs.validated("introspection/refused") != 2 {
		t.Errorf("introspection validations %v", obs.validations)
	}
}

// A local verification takes no introspection slot and is not charged to
// the client's rate of unknown tokens.
func TestJWTNotRateLimited(t *testing.T) {
	as := newJWTAS(t)
	v, _, _ := newJWTVerifier(t, as, true, func(c *Config) { c.RefusalRate = 1; c.RefusalBurst = 1; c.ClientConcurrency = 1; c.MaxConcurrency = 1 })
	release := holdAnswers(as.Server)
	defer close(release)
	ctx := WithClient(t.Context(), "192.0.2.1")
	for i := range 20 {
		if _, err := v.Verify(ctx, as.jwt.AccessToken("alice", nil, testResource, time.Hour)); err != nil {
			t.Fatalf("JWT %d: %v", i, err)
		}
	}
}

// JWT_INTROSPECT: a JWT verified locally is introspected too, so a
// revocation at the AS is noticed within CacheMaxTTL.
func TestJWTIntrospect(t *testing.T) {
	as := newJWTAS(t)
	v, clk, obs := newJWTVerifier(t, as, true, func(c *Config) { c.JWTIntrospect = true })
	tok := as.jwt.AccessToken("alice", []string{"op:add"}, testResource, time.Hour)
	as.AddToken(tok, map[string]any{"iss": as.URL, "sub": "alice", "aud": testResource, "scope": "op:add", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if as.Calls() != 1 || obs.validated("jwt/accepted") != 1 || obs.validated("introspection/accepted") != 1 {
		t.Errorf("calls %d, validations %v", as.Calls(), obs.validations)
	}
	as.Revoke(tok)
	clk.Advance(DefaultCacheMaxTTL + time.Second)
	if _, err := v.Verify(t.Context(), tok); reasonOf(err) != accesstoken.ReasonInactive {
		t.Errorf("revoked JWT after CacheMaxTTL: %v, want inactive", err)
	}
	// A forged JWT never reaches the AS.
	forged := jwtaccesstest.NewKey(t, jose.RS256, as.jwt.Key().KID).Sign(t, as.jwt.Claims("m", nil, testResource, time.Hour))
	before := as.Calls()
	if _, err := v.Verify(t.Context(), forged); reasonOf(err) != accesstoken.ReasonSignature || as.Calls() != before {
		t.Errorf("forged with JWT_INTROSPECT: %v, %d calls", err, as.Calls()-before)
	}
}

// JWT mode when the JWKS cannot be fetched: 503, never 401 or 200; Ready
// says why.
func TestJWKSUnavailable(t *testing.T) {
	as := newJWTAS(t)
	as.jwt.SetJWKSFailure(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	})
	v, _, obs := newJWTVerifier(t, as, false, func(c *Config) { c.Validation = ValidationJWT })
	if err := v.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "JWKS") {
		t.Errorf("Ready with the JWKS down: %v", err)
	}
	_, err := v.Verify(t.Context(), as.jwt.AccessToken("alice", nil, testResource, time.Hour))
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Errorf("JWT with the JWKS down: %v, want *UnavailableError", err)
	}
	if got := obs.jwksOutcomes(); len(got) == 0 || got[0] != "status" {
		t.Errorf("JWKS outcomes %v", got)
	}
}

// The metadata has no jwks_uri: auto with credentials introspects JWTs
// too; jwt mode cannot work and says so.
func TestNoJWKSURI(t *testing.T) {
	as := introspecttest.New(t)
	iss := jwtaccesstest.New(t, jwtaccesstest.WithIssuerURL(as.URL))
	tok := iss.AccessToken("alice", nil, testResource, time.Hour)
	v, _ := newTestVerifier(t, as, func(c *Config) { c.Endpoint = "" })
	if _, err := v.Verify(t.Context(), tok); reasonOf(err) != accesstoken.ReasonInactive || as.Calls() != 1 {
		t.Errorf("JWT without a jwks_uri: %v, %d calls, want introspected", err, as.Calls())
	}
	j, _ := newTestVerifier(t, as, func(c *Config) { c.Endpoint = ""; c.ClientID, c.ClientSecret = "", "" })
	if err := j.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "jwks_uri") {
		t.Errorf("Ready in jwt mode without a jwks_uri: %v", err)
	}
	var ue *UnavailableError
	if _, err := j.Verify(t.Context(), tok); !errors.As(err, &ue) {
		t.Errorf("jwt mode without a jwks_uri: %v, want unavailable", err)
	}
	// JWKS_URL configured: no discovery needed for it.
	k, _ := newTestVerifier(t, as, func(c *Config) {
		c.ClientID, c.ClientSecret = "", ""
		c.JWKSURL = iss.JWKSURL()
	})
	before := as.DiscoveryCalls()
	if _, err := k.Verify(context.Background(), tok); err != nil {
		t.Errorf("with JWKS_URL: %v", err)
	}
	if as.DiscoveryCalls() != before {
		t.Error("JWKS_URL set, yet the metadata was fetched")
	}
}

// Introspection mode never verifies locally, JWT or not.
func TestIntrospectionModeIgnoresJWTs(t *testing.T) {
	as := newJWTAS(t)
	v, _, obs := newJWTVerifier(t, as, true, func(c *Config) { c.Validation = ValidationIntrospection })
	tok := as.jwt.AccessToken("alice", nil, testResource, time.Hour)
	if _, err := v.Verify(t.Context(), tok); reasonOf(err) != accesstoken.ReasonInactive || as.Calls() != 1 {
		t.Errorf("%v, %d calls", err, as.Calls())
	}
	if obs.validated("jwt/accepted")+obs.validated("jwt/refused") != 0 || as.jwt.JWKSCalls() != 0 {
		t.Error("introspection mode verified locally")
	}
}
