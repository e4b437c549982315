package introspect

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// TestIdPClaimMapping runs each identity provider's introspection fixture
// (testdata/idp, written from public documentation knowledge; see each
// file's _fixture_note) through Verify and checks how sub, scope, aud and
// exp land in the TokenInfo.
//
// Providers without a fixture, on purpose:
//   - Auth0: offers no RFC 7662 introspection endpoint for its access
//     tokens (they are JWTs meant to be verified locally against the
//     tenant's JWKS), so there is no answer shape to test.
//
// WorkOS AuthKit does document an introspection endpoint
// (/oauth2/introspection, credentials in the body): see workos.json.
func TestIdPClaimMapping(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		issuer    string
		audiences []string // default testResource
		now       int64
		sub       string
		scopes    []string
		aud       []string
		exp       int64
	}{
		{name: "Okta", file: "okta.json", issuer: "https://example.okta.com/oauth2/default", now: 1451603000,
			sub: "john.doe@example.com", scopes: []string{"openid", "profile", "op:add"}, aud: []string{testResource}, exp: 1451606400},
		{name: "Keycloak", file: "keycloak.json", issuer: "https://keycloak.example.com/realms/mcp", now: 1700000100,
			sub: "f1b3c1d2-5e6f-4a7b-8c9d-0e1f2a3b4c5d", scopes: []string{"openid", "email", "profile", "op:add", "op:div"},
			aud: []string{testResource, "account"}, exp: 1700000300},
		{name: "Ory Hydra", file: "hydra.json", issuer: "https://hydra.example.com", now: 1700000100,
			sub: "alice@example.com", scopes: []string{"openid", "offline", "op:add", "op:sub"}, aud: []string{testResource}, exp: 1700000300},
		{name: "PropelAuth", file: "propelauth.json", issuer: "https://auth.example.com", now: 1700000100,
			sub: "2a5c6f7e-8b9d-4c1e-a2f3-b4c5d6e7f809", scopes: []string{"openid", "email", "op:add", "op:mult"}, aud: []string{testResource}, exp: 1700003600},
		{name: "Stytch", file: "stytch.json", issuer: "https://login.example.com", now: 1700000100,
			audiences: []string{"project-live-6f1c1d6e-0d3b-4a7e-9c55-2f1f3b7d8e90"},
			sub:       "user-live-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", scopes: []string{"openid", "email", "op:add", "op:div"},
			aud: []string{"project-live-6f1c1d6e-0d3b-4a7e-9c55-2f1f3b7d8e90"}, exp: 1700003600},
		{name: "WorkOS AuthKit", file: "workos.json", issuer: "https://example.authkit.app", now: 1700000100,
			audiences: []string{"client_01HZZZZZZZZZZZZZZZZZZZZZZZ"},
			sub:       "user_01HAAAAAAAAAAAAAAAAAAAAAAA", scopes: []string{},
			aud: []string{"client_01HZZZZZZZZZZZZZZZZZZZZZZZ"}, exp: 1700000300},
		{name: "Ory Network", file: "ory-network.json", issuer: "https://musing-mcnulty-abc123.projects.oryapis.com/", now: 1700000100,
			sub: "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b", scopes: []string{"offline_access", "op:mult"}, aud: []string{testResource}, exp: 1700000900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "idp", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			srv := introspecttest.New(t)
			srv.SetFailure(respond(200, map[string]string{"Content-Type": "application/json"}, string(body)))
			v, clk := newTestVerifier(t, srv, func(c *Config) {
				c.Issuer = tt.issuer
				if tt.audiences != nil {
					c.Audiences = tt.audiences
				}
			})
			clk.ns.Store(time.Unix(tt.now, 0).UnixNano())
			info, err := v.Verify(t.Context(), "fixture-token")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if info.UserID != tt.sub || info.Extra["sub"] != tt.sub {
				t.Errorf("UserID = %q, Extra[sub] = %v, want %q", info.UserID, info.Extra["sub"], tt.sub)
			}
			if !slices.Equal(info.Scopes, tt.scopes) {
				t.Errorf("Scopes = %q, want %q", info.Scopes, tt.scopes)
			}
			if aud, _ := info.Extra["aud"].([]string); !slices.Equal(aud, tt.aud) {
				t.Errorf("Extra[aud] = %#v, want %q", info.Extra["aud"], tt.aud)
			}
			if !info.Expiration.Equal(time.Unix(tt.exp, 0)) {
				t.Errorf("Expiration = %v, want %d", info.Expiration, tt.exp)
			}
			// And once exp is reached the same answer is refused.
			clk.ns.Store(time.Unix(tt.exp, 0).UnixNano())
			if _, err := v.Verify(t.Context(), "fixture-token"); reasonOf(err) != accesstoken.ReasonExpired {
				t.Errorf("at exp: err = %v, want expired", err)
			}
		})
	}
}
