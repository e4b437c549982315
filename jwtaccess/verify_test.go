package jwtaccess_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/jwks"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

const resource = "https://mcp.example.com/mcp"

// newVerifier returns a Verifier for iss whose key set has been fetched.
func newVerifier(t testing.TB, iss *jwtaccesstest.Issuer, mods ...func(*jwtaccess.Config, *jwks.KeySetConfig)) *jwtaccess.Verifier {
	t.Helper()
	kc := jwks.KeySetConfig{URL: iss.JWKSURL()}
	vc := jwtaccess.Config{Issuer: iss.URL, Audiences: []string{resource}, ClockSkew: 30 * time.Second}
	for _, m := range mods {
		m(&vc, &kc)
	}
	ks, err := jwks.NewKeySet(kc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	vc.Keys = ks
	v, err := jwtaccess.New(vc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verdict is what Verify said, in words a table can hold: "ok", the
// refusal reason ("signature", "audience", ...), or "not-local:<reason>".
func verdict(err error) string {
	var nl *jwtaccess.NotLocalError
	var ie *accesstoken.InvalidError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &nl):
		return "not-local:" + string(nl.Reason)
	case errors.As(err, &ie):
		return string(ie.Reason)
	}
	return "error:" + err.Error()
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerify(t *testing.T) {
	iss := jwtaccesstest.New(t)
	good := func() map[string]any { return iss.Claims("alice", []string{"op:add", "op:sub"}, resource, time.Hour) }
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	key := iss.Key()
	attacker := jwtaccesstest.NewKey(t, jose.RS256, key.KID) // same kid, another key set
	attackerES := jwtaccesstest.NewKey(t, jose.ES256, "attacker")
	goodTok := iss.Token(good())
	otherTok := iss.Token(iss.Claims("mallory", []string{"op"}, resource, time.Hour))
	parts, other := strings.Split(goodTok, "."), strings.Split(otherTok, ".")
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Private.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	hs256 := func() string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubPEM},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", key.KID))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(parts[1]))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := jws.CompactSerialize()
		return c
	}

	// rawSign signs the issuer's claims under a header written by hand,
	// with the issuer's key (RS256), for headers go-jose would not write.
	rawSign := func(header string) string {
		in := b64(header) + "." + parts[1]
		d := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key.Private.(*rsa.PrivateKey), crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	kid := `"kid":"` + key.KID + `"`
	// reencoded writes the same bytes with a last character whose unused
	// low bits are not zero: a lenient base64 decoder reads the same
	// signature from another string.
	reencoded := func(part string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		if len(part)%4 == 0 {
			t.Fatalf("a part of %d characters has no unused bits", len(part))
		}
		i := strings.IndexByte(alphabet, part[len(part)-1])
		return part[:len(part)-1] + string(alphabet[i|1])
	}

	for _, tt := range []struct {
		name, token, want string
		generic           bool
	}{
		{name: "valid", token: goodTok, want: "ok"},
		{name: "valid, header written by hand", token: rawSign(`{"alg":"RS256",` + kid + `,"typ":"at+jwt"}`), want: "ok"},

		// The JOSE header as parsed here (compact.go).
		{name: "member names are case-sensitive: ALG is not alg", token: rawSign(`{"ALG":"RS256",` + kid + `,"typ":"at+jwt"}`), want: "not-local:signature"},
		{name: "member names are case-sensitive: Typ is not typ", token: rawSign(`{"alg":"RS256",` + kid + `,"Typ":"at+jwt"}`), want: "token_type"},
		{name: "duplicate alg: the last one counts (none)", token: rawSign(`{"alg":"RS256","alg":"none",` + kid + `,"typ":"at+jwt"}`), want: "not-local:signature"},
		{name: "duplicate alg: the last one counts (RS256)", token: rawSign(`{"alg":"none","alg":"RS256",` + kid + `,"typ":"at+jwt"}`), want: "ok"},
		{name: "alg not a string", token: rawSign(`{"alg":256,` + kid + `,"typ":"at+jwt"}`), want: "not-local:format"},
		{name: "header null", token: rawSign(`null`), want: "not-local:format"},
		{name: "header an array", token: rawSign(`["alg","RS256"]`), want: "not-local:format"},
		{name: "header followed by more JSON", token: rawSign(`{"alg":"RS256",` + kid + `,"typ":"at+jwt"} {}`), want: "not-local:format"},
		{name: "header not JSON", token: rawSign(`alg=RS256`), want: "not-local:format"},
		{name: "typ null", token: rawSign(`{"alg":"RS256",` + kid + `,"typ":null}`), want: "token_type"},
		{name: "unencoded payload (b64, RFC 7797)", token: rawSign(`{"alg":"RS256",` + kid + `,"typ":"at+jwt","b64":false,"crit":["b64"]}`), want: "format"},
		{name: "b64 without crit", token: rawSign(`{"alg":"RS256",` + kid + `,"typ":"at+jwt","b64":true}`), want: "format"},
		{name: "crit null", token: rawSign(`{"alg":"RS256",` + kid + `,"typ":"at+jwt","crit":null}`), want: "format"},
		{name: "typ application/at+jwt", token: iss.Token(good(), jwtaccesstest.Typ("application/at+jwt")), want: "ok"},
		{name: "typ AT+JWT case-insensitive", token: iss.Token(good(), jwtaccesstest.Typ("AT+JWT")), want: "ok"},
		{name: "typ JWT refused by default", token: iss.Token(good(), jwtaccesstest.Typ("JWT")), want: "token_type"},
		{name: "typ JWT with JWT_REQUIRE_AT_TYP=false", token: iss.Token(good(), jwtaccesstest.Typ("JWT")), generic: true, want: "ok"},
		{name: "no typ refused by default", token: iss.Token(good(), jwtaccesstest.Typ("")), want: "token_type"},
		{name: "no typ with JWT_REQUIRE_AT_TYP=false", token: iss.Token(good(), jwtaccesstest.Typ("")), generic: true, want: "ok"},
		{name: "typ of another kind", token: iss.Token(good(), jwtaccesstest.Typ("id_token+jwt")), generic: true, want: "token_type"},
		{name: "typ not a string", token: iss.Token(good(), jwtaccesstest.Header("typ", 1)), want: "token_type"},
		{name: "no kid, only RSA key", token: iss.Token(good(), jwtaccesstest.NoKID()), want: "ok"},

		// The classic attacks.
		{name: "alg none, empty signature", token: b64(`{"alg":"none","typ":"at+jwt","kid":"`+key.KID+`"}`) + "." + parts[1] + ".", want: "not-local:format"},
		{name: "alg none, some signature", token: b64(`{"alg":"none","typ":"at+jwt","kid":"`+key.KID+`"}`) + "." + parts[1] + "." + parts[2], want: "not-local:signature"},
		{name: "HS256 with the public key as secret", token: hs256(), want: "not-local:signature"},
		{name: "another key set's key with the same kid", token: attacker.Sign(t, good()), want: "signature"},
		{name: "jku to the attacker's JWKS", token: attackerES.Sign(t, good(), jwtaccesstest.Header("jku", "https://evil.example/jwks")), want: "not-local:signature"},
		{name: "x5u to the attacker's certificate", token: attacker.Sign(t, good(), jwtaccesstest.Header("x5u", "https://evil.example/cert.pem")), want: "signature"},
		{name: "jwk: the attacker's key embedded, issuer's kid", token: attacker.Sign(t, good(), jwtaccesstest.EmbedJWK()), want: "signature"},
		{name: "jwk: the attacker's key embedded, no kid", token: attacker.Sign(t, good(), jwtaccesstest.EmbedJWK(), jwtaccesstest.NoKID()), want: "signature"},
		{name: "jwk: an EC key embedded, no kid", token: attackerES.Sign(t, good(), jwtaccesstest.EmbedJWK(), jwtaccesstest.NoKID()), want: "not-local:signature"},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", want: "not-local:format"},
		{name: "signature re-encoded with non-zero unused bits", token: parts[0] + "." + parts[1] + "." + reencoded(parts[2]), want: "not-local:format"},
		{name: "signature of another token", token: parts[0] + "." + parts[1] + "." + other[2], want: "signature"},
		{name: "payload swapped between two valid tokens", token: parts[0] + "." + other[1] + "." + parts[2], want: "signature"},
		{name: "header re-encoded (same members, other order)", token: b64(`{"typ":"at+jwt","kid":"`+key.KID+`","alg":"RS256"}`) + "." + parts[1] + "." + parts[2], want: "signature"},
		{name: "another audience", token: iss.Token(with("aud", "https://other.example.com/mcp")), want: "audience"},
		{name: "no audience", token: iss.Token(with("aud", nil)), want: "audience"},
		{name: "audience in an array", token: iss.Token(with("aud", []string{"https://other.example", resource})), want: "ok"},
		{name: "audience normalised (RFC 3986)", token: iss.Token(with("aud", "HTTPS://MCP.example.com:443/mcp")), want: "ok"},
		{name: "another issuer", token: iss.Token(with("iss", "https://evil.example")), want: "issuer"},
		{name: "issuer with a trailing slash", token: iss.Token(with("iss", iss.URL+"/")), want: "issuer"},
		{name: "no issuer", token: iss.Token(with("iss", nil)), want: "issuer"},
		{name: "expired", token: iss.Token(with("exp", time.Now().Add(-time.Minute).Unix())), want: "expired"},
		{name: "expired within the skew", token: iss.Token(with("exp", time.Now().Add(-10*time.Second).Unix())), want: "ok"},
		{name: "no exp", token: iss.Token(with("exp", nil)), want: "format"},
		{name: "exp a string", token: iss.Token(with("exp", "2099-01-01")), want: "format"},
		{name: "nbf in the future", token: iss.Token(with("nbf", time.Now().Add(time.Hour).Unix())), want: "not_yet_valid"},
		{name: "iat in the future", token: iss.Token(with("iat", time.Now().Add(time.Hour).Unix())), want: "not_yet_valid"},
		{name: "iat within the skew", token: iss.Token(with("iat", time.Now().Add(10*time.Second).Unix())), want: "ok"},
		{name: "ID token: nonce", token: iss.Token(with("nonce", "n-0S6_WzA2Mj")), want: "token_type"},
		{name: "ID token: aud is its azp", token: iss.Token(with("azp", resource)), want: "token_type"},
		{name: "ID token: aud is its client_id", token: iss.Token(with("client_id", resource)), want: "token_type"},
		{name: "Cognito ID token: token_use id", token: iss.Token(with("token_use", "id")), want: "token_type"},
		{name: "Keycloak ID token: typ ID", token: iss.Token(with("typ", "ID")), want: "token_type"},
		{name: "Keycloak refresh token: typ Refresh", token: iss.Token(with("typ", "Refresh")), want: "token_type"},
		{name: "crit header", token: iss.Token(good(), jwtaccesstest.Header("crit", []string{"exp"}), jwtaccesstest.Header("exp", 1)), want: "format"},
		{name: "nested JWT (cty)", token: iss.Token(good(), jwtaccesstest.Header("cty", "JWT")), want: "format"},
		{name: "payload not an object", token: key.Sign(t, []byte(`["a"]`)), want: "format"},
		{name: "payload not JSON", token: key.Sign(t, []byte(`not json`)), want: "format"},
		{name: "unknown kid", token: iss.Token(good(), jwtaccesstest.Header("kid", "nope")), want: "not-local:signature"},
		{name: "JWE (five parts)", token: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", want: "not-local:format"},
		{name: "JSON serialization", token: `{"payload":"e30","signatures":[]}`, want: "not-local:format"},
		{name: "opaque token", token: "2YotnFZFEjr1zCsicMWpAA", want: "not-local:format"},
		{name: "newline inside", token: parts[0] + "\n." + parts[1] + "." + parts[2], want: "not-local:format"},
		{name: "padding", token: parts[0] + "=." + parts[1] + "." + parts[2], want: "not-local:format"},
		{name: "standard base64 alphabet", token: parts[0] + "." + parts[1] + "+/." + parts[2], want: "not-local:format"},
		{name: "empty payload part", token: parts[0] + ".." + parts[2], want: "not-local:format"},
		{name: "no signature part", token: parts[0] + "." + parts[1] + ".", want: "not-local:format"},
		{name: "non-ASCII byte", token: parts[0] + "\xc3\xa9." + parts[1] + "." + parts[2], want: "not-local:format"},
		{name: "empty", token: "", want: "not-local:format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, iss, func(c *jwtaccess.Config, _ *jwks.KeySetConfig) { c.AllowGenericType = tt.generic })
			_, err := v.Verify(context.Background(), tt.token)
			if got := verdict(err); got != tt.want {
				t.Errorf("verdict %s (%v), want %s", got, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestVerifyClaims(t *testing.T) {
	iss := jwtaccesstest.New(t)
	v := newVerifier(t, iss)
	c := iss.Claims("alice", nil, resource, time.Hour)
	delete(c, "scope")
	delete(c, "client_id")
	c["scp"] = []string{"op:add", "op:div", "bad\"scope"}
	c["azp"] = "claude"
	cl, err := v.Verify(context.Background(), iss.Token(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cl.Scopes, " "); got != "op:add op:div" {
		t.Errorf("scopes %q", got)
	}
	if cl.Sub != "alice" || cl.Client() != "claude" || cl.Iss != iss.URL {
		t.Errorf("claims %+v", cl)
	}
}

// Each algorithm of the default allowlist verifies with a key of its type,
// and a key of another type is never tried (RFC 8725 §3.1: the key
// decides the algorithm, not the token).
func TestAlgorithms(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA, jose.ES384} {
		t.Run(string(alg), func(t *testing.T) {
			iss := jwtaccesstest.New(t, jwtaccesstest.WithKey(jwtaccesstest.NewKey(t, alg, "k")))
			v := newVerifier(t, iss)
			_, err := v.Verify(context.Background(), iss.AccessToken("alice", nil, resource, time.Hour))
			want := "ok"
			if alg == jose.ES384 {
				want = "not-local:signature" // not in the default allowlist
			}
			if got := verdict(err); got != want {
				t.Errorf("%s: %s (%v), want %s", alg, got, err, want)
			}
		})
	}
	// An ES256 token naming the kid of an RSA key finds no key.
	iss := jwtaccesstest.New(t)
	v := newVerifier(t, iss)
	es := jwtaccesstest.NewKey(t, jose.ES256, iss.Key().KID)
	if _, err := v.Verify(context.Background(), es.Sign(t, iss.Claims("a", nil, resource, time.Hour))); verdict(err) != "not-local:signature" {
		t.Errorf("ES256 token with an RSA key's kid: %v", err)
	}
	// A key whose "alg" is RS256 does not verify a PS256 signature.
	ps := &jwtaccesstest.Key{KID: iss.Key().KID, Alg: jose.PS256, Private: iss.Key().Private}
	if _, err := v.Verify(context.Background(), ps.Sign(t, iss.Claims("a", nil, resource, time.Hour))); verdict(err) != "not-local:signature" {
		t.Errorf("PS256 token with an RS256 key: %v", err)
	}
}

func TestParseAlgorithms(t *testing.T) {
	for _, tt := range []struct {
		in []string
		ok bool
	}{
		{[]string{"RS256", "ES256"}, true},
		{[]string{"RS256", "RS256"}, true},
		{[]string{"none"}, false},
		{[]string{"HS256"}, false},
		{[]string{"RS256", "HS512"}, false},
		{[]string{"rs256"}, false},
		{nil, false},
	} {
		_, err := jwtaccess.ParseAlgorithms(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseAlgorithms(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
	if _, err := jwtaccess.New(jwtaccess.Config{}); err == nil || !strings.Contains(err.Error(), "Issuer") || !strings.Contains(err.Error(), "Keys") {
		t.Errorf("New with nothing: %v, want every problem", err)
	}
}

// With no kid and two keys of the token's type, guessing is refused.
func TestNoKIDAmbiguous(t *testing.T) {
	iss := jwtaccesstest.New(t)
	first := iss.Key()
	iss.Rotate(jose.RS256)
	v := newVerifier(t, iss)
	tok := first.Sign(t, iss.Claims("a", nil, resource, time.Hour), jwtaccesstest.NoKID())
	if _, err := v.Verify(context.Background(), tok); verdict(err) != "not-local:signature" {
		t.Errorf("no kid, two RSA keys: %v", err)
	}
}
