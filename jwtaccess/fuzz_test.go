package jwtaccess

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/claimsref"
	"github.com/mcp-gateway/mcp-gateway/jwks"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

const fuzzResource = "https://mcp.example.com/mcp"

// FuzzVerifyJWT: whatever a client sends as a token, Verify does not panic,
// never echoes the token in an error, and accepts only what the issuer's
// key signed with an allowed algorithm and whose claims pass every check,
// confirmed here independently of Verify's own code path.
func FuzzVerifyJWT(f *testing.F) {
	iss := jwtaccesstest.New(f)
	ks, err := jwks.NewKeySet(jwks.KeySetConfig{URL: iss.JWKSURL()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(ks.Close)
	if err := ks.Refresh(context.Background()); err != nil {
		f.Fatal(err)
	}
	v, err := New(Config{Issuer: iss.URL, Audiences: []string{fuzzResource}, Keys: ks, ClockSkew: 30 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	good := iss.AccessToken("alice", []string{"op:add"}, fuzzResource, time.Hour)
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(iss.Token(iss.Claims("bob", nil, fuzzResource, time.Hour), jwtaccesstest.NoKID()))
	f.Add(iss.Token(iss.Claims("bob", nil, "https://other.example", time.Hour)))
	f.Add(iss.Token(map[string]any{"iss": iss.URL, "aud": fuzzResource, "exp": 1e10, "nonce": "x"}))
	f.Add(jwtaccesstest.NewKey(f, jose.ES256, "key-1").Sign(f, iss.Claims("eve", nil, fuzzResource, time.Hour)))
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add(parts[0] + "." + parts[1] + "." + parts[2] + ".x.y")
	f.Add("opaque-token")
	f.Fuzz(func(t *testing.T, token string) {
		cl, err := v.Verify(context.Background(), token)
		if err != nil {
			if len(token) > 8 && strings.Contains(err.Error(), token) {
				t.Fatalf("error echoes the token: %v", err)
			}
			return
		}
		// Accepted: check it independently.
		jws, perr := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
		if perr != nil {
			t.Fatalf("accepted a token go-jose cannot parse as RS256: %v", perr)
		}
		pub := iss.Key().JWK()
		payload, verr := jws.Verify(&pub)
		if verr != nil {
			t.Fatalf("accepted a token the issuer's key does not verify: %v", verr)
		}
		var raw map[string]any
		if json.Unmarshal(payload, &raw) != nil {
			t.Fatalf("accepted a payload that is not JSON: %q", payload)
		}
		if raw["iss"] != iss.URL || cl.Iss != iss.URL || !cl.HasExp || !slices.Contains(cl.Aud, fuzzResource) {
			t.Fatalf("accepted claims %+v", cl)
		}
	})
}

// FuzzPayloadDecoders: the payload is read by accesstoken.ReadMembers, as
// introspection answers are; claimsref (encoding/json, a map, member by
// member) must reach the same verdict, claims and ID-token shape on every
// input, or a parser differential could decide access.
func FuzzPayloadDecoders(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://a","aud":"x","exp":1,"scope":"a b"}`,
		`{"iss":"a","iss":"b"}`, `{"aud":["x"],"aud":"y"}`, `{"exp":"1"}`, `{"exp":1e400}`,
		`{"nonce":null}`, `{"Nonce":"x"}`, `{"scp":["a","b c"],"scope":null}`,
		"{\"sub\":\"\xff\"}", `{"sub":"\ud800"}`, `{} trailing`, "\ufeff{}", `null`, `[]`, `{"azp":1}`,
		`{"aud":"c","azp":"c"}`, `{"\u006eonce":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		fast, fm, fastErr := parsePayload(payload)
		std, sm, stdErr := claimsref.Read(payload)
		if errors.Is(stdErr, accesstoken.ErrNotObject) {
			stdErr = &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: "payload is not a JSON object"}
		} else if stdErr != nil {
			stdErr = &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: stdErr.Error()}
			std = nil
		}
		if (fastErr == nil) != (stdErr == nil) || (fastErr != nil && fastErr.Error() != stdErr.Error()) {
			t.Fatalf("readers disagree on %q:\nparsePayload: %v\nclaimsref:    %v", payload, fastErr, stdErr)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("readers disagree on %q:\nparsePayload: %+v\nclaimsref:    %+v", payload, fast, std)
		}
		if fastErr == nil {
			_, nonce := sm["nonce"]
			fi, si := idTokenShape(fast, fm.HasNonce()), idTokenShape(std, nonce)
			if (fi == nil) != (si == nil) {
				t.Fatalf("ID token verdicts disagree on %q: %v / %v", payload, fi, si)
			}
		}
	})
}

// FuzzJOSEHeader: the JOSE header is read with segmentio's decoder, by
// exact member name (compact.go). Whatever it accepts, encoding/json must
// read the same "alg" and "kid" from it, and see the same refusing
// members, or a parser differential could choose the key or skip a check.
func FuzzJOSEHeader(f *testing.F) {
	for _, s := range []string{
		`{"alg":"RS256","kid":"k","typ":"at+jwt"}`, `{"alg":"RS256","alg":"none"}`, `{"ALG":"RS256"}`,
		`{"\u0061lg":"RS256","\u0063rit":["exp"]}`, `{"alg":"RS\u0032\u0035\u0036"}`, `{"typ":null,"cty":"JWT"}`,
		`{"b64":false,"crit":["b64"]}`, `{"kid":1}`, `null`, `[]`, `{} {}`, "{\"kid\":\"\xff\"}", "\ufeff{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, hdr []byte) {
		c, err := parseCompact(base64.RawURLEncoding.EncodeToString(hdr) + ".e30.c2ln")
		if err != nil {
			return
		}
		var ref map[string]json.RawMessage
		if err := json.Unmarshal(hdr, &ref); err != nil || ref == nil {
			t.Fatalf("parsed %q, which encoding/json refuses as an object: %v", hdr, err)
		}
		for name, got := range map[string]string{"alg": c.header.Alg, "kid": c.header.Kid} {
			var want string
			if raw, ok := ref[name]; ok && string(raw) != "null" {
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("parsed %q, whose %s is not a string: %s", hdr, name, raw)
				}
			}
			if got != want {
				t.Fatalf("%s of %q: %q, encoding/json reads %q", name, hdr, got, want)
			}
		}
		for name, got := range map[string]json.RawMessage{"typ": c.header.Typ, "cty": c.header.Cty, "crit": c.header.Crit, "b64": c.header.B64} {
			if _, want := ref[name]; (got != nil) != want {
				t.Fatalf("%s of %q: present %v, encoding/json %v", name, hdr, got != nil, want)
			}
		}
		if c.signingInput != base64.RawURLEncoding.EncodeToString(hdr)+".e30" || string(c.payload) != "{}" || string(c.signature) != "sig" {
			t.Fatalf("parts of %q: %q %q %q", hdr, c.signingInput, c.payload, c.signature)
		}
	})
}
