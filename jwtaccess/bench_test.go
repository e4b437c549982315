package jwtaccess_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

// BenchmarkVerify is one local verification of a JWT access token (parse,
// key lookup, signature, claims, checks), per algorithm. Nothing is cached
// here; the introspect package's BenchmarkVerifyJWTCacheHit is the cached
// path.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256, jose.EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			iss := jwtaccesstest.New(b, jwtaccesstest.WithKey(jwtaccesstest.NewKey(b, alg, "k")))
			v := newVerifier(b, iss)
			tok := iss.AccessToken("alice", []string{"op:add", "op:sub"}, resource, time.Hour)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyRS256Parts splits one RS256 verification into layers, in
// one run, to show where BenchmarkVerify's time goes:
//   - stdlib: crypto/rsa.VerifyPKCS1v15 of the signing input alone, the
//     floor of any RS256 verifier (it rebuilds the key's modulus on every
//     call: Go has no way to keep it with a public key);
//   - signature: golang-jwt's RS256 check, which Verify calls: the above,
//     hashing a copy of the signing input;
//   - go-jose: go-jose's ParseSignedCompact and Verify, how Verify parsed
//     and checked tokens before compact.go, for comparison;
//   - verify: Verifier.Verify, the signature check plus the parse, key
//     lookup, header, payload and claim checks.
func BenchmarkVerifyRS256Parts(b *testing.B) {
	key := jwtaccesstest.NewKey(b, jose.RS256, "k")
	iss := jwtaccesstest.New(b, jwtaccesstest.WithKey(key))
	v := newVerifier(b, iss)
	tok := iss.AccessToken("alice", []string{"op:add", "op:sub"}, resource, time.Hour)
	pub := key.Private.Public().(*rsa.PublicKey)
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			digest := sha256.Sum256([]byte(tok[:dot]))
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signature", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := jwt.SigningMethodRS256.Verify(tok[:dot], sig, pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-jose", func(b *testing.B) {
		algs := []jose.SignatureAlgorithm{jose.RS256}
		b.ReportAllocs()
		for b.Loop() {
			jws, err := jose.ParseSignedCompact(tok, algs)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := jws.Verify(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
