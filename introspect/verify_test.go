package introspect

import (
	"errors"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

func TestVerifyActiveAndCacheHit(t *testing.T) {
	srv := introspecttest.New(t)
	v, _ := newTestVerifier(t, srv)
	tok := srv.Issue("alice", []string{"op:add", "op:div"}, testResource, time.Hour)

	info, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if info.UserID != "alice" {
		t.Errorf("UserID = %q, want alice", info.UserID)
	}
	if !slices.Equal(info.Scopes, []string{"op:add", "op:div"}) {
		t.Errorf("Scopes = %q", info.Scopes)
	}
	if d := time.Until(info.Expiration); d < 59*time.Minute || d > time.Hour {
		t.Errorf("Expiration %v is not ~1h away", info.Expiration)
	}
	for _, k := range []string{"sub", "client_id", "aud"} {
		if _, ok := info.Extra[k]; !ok {
			t.Errorf("Extra[%q] missing; Extra = %v", k, info.Extra)
		}
	}
	// Claims checked once at insert time are not kept in every cached entry.
	for _, k := range []string{"iss", "token_type", "exp", "iat"} {
		if _, ok := info.Extra[k]; ok {
			t.Errorf("Extra[%q] kept; Extra = %v", k, info.Extra)
		}
	}
	if aud, _ := info.Extra["aud"].([]string); !slices.Equal(aud, []string{testResource}) {
		t.Errorf(`Extra["aud"] = %#v`, info.Extra["aud"])
	}
	if _, ok := info.Extra["username"]; ok {
		t.Errorf(`Extra["username"] present though the answer had none`)
	}

	v.Wait()
	info2, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("second Verify: %v", err)
	}
	if !reflect.DeepEqual(info2, info) {
		t.Errorf("cache hit: %+v, want %+v", info2, info)
	}
	// Hits share one TokenInfo (made by the first), so that a hit
	// allocates nothing.
	if info3, err := v.Verify(t.Context(), tok); err != nil || info3 != info2 {
		t.Errorf("third Verify: %p, %v; want the second's %p", info3, err, info2)
	}
	if n := srv.Calls(); n != 1 {
		t.Errorf("server calls = %d, want 1 (second Verify should hit the cache)", n)
	}
}

// TestAMissKeepsNoExtraMap: the cache keeps a token's Extra map only once
// the token is used again, so that a flood of tokens used once leaves no
// map for the collector to mark (setInfo).
func TestAMissKeepsNoExtraMap(t *testing.T) {
	srv := introspecttest.New(t)
	v, clk := newTestVerifier(t, srv)
	tok := srv.Issue("alice", []string{"op:add"}, testResource, time.Hour)
	first, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	v.Wait()
	e, fresh := v.lookup(digestOf(tok), clk.Now())
	if e == nil || !fresh {
		t.Fatal("the accepted token is not cached")
	}
	if e.full.Load() != nil {
		t.Fatal("the miss left its TokenInfo, Extra map and all, in the cache")
	}
	hit, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("second Verify: %v", err)
	}
	if e.full.Load() != hit {
		t.Fatal("the hit's TokenInfo is not the one the entry keeps for later hits")
	}
	if !reflect.DeepEqual(hit, first) {
		t.Errorf("hit %+v, want what the miss returned, %+v", hit, first)
	}
}

func TestVerifyReasons(t *testing.T) {
	now := time.Now()
	base := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "u", "aud": testResource, "exp": now.Add(time.Hour).Unix(), "scope": "op:add"}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	tests := []struct {
		name   string
		claims map[string]any // nil: token unknown to the server
		token  string         // overrides the default token
		mod    func(*Config)
		want   accesstoken.Reason // "" means accepted
	}{
		{name: "unknown token", want: accesstoken.ReasonInactive},
		{name: "active false", claims: map[string]any{"active": false, "sub": "u", "aud": testResource}, want: accesstoken.ReasonInactive},
		{name: "ok", claims: base(nil)},
		{name: "expired", claims: base(map[string]any{"exp": now.Add(-time.Minute).Unix()}), want: accesstoken.ReasonExpired},
		{name: "expired within skew", claims: base(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}),
			mod: func(c *Config) { c.ClockSkew = 30 * time.Second }},
		{name: "no exp accepted", claims: base(map[string]any{"exp": nil})},
		{name: "nbf future", claims: base(map[string]any{"nbf": now.Add(time.Minute).Unix()}), want: accesstoken.ReasonNotYetValid},
		{name: "nbf within skew", claims: base(map[string]any{"nbf": now.Add(10 * time.Second).Unix()}),
			mod: func(c *Config) { c.ClockSkew = 30 * time.Second }},
		{name: "aud wrong", claims: base(map[string]any{"aud": "https://other.example.com/mcp"}), want: accesstoken.ReasonAudience},
		{name: "aud trailing slash differs", claims: base(map[string]any{"aud": testResource + "/"}), want: accesstoken.ReasonAudience},
		{name: "aud array contains", claims: base(map[string]any{"aud": []string{"x", testResource}})},
		{name: "aud array without", claims: base(map[string]any{"aud": []string{"x", "y"}}), want: accesstoken.ReasonAudience},
		{name: "aud empty array", claims: base(map[string]any{"aud": []string{}}), want: accesstoken.ReasonAudience},
		{name: "aud normalised", claims: base(map[string]any{"aud": "HTTPS://MCP.Example.COM:443/%6dcp"})},
		{name: "aud missing", claims: base(map[string]any{"aud": nil}), want: accesstoken.ReasonAudience},
		{name: "aud missing allowed", claims: base(map[string]any{"aud": nil}), mod: func(c *Config) { c.AllowMissingAudience = true }},
		{name: "aud wrong though missing allowed", claims: base(map[string]any{"aud": "nope"}),
			mod: func(c *Config) { c.AllowMissingAudience = true }, want: accesstoken.ReasonAudience},
		{name: "aud non-URI exact", claims: base(map[string]any{"aud": "api://default"}),
			mod: func(c *Config) { c.Audiences = []string{"api://default"} }},
		{name: "aud number is malformed", claims: base(map[string]any{"aud": 42}), want: accesstoken.ReasonInactive},
		{name: "iss mismatch", claims: base(map[string]any{"iss": "https://evil.example.com"}), want: accesstoken.ReasonIssuer},
		{name: "iss check disabled", claims: base(map[string]any{"iss": "https://evil.example.com"}),
			mod: func(c *Config) { c.Issuer = "" }},
		{name: "refresh token_type", claims: base(map[string]any{"token_type": "refresh_token"}), want: accesstoken.ReasonTokenType},
		{name: "keycloak typ Refresh", claims: base(map[string]any{"typ": "Refresh"}), want: accesstoken.ReasonTokenType},
		{name: "keycloak typ ID", claims: base(map[string]any{"typ": "ID"}), want: accesstoken.ReasonTokenType},
		{name: "keycloak typ Bearer", claims: base(map[string]any{"typ": "Bearer"})},
		{name: "token_use id_token", claims: base(map[string]any{"token_use": "id_token"}), want: accesstoken.ReasonTokenType},
		{name: "token_use refresh_token", claims: base(map[string]any{"token_use": "refresh_token"}), want: accesstoken.ReasonTokenType},
		{name: "token_use access_token", claims: base(map[string]any{"token_use": "access_token", "token_type": "bearer"})},
		{name: "string exp fails closed", claims: base(map[string]any{"exp": "1999999999"}), want: accesstoken.ReasonInactive},
		{name: "empty token", token: "\x00empty", want: accesstoken.ReasonMalformed},
		{name: "token too long", token: strings.Repeat("a", accesstoken.MaxLength+1), want: accesstoken.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := introspecttest.New(t)
			mods := []func(*Config){func(c *Config) { c.Issuer = srv.URL }}
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			v, _ := newTestVerifier(t, srv, mods...)
			tok := "token-" + strings.ReplaceAll(tt.name, " ", "-")
			switch {
			case tt.token == "\x00empty":
				tok = ""
			case tt.token != "":
				tok = tt.token
			}
			if tt.claims != nil {
				srv.AddToken(tok, tt.claims)
			}
			info, err := v.Verify(t.Context(), tok)
			if got := reasonOf(err); got != tt.want {
				t.Fatalf("Verify reason = %q (err %v), want %q", got, err, tt.want)
			}
			if tt.want == "" {
				if info == nil {
					t.Fatal("nil TokenInfo for an accepted token")
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("errors.Is(err, auth.ErrInvalidToken) = false for %v", err)
			}
			if info != nil {
				t.Errorf("TokenInfo %v returned with an error", info)
			}
			if tt.want == accesstoken.ReasonMalformed && srv.Calls() != 0 {
				t.Errorf("malformed token was sent to the server")
			}
		})
	}
}

func TestRejectedBy400(t *testing.T) {
	for _, code := range []string{"unsupported_token_type", "invalid_request", "invalid_token"} {
		t.Run(code, func(t *testing.T) {
			srv := introspecttest.New(t)
			srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"` + code + `"}`))
				return true
			})
			v, _ := newTestVerifier(t, srv)
			_, err := v.Verify(t.Context(), "tok")
			if reasonOf(err) != accesstoken.ReasonRejected || !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("err = %v, want accesstoken.InvalidError{rejected}", err)
			}
			// A verdict about the token: cached as a negative.
			v.Wait()
			if _, err := v.Verify(t.Context(), "tok"); reasonOf(err) != accesstoken.ReasonRejected {
				t.Fatalf("second err = %v", err)
			}
			if n := srv.Calls(); n != 1 {
				t.Errorf("calls = %d, want 1", n)
			}
		})
	}
}

// TestExpiryRecheckedOnHit: exp and nbf are evaluated against the clock on
// every cache hit, not only when the answer was fetched.
func TestExpiryRecheckedOnHit(t *testing.T) {
	t.Run("expired on hit", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, clk := newTestVerifier(t, srv, func(c *Config) {
			c.ClockSkew = 10 * time.Second
			c.CacheNegativeTTL = time.Minute
		})
		// Already 5s past exp but within the 10s skew: accepted, and cached
		// (as an entry whose exp is rechecked) for CacheNegativeTTL.
		srv.AddToken("tok", map[string]any{"aud": testResource, "exp": clk.Now().Add(-5 * time.Second).Unix()})
		if _, err := v.Verify(t.Context(), "tok"); err != nil {
			t.Fatalf("Verify within skew: %v", err)
		}
		v.Wait()
		clk.Advance(6 * time.Second)
		if _, err := v.Verify(t.Context(), "tok"); reasonOf(err) != accesstoken.ReasonExpired {
			t.Fatalf("after exp+skew: err = %v, want expired", err)
		}
		if n := srv.Calls(); n != 1 {
			t.Errorf("calls = %d, want 1 (expiry must be decided from the cache)", n)
		}
	})
	t.Run("nbf reached on hit", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, clk := newTestVerifier(t, srv, func(c *Config) { c.ClockSkew = 30 * time.Second })
		srv.AddToken("tok", map[string]any{"aud": testResource, "nbf": clk.Now().Add(60 * time.Second).Unix()})
		if _, err := v.Verify(t.Context(), "tok"); reasonOf(err) != accesstoken.ReasonNotYetValid {
			t.Fatalf("err = %v, want not_yet_valid", err)
		}
		v.Wait()
		clk.Advance(31 * time.Second)
		if _, err := v.Verify(t.Context(), "tok"); err != nil {
			t.Fatalf("after nbf-skew: %v", err)
		}
		if n := srv.Calls(); n != 1 {
			t.Errorf("calls = %d, want 1", n)
		}
	})
	t.Run("active entry lives min(exp, max ttl)", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, clk := newTestVerifier(t, srv, func(c *Config) { c.CacheMaxTTL = time.Minute })
		tok := srv.Issue("u", nil, testResource, time.Hour)
		for i, adv := range []time.Duration{0, 59 * time.Second, 2 * time.Second} {
			clk.Advance(adv)
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			v.Wait()
		}
		// Calls: first fetch, hit at +59s, refetch at +61s.
		if n := srv.Calls(); n != 2 {
			t.Errorf("calls = %d, want 2", n)
		}
	})
}

func TestRevocationNoticedAfterMaxTTL(t *testing.T) {
	srv := introspecttest.New(t)
	v, clk := newTestVerifier(t, srv, func(c *Config) { c.CacheMaxTTL = 10 * time.Second })
	tok := srv.Issue("u", nil, testResource, time.Hour)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	v.Wait()
	srv.Revoke(tok)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("within max TTL the cached answer is used: %v", err)
	}
	clk.Advance(11 * time.Second)
	if _, err := v.Verify(t.Context(), tok); reasonOf(err) != accesstoken.ReasonInactive {
		t.Fatalf("after max TTL: err = %v, want inactive", err)
	}
}

func TestNegativeCache(t *testing.T) {
	t.Run("cached for NegativeTTL", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, clk := newTestVerifier(t, srv, func(c *Config) { c.CacheNegativeTTL = 5 * time.Second })
		for range 3 {
			if _, err := v.Verify(t.Context(), "unknown"); reasonOf(err) != accesstoken.ReasonInactive {
				t.Fatalf("err = %v", err)
			}
			v.Wait()
		}
		if n := srv.Calls(); n != 1 {
			t.Fatalf("calls = %d, want 1", n)
		}
		clk.Advance(5 * time.Second)
		srv.AddToken("unknown", map[string]any{"aud": testResource})
		if _, err := v.Verify(t.Context(), "unknown"); err != nil {
			t.Fatalf("after NegativeTTL: %v", err)
		}
		if n := srv.Calls(); n != 2 {
			t.Fatalf("calls = %d, want 2", n)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, _ := newTestVerifier(t, srv, func(c *Config) { c.CacheNegativeTTL = -1 })
		for range 3 {
			_, _ = v.Verify(t.Context(), "unknown")
			v.Wait()
		}
		if n := srv.Calls(); n != 3 {
			t.Fatalf("calls = %d, want 3", n)
		}
	})
	t.Run("claim failure cached", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, _ := newTestVerifier(t, srv)
		srv.AddToken("tok", map[string]any{"aud": "elsewhere"})
		for range 3 {
			if _, err := v.Verify(t.Context(), "tok"); reasonOf(err) != accesstoken.ReasonAudience {
				t.Fatalf("err = %v", err)
			}
			v.Wait()
		}
		if n := srv.Calls(); n != 1 {
			t.Fatalf("calls = %d, want 1", n)
		}
	})
}

func TestEntryResult(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		e    *entry
		skew time.Duration
		want accesstoken.Reason
	}{
		{"no times", &entry{accepted: true}, 0, ""},
		{"exp future", &entry{accepted: true, exp: instantOf(now.Add(time.Second))}, 0, ""},
		{"exp now", &entry{accepted: true, exp: instantOf(now)}, 0, accesstoken.ReasonExpired},
		{"exp now with skew", &entry{accepted: true, exp: instantOf(now)}, time.Second, ""},
		{"exp past skew", &entry{accepted: true, exp: instantOf(now.Add(-2 * time.Second))}, time.Second, accesstoken.ReasonExpired},
		{"nbf future", &entry{accepted: true, nbf: instantOf(now.Add(2 * time.Second))}, time.Second, accesstoken.ReasonNotYetValid},
		{"nbf within skew", &entry{accepted: true, nbf: instantOf(now.Add(time.Second))}, time.Second, ""},
		{"exp at the Unix epoch", &entry{accepted: true, exp: instantOf(time.Unix(0, 0))}, 0, accesstoken.ReasonExpired},
		{"exp before 1678", &entry{accepted: true, exp: instantOf(time.Unix(-1<<40, 0))}, 0, accesstoken.ReasonExpired},
		{"exp after 2262", &entry{accepted: true, exp: instantOf(time.Unix(1<<40, 0))}, 0, ""},
		{"nbf after 2262", &entry{accepted: true, nbf: instantOf(time.Unix(1<<40, 0))}, 0, accesstoken.ReasonNotYetValid},
		{"cached refusal", &entry{err: &accesstoken.InvalidError{Reason: accesstoken.ReasonIssuer}}, 0, accesstoken.ReasonIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.e.result(now, tt.skew)
			if reasonOf(err) != tt.want {
				t.Fatalf("reason = %q (%v), want %q", reasonOf(err), err, tt.want)
			}
			if tt.want != "" {
				return
			}
			// A hit hands out the entry's one TokenInfo, made once.
			if got == nil || got != tt.e.full.Load() {
				t.Fatalf("info %p, want the entry's %p", got, tt.e.full.Load())
			}
			if again, _ := tt.e.result(now, tt.skew); again != got {
				t.Fatal("a second hit made another TokenInfo")
			}
		})
	}
}

// TestInstant: an entry's times survive the round trip to nanoseconds,
// none stays none, and nothing set turns into none.
func TestInstant(t *testing.T) {
	for _, tt := range []struct {
		in   time.Time
		want time.Time
	}{
		{time.Time{}, time.Time{}},
		{time.Unix(1_700_000_000, 123), time.Unix(1_700_000_000, 123)},
		{time.Unix(-5, 0), time.Unix(-5, 0)},
		{time.Unix(0, 0), time.Unix(0, 1)},
		{time.Unix(1<<40, 0), time.Unix(0, math.MaxInt64)},
		{time.Unix(-1<<40, 0), time.Unix(0, math.MinInt64)},
	} {
		if got := instantOf(tt.in).Time(); !got.Equal(tt.want) || got.IsZero() != tt.in.IsZero() {
			t.Errorf("instantOf(%v).Time() = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestActiveTTL(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		exp  time.Time
		max  time.Duration
		want time.Duration
	}{
		{time.Time{}, time.Minute, time.Minute},
		{now.Add(time.Hour), time.Minute, time.Minute},
		{now.Add(10 * time.Second), time.Minute, 10 * time.Second},
		{now, time.Minute, 0},
		{now.Add(-time.Second), time.Minute, -time.Second},
	}
	for _, tt := range tests {
		if got := activeTTL(now, tt.exp, tt.max); got != tt.want {
			t.Errorf("activeTTL(exp=%v, max=%v) = %v, want %v", tt.exp, tt.max, got, tt.want)
		}
	}
}

// TestEntryPrincipal: revocations read who a cached entry is about from the
// entry itself (entry.principal, which makes no TokenInfo); it must be who
// PrincipalOf says the TokenInfo handed out for that entry is about.
func TestEntryPrincipal(t *testing.T) {
	known := newInterner([]string{"op:add"}, []string{testResource})
	for _, c := range []accesstoken.Claims{
		{Sub: "alice", Email: "alice@example.com", ClientID: "app", Aud: []string{testResource}, HasAud: true},
		{Username: "bob", Azp: "claude"},
		{Sub: "carol", Username: "c", ClientID: "app", Azp: "other"},
		{},
	} {
		e := &entry{}
		e.setInfo(&c, known)
		if got, want := e.principal(), PrincipalOf(e.newInfo()); got != want {
			t.Errorf("claims %+v: entry principal %+v, PrincipalOf its TokenInfo %+v", c, got, want)
		}
	}
}
