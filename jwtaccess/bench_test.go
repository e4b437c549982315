package jwtaccess_test

import (
	"context"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

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
