package ssf_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

// FuzzVerifySET feeds arbitrary bodies to Verify. It must never panic,
// must answer with a revocation list or one of the package's two error
// types, and can only accept what the transmitter signed: the fuzzer
// cannot forge a signature, so every accepted SET carries the jti of one
// of the seeds.
func FuzzVerifySET(f *testing.F) {
	fx := newFixture(f, func(c *ssf.Config) { c.JWKSURL = c.Issuer + ssftest.JWKSPath }, key("rsa"), key("ec"), key("ed"))
	signed := map[string]bool{}
	add := func(claims map[string]any, opts ...ssftest.SignOption) {
		s := fx.tr.MustSign(f, claims, opts...)
		signed[claims["jti"].(string)] = true
		f.Add([]byte(s))
	}
	add(fx.claims(ssf.EventSessionRevoked, ssftest.IssSub("https://idp.example.com/", "u1")))
	add(fx.claims(ssf.EventCredentialChange, ssftest.Email("a@example.com")), ssftest.WithKey(key("ec")))
	add(fx.claims(ssf.EventAccountPurged, ssftest.Opaque("o")), ssftest.WithKey(key("ed")))
	c := fx.claims(ssf.EventAccountDisabled, ssftest.Opaque("o"))
	delete(c, "sub_id")
	c["events"] = map[string]any{ssf.EventAccountDisabled: map[string]any{"subject": map[string]any{"subject_type": "iss-sub", "iss": "https://i/", "sub": "s"}}}
	add(c)
	c = fx.claims(ssf.EventSessionsRevoked, map[string]any{"format": "complex", "user": ssftest.Opaque("u"), "tenant": ssftest.Opaque("t")})
	c["aud"] = []string{"https://x.example", aud}
	add(c)
	add(fx.claims("https://example.com/unknown-event", ssftest.Opaque("o")))
	// Refused shapes, so the fuzzer starts near every branch.
	none, _ := ssftest.Compact(map[string]any{"alg": "none", "typ": "secevent+jwt"}, fx.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), nil)
	f.Add([]byte(none))
	f.Add([]byte(encrypt(f, fx.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))))
	f.Add([]byte(fx.tr.MustSign(f, fx.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithHeader("crit", []string{"x"}), ssftest.WithHeader("x", 1))))
	f.Add([]byte(""))
	f.Add([]byte("a.b.c"))
	f.Add([]byte("eyJhbGciOiJSUzI1NiJ9.e30."))
	f.Add([]byte(strings.Repeat(".", 4)))

	f.Fuzz(func(t *testing.T, body []byte) {
		revs, err := fx.rcv.Verify(context.Background(), body)
		if err != nil {
			var ref *ssf.RefusedError
			var un *ssf.UnavailableError
			if !errors.As(err, &ref) && !errors.As(err, &un) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if ref != nil && (ref.Code == "" || ref.Reason == "" || ref.Description == "") {
				t.Fatalf("incomplete refusal %+v", ref)
			}
			if revs != nil {
				t.Fatal("revocations with an error")
			}
			return
		}
		for _, r := range revs {
			if !signed[r.JTI] {
				t.Fatalf("accepted a SET the transmitter never signed (jti %q)", r.JTI)
			}
			if !ssf.Revokes(r.Event) {
				t.Fatalf("revocation for non-revoking event %q", r.Event)
			}
		}
	})
}
