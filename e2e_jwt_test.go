package main

// End-to-end tests of JWT access tokens (RFC 9068, issue 14): the whole
// gateway started by run() with AUTH_ISSUER_URL alone (no introspection
// credentials), in front of jwtaccesstest's issuer, and in auto mode in
// front of an issuer that also introspects.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

// metric returns the value of one series of the gateway's /metrics (0 when
// absent). series is the exposition text up to the value, e.g.
// `mcp_gateway_jwks_fetches_total{outcome="ok"}`.
func metric(t *testing.T, g *gatewayUnderTest, series string) float64 {
	t.Helper()
	resp, err := http.Get(g.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJWTIssuerAloneIsAProductionConfiguration(t *testing.T) {
	iss := jwtaccesstest.New(t)
	g := startGateway(t, map[string]string{"AUTH_ISSUER_URL": iss.URL})
	waitReady(t, g)

	tok := iss.AccessToken("alice", []string{"op:add"}, g.Resource, time.Hour)
	// Through the Go SDK's client.
	cs := mcpClient(t, g, tok)
	res, err := calc(cs, "add", 6, 3)
	if err != nil || res.IsError {
		t.Fatalf("add with a JWT: %v %+v\nlogs:\n%s", err, res, g.Logs)
	}
	who, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil || who.IsError || !strings.Contains(fmt.Sprint(who.StructuredContent), "alice") {
		t.Errorf("whoami: %v %+v", err, who)
	}
	// Step-up works the same.
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "divide"), bearer(tok)); r.Status != http.StatusForbidden {
		t.Errorf("divide without op:div: %d, want 403", r.Status)
	}
	for _, tt := range []struct {
		name, token, reason string
	}{
		{"opaque token", "2YotnFZFEjr1zCsicMWpAA", "format"},
		{"another audience", iss.AccessToken("alice", []string{"op:add"}, "https://other.example/mcp", time.Hour), "audience"},
		{"expired", iss.AccessToken("alice", []string{"op:add"}, g.Resource, -time.Hour), "expired"},
		{"forged with the issuer's kid", jwtaccesstest.NewKey(t, jose.RS256, iss.Key().KID).Sign(t, iss.Claims("mallory", []string{"op"}, g.Resource, time.Hour)), "signature"},
		{"typ JWT (JWT_REQUIRE_AT_TYP defaults to true)", iss.Token(iss.Claims("alice", []string{"op:add"}, g.Resource, time.Hour), jwtaccesstest.Typ("JWT")), "token_type"},
	} {
		r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tt.token))
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tt.name, r.Status)
			continue
		}
		ch := challenge(t, r)
		if ch.Params["error"] != "invalid_token" || !strings.Contains(ch.Params["error_description"], tt.reason) {
			t.Errorf("%s: challenge %v, want invalid_token (%s)", tt.name, ch.Params, tt.reason)
		}
		if strings.Contains(string(r.Body), tt.token) || strings.Contains(g.Logs.String(), tt.token) {
			t.Errorf("%s: the token was echoed or logged", tt.name)
		}
	}
	if v := metric(t, g, `mcp_gateway_token_validations_total{result="accepted",validator="jwt"}`); v != 1 {
		t.Errorf("jwt accepted validations %v, want 1 (the rest are cache hits)", v)
	}
	if v := metric(t, g, `mcp_gateway_token_validations_total{result="refused",validator="jwt"}`); v != 5 {
		t.Errorf("jwt refused validations %v, want 5", v)
	}
	if v := metric(t, g, `mcp_gateway_jwks_fetches_total{outcome="ok"}`); v < 1 {
		t.Errorf("jwks fetches ok %v", v)
	}
	if v := metric(t, g, `mcp_gateway_introspection_calls_total{outcome="active"}`); v != 0 {
		t.Errorf("introspection calls %v without credentials", v)
	}
	if !strings.Contains(g.Logs.String(), `"token_validation":"auto","jwt_only":true`) {
		t.Errorf("the start-up log does not say every token must be a JWT:\n%s", g.Logs)
	}
}

func TestJWTGatewayOptions(t *testing.T) {
	iss := jwtaccesstest.New(t)
	rsKey := iss.Key()
	iss.Rotate(jose.ES256) // both keys published
	g := startGateway(t, map[string]string{
		"AUTH_ISSUER_URL":    iss.URL,
		"JWT_REQUIRE_AT_TYP": "false",
		"JWT_ALGORITHMS":     "ES256",
		"TOKEN_VALIDATION":   "jwt",
	})
	waitReady(t, g)
	// RS256 is not allowed: a token signed with the issuer's RSA key is refused.
	rs := rsKey.Sign(t, iss.Claims("alice", []string{"op:add"}, g.Resource, time.Hour), jwtaccesstest.Typ("JWT"))
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(rs)); r.Status != http.StatusUnauthorized {
		t.Errorf("RS256 with JWT_ALGORITHMS=ES256: %d", r.Status)
	}
	// ES256 with typ JWT is accepted (JWT_REQUIRE_AT_TYP=false).
	es := iss.Token(iss.Claims("alice", []string{"op:add"}, g.Resource, time.Hour), jwtaccesstest.Typ("JWT"))
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(es)); r.Status != http.StatusOK {
		t.Errorf("ES256 typ JWT: %d %s", r.Status, r.Body)
	}
}

// The JWKS endpoint down at start: /readyz fails and a JWT gets 503 (never
// 401); once it is back, the gateway recovers without a restart.
func TestJWKSDownAtStart(t *testing.T) {
	iss := jwtaccesstest.New(t)
	var down atomic.Bool
	down.Store(true)
	iss.SetJWKSFailure(func(w http.ResponseWriter, _ *http.Request) bool {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	g := startGateway(t, map[string]string{"AUTH_ISSUER_URL": iss.URL, "JWKS_MIN_REFRESH": "1s"})
	resp, err := http.Get(g.BaseURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("/readyz is 200 while the JWKS cannot be fetched")
	}
	tok := iss.AccessToken("alice", []string{"op:add"}, g.Resource, time.Hour)
	r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok))
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("JWT with the JWKS down: %d (Retry-After %q), want 503", r.Status, r.Header.Get("Retry-After"))
	}
	down.Store(false)
	waitReady(t, g)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != http.StatusOK {
		t.Errorf("after the JWKS came back: %d %s", r.Status, r.Body)
	}
}

// Auto mode with credentials in front of an IdP that issues both: JWTs are
// verified locally, opaque tokens introspected; JWT_INTROSPECT makes a
// revoked JWT refused within CACHE_MAX_TTL.
func TestAutoModeMixedTokens(t *testing.T) {
	var jwks atomic.Pointer[string]
	as := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		if u := jwks.Load(); u != nil {
			md["jwks_uri"] = *u
		}
	}))
	iss := jwtaccesstest.New(t, jwtaccesstest.WithIssuerURL(as.URL))
	u := iss.JWKSURL()
	jwks.Store(&u)
	for _, jwtIntrospect := range []bool{false, true} {
		t.Run(fmt.Sprintf("JWT_INTROSPECT=%v", jwtIntrospect), func(t *testing.T) {
			_, g := externalASWith(t, as, map[string]string{"JWT_INTROSPECT": strconv.FormatBool(jwtIntrospect), "CACHE_MAX_TTL": "1s"})
			jt := iss.AccessToken("alice", []string{"op:add"}, g.Resource, time.Hour)
			as.AddToken(jt, map[string]any{"iss": as.URL, "sub": "alice", "aud": g.Resource, "scope": "op:add", "exp": time.Now().Add(time.Hour).Unix()})
			opaque := as.Issue("bob", []string{"op:add"}, g.Resource, time.Hour)
			before := as.Calls()
			for _, tok := range []string{jt, opaque} {
				if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != http.StatusOK {
					t.Fatalf("status %d %s", r.Status, r.Body)
				}
			}
			want := int64(1)
			if jwtIntrospect {
				want = 2
			}
			if n := as.Calls() - before; n != want {
				t.Errorf("introspection calls %d, want %d", n, want)
			}
			as.Revoke(jt)
			deadline := time.Now().Add(5 * time.Second)
			for {
				r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(jt))
				if !jwtIntrospect {
					if r.Status != http.StatusOK {
						t.Errorf("a revoked JWT without JWT_INTROSPECT: %d (it cannot be revoked before exp)", r.Status)
					}
					break
				}
				if r.Status == http.StatusUnauthorized {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("revoked JWT still accepted with JWT_INTROSPECT=true: %d", r.Status)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// externalASWith is externalAS for an existing server.
func externalASWith(t *testing.T, as *introspecttest.Server, extra map[string]string) (*introspecttest.Server, *gatewayUnderTest) {
	t.Helper()
	vars := map[string]string{
		"AUTH_ISSUER_URL":             as.URL,
		"INTROSPECTION_CLIENT_ID":     as.ClientID,
		"INTROSPECTION_CLIENT_SECRET": as.ClientSecret,
	}
	for k, v := range extra {
		vars[k] = v
	}
	g := startGateway(t, vars)
	waitReady(t, g)
	return as, g
}

// floodUnknownKIDs sends n requests, concurrently, each with a JWT signed
// by a key the issuer never published (a distinct kid each), and checks
// every one is refused with 401.
func floodUnknownKIDs(t *testing.T, g *gatewayUnderTest, iss string, n int) {
	t.Helper()
	key := jwtaccesstest.NewKey(t, jose.ES256, "x")
	toks := make([]string, n)
	for i := range toks {
		k := *key
		k.KID = fmt.Sprintf("unknown-%d", i)
		toks[i] = k.Sign(t, map[string]any{"iss": iss, "sub": "eve", "aud": g.Resource, "exp": time.Now().Add(time.Hour).Unix()})
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	work := make(chan string)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	for range 32 {
		wg.Go(func() {
			for tok := range work {
				req, _ := http.NewRequest(http.MethodPost, g.MCP(), strings.NewReader(fmt.Sprintf(callAdd, "add")))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					bad.Add(1)
				}
			}
		})
	}
	for _, tok := range toks {
		work <- tok
	}
	close(work)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d of %d unknown-kid tokens were not refused with 401", bad.Load(), n)
	}
}

func TestUnknownKIDFloodBoundedJWKSFetches(t *testing.T) {
	iss := jwtaccesstest.New(t)
	g := startGateway(t, map[string]string{"AUTH_ISSUER_URL": iss.URL, "JWKS_MIN_REFRESH": "1s"})
	waitReady(t, g)
	before, start := iss.JWKSCalls(), time.Now()
	floodUnknownKIDs(t, g, iss.URL, 1000)
	fetches := iss.JWKSCalls() - before
	allowed := 1 + int64(time.Since(start)/time.Second)
	t.Logf("1000 unknown kids in %v: %d JWKS fetches", time.Since(start).Round(time.Millisecond), fetches)
	if fetches > allowed {
		t.Errorf("1000 tokens with unknown kids caused %d JWKS fetches, want at most %d", fetches, allowed)
	}
}
