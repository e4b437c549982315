package jwtaccess_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/jwks"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

// idpFixture is a token as an identity provider documents it (header and
// claims, testdata/idp/*.json, each with a note on its source), the
// gateway configuration its recipe in docs/identity-providers.md gives,
// and what the gateway must read from it.
type idpFixture struct {
	Note   string         `json:"_fixture_note"`
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
	Config struct {
		Issuer               string   `json:"issuer"`
		Audiences            []string `json:"audiences"`
		RequireATTyp         bool     `json:"require_at_typ"`
		AllowMissingAudience bool     `json:"allow_missing_audience"`
	} `json:"config"`
	Want struct {
		Sub, Client, Scopes string
	} `json:"want"`
}

// TestIdPFixtures signs each documented token shape with a test key of the
// header's algorithm and kid, publishes that key in a JWKS, and verifies it
// with the recipe's configuration at a time within the token's life. It
// also checks that the recipe's settings are the ones that matter: with
// JWT_REQUIRE_AT_TYP=true an untyped token is refused, without the
// recipe's audience the token is refused.
func TestIdPFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "idp", "*.json"))
	if err != nil || len(files) < 9 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var fx idpFixture
			if err := json.Unmarshal(b, &fx); err != nil {
				t.Fatal(err)
			}
			if fx.Note == "" {
				t.Error("fixture without a _fixture_note saying where its shape comes from")
			}
			alg, _ := fx.Header["alg"].(string)
			kid, _ := fx.Header["kid"].(string)
			key := jwtaccesstest.NewKey(t, jose.SignatureAlgorithm(alg), kid)
			iss := jwtaccesstest.New(t, jwtaccesstest.WithKey(key), jwtaccesstest.WithIssuerURL(fx.Config.Issuer))
			var opts []jwtaccesstest.SignOption
			typ, _ := fx.Header["typ"].(string)
			opts = append(opts, jwtaccesstest.Typ(typ))
			for k, v := range fx.Header {
				if k != "alg" && k != "kid" && k != "typ" {
					opts = append(opts, jwtaccesstest.Header(k, v))
				}
			}
			token := key.Sign(t, fx.Claims, opts...)
			// The JWS header is exactly the documented one.
			var hdr map[string]any
			raw, _ := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			hb, _ := json.Marshal(raw.Signatures[0].Protected.ExtraHeaders)
			_ = json.Unmarshal(hb, &hdr)
			if (typ == "") != (hdr["typ"] == nil) {
				t.Fatalf("signed header %v, fixture header %v", hdr, fx.Header)
			}

			iat, _ := fx.Claims["iat"].(float64)
			now := time.Unix(int64(iat)+60, 0)
			verify := func(requireAT bool, audiences []string) error {
				v := newVerifier(t, iss, func(c *jwtaccess.Config, _ *jwks.KeySetConfig) {
					c.Issuer = fx.Config.Issuer
					c.Audiences = audiences
					c.AllowMissingAudience = fx.Config.AllowMissingAudience
					c.AllowGenericType = !requireAT
					c.Now = func() time.Time { return now }
				})
				cl, err := v.Verify(context.Background(), token)
				if err == nil {
					if cl.Sub != fx.Want.Sub || cl.Client() != fx.Want.Client || strings.Join(cl.Scopes, " ") != fx.Want.Scopes {
						t.Errorf("claims sub %q client %q scopes %q, want %+v", cl.Sub, cl.Client(), strings.Join(cl.Scopes, " "), fx.Want)
					}
				}
				return err
			}
			if err := verify(fx.Config.RequireATTyp, fx.Config.Audiences); err != nil {
				t.Fatalf("the recipe's configuration refuses the documented token: %v", err)
			}
			if !fx.Config.RequireATTyp {
				if got := verdict(verify(true, fx.Config.Audiences)); got != "token_type" {
					t.Errorf("with JWT_REQUIRE_AT_TYP=true: %s, want token_type (the recipe's false is needed)", got)
				}
			}
			if !fx.Config.AllowMissingAudience {
				if got := verdict(verify(fx.Config.RequireATTyp, []string{"https://other.example.com/mcp"})); got != "audience" {
					t.Errorf("for another resource: %s, want audience", got)
				}
			}
		})
	}
}
