package ssf_test

import (
	"context"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

// BenchmarkVerify measures one SET's full check (header, key lookup in the
// cached JWKS, signature, claims, events) per key type, keys already
// fetched.
func BenchmarkVerify(b *testing.B) {
	for _, kname := range []string{"rsa", "ec", "ed"} {
		b.Run(kname, func(b *testing.B) {
			f := newFixture(b, nil, key(kname))
			set := []byte(f.tr.MustSign(b, f.claims(ssf.EventSessionRevoked, ssftest.IssSub("https://idp.example.com/", "u1"))))
			if _, err := f.rcv.Verify(context.Background(), set); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.rcv.Verify(context.Background(), set); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
