package ssf_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

var revokingEvents = []string{
	ssf.EventSessionRevoked, ssf.EventCredentialChange,
	ssf.EventAccountDisabled, ssf.EventAccountPurged, ssf.EventSessionsRevoked,
}

// TestAcceptsEachEventSubjectAndKey: a SET signed by each of the
// transmitter's key types, for each revoking event type and each subject
// format, is accepted and yields exactly the Revocation it describes.
func TestAcceptsEachEventSubjectAndKey(t *testing.T) {
	f := newFixture(t, nil, key("rsa"), key("ps"), key("ec"), key("ed"))
	subjects := []struct {
		name string
		raw  map[string]any
		want ssf.Subject
	}{
		{"iss_sub", ssftest.IssSub("https://idp.example.com/", "user-1"), ssf.Subject{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "user-1"}},
		{"email", ssftest.Email("jane@example.com"), ssf.Subject{Format: ssf.FormatEmail, Email: "jane@example.com"}},
		{"opaque", ssftest.Opaque("72e6991badb44e08"), ssf.Subject{Format: ssf.FormatOpaque, ID: "72e6991badb44e08"}},
	}
	for _, kname := range []string{"rsa", "ps", "ec", "ed"} {
		for _, ev := range revokingEvents {
			for _, sub := range subjects {
				t.Run(kname+"/"+ev[strings.LastIndex(ev, "/")+1:]+"/"+sub.name, func(t *testing.T) {
					before := len(f.rec.calls())
					c := f.claims(ev, sub.raw)
					set := f.tr.MustSign(t, c, ssftest.WithKey(key(kname)))
					revs, err := f.rcv.Receive(context.Background(), []byte(set))
					if err != nil {
						t.Fatal(err)
					}
					want := ssf.Revocation{Subject: sub.want, Event: ev, At: f.clk.Now(), EventTime: f.clk.Now(), JTI: c["jti"].(string)}
					if len(revs) != 1 || !sameRevocation(revs[0], want) {
						t.Fatalf("revocations = %+v, want [%+v]", revs, want)
					}
					calls := f.rec.calls()
					if len(calls) != before+1 || !sameRevocation(calls[before], want) {
						t.Fatalf("OnRevocation got %+v, want one more call with %+v", calls[before:], want)
					}
				})
			}
		}
	}
}

// TestAcceptedShapes covers SETs shaped as CAEP, RISC and SSF examples
// show them, beyond the plain sub_id of the test above.
func TestAcceptedShapes(t *testing.T) {
	f := newFixture(t, nil)
	iss := ssftest.IssSub("https://idp.example.com/", "u7")
	tests := []struct {
		name   string
		mutate func(c map[string]any)
		opts   []ssftest.SignOption
		want   []ssf.Subject
	}{
		{name: "RISC event subject member, no sub_id (RISC 1.0 / RFC 8417 §2.1.4 shape)",
			mutate: func(c map[string]any) {
				delete(c, "sub_id")
				c["events"] = map[string]any{ssf.EventAccountDisabled: map[string]any{
					"subject": map[string]any{"subject_type": "iss-sub", "iss": "https://idp.example.com/", "sub": "u7"},
					"reason":  "hijacking",
				}}
			},
			want: []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "complex subject: the user is revoked (CAEP 1.0 §3.1 example)",
			mutate: func(c map[string]any) {
				c["sub_id"] = map[string]any{"format": "complex",
					"session": ssftest.Opaque("dMTlD|1600802906337.16|16008.16"),
					"user":    iss,
					"tenant":  ssftest.Opaque("123456789")}
				c["events"] = map[string]any{ssf.EventSessionRevoked: map[string]any{
					"initiating_entity": "policy", "reason_admin": map[string]any{"en": "Landspeed Policy Violation"},
					"event_timestamp": f.clk.Now().Add(-time.Minute).Unix()}}
			},
			want: []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "aud array containing ours",
			mutate: func(c map[string]any) { c["aud"] = []string{"https://other.example", aud} },
			want:   []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "typ with application/ prefix, any case",
			opts: []ssftest.SignOption{ssftest.WithHeader("typ", "Application/SecEvent+JWT")},
			want: []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "no kid: every key is tried",
			opts: []ssftest.SignOption{ssftest.WithKey(ssftest.Key{Alg: "ES256", Signer: key("ec").Signer})},
			want: []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "exp in the future is tolerated",
			mutate: func(c map[string]any) { c["exp"] = f.clk.Now().Add(time.Hour).Unix() },
			want:   []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "iat within the clock skew ahead",
			mutate: func(c map[string]any) { c["iat"] = f.clk.Now().Add(20 * time.Second).Unix() },
			want:   []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "iat at the edge of MaxAge",
			mutate: func(c map[string]any) { c["iat"] = f.clk.Now().Add(-ssf.DefaultMaxAge).Unix() },
			want:   []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
		{name: "unknown event type: accepted, nothing revoked",
			mutate: func(c map[string]any) {
				c["events"] = map[string]any{"https://schemas.openid.net/secevent/caep/event-type/token-claims-change": map[string]any{"claims": map[string]any{"role": "ro-admin"}}}
			}},
		{name: "SSF verification event: accepted, nothing revoked",
			mutate: func(c map[string]any) {
				delete(c, "sub_id")
				c["events"] = map[string]any{"https://schemas.openid.net/secevent/ssf/event-type/verification": map[string]any{"state": "VGhpcw"}}
			}},
		{name: "revoking event about a phone number: accepted, nothing revoked",
			mutate: func(c map[string]any) {
				c["sub_id"] = map[string]any{"format": "phone_number", "phone_number": "+1 206 555 0123"}
			}},
		{name: "unknown claims and members are ignored (SSF 1.0 §4.2.3), SUB is not sub",
			mutate: func(c map[string]any) { c["txn"] = "8675309"; c["x-vendor"] = []any{1, "two", nil}; c["SUB"] = "x" },
			want:   []ssf.Subject{{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u7"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.rec.calls())
			c := f.claims(ssf.EventSessionRevoked, iss)
			if tt.mutate != nil {
				tt.mutate(c)
			}
			set := f.tr.MustSign(t, c, tt.opts...)
			revs, err := f.rcv.Receive(context.Background(), []byte(set))
			if err != nil {
				t.Fatal(err)
			}
			var got []ssf.Subject
			for _, r := range revs {
				got = append(got, r.Subject)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("subjects = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("subjects = %+v, want %+v", got, tt.want)
				}
			}
			if n := len(f.rec.calls()) - before; n != len(tt.want) {
				t.Fatalf("OnRevocation called %d times, want %d", n, len(tt.want))
			}
		})
	}
}

func TestEventTimeFromTimestamps(t *testing.T) {
	f := newFixture(t, nil)
	iat := f.clk.Now().Add(-30 * time.Second)
	for _, tt := range []struct {
		name string
		set  func(c map[string]any)
		want time.Time
	}{
		{"iat", func(map[string]any) {}, iat},
		{"toe", func(c map[string]any) { c["toe"] = iat.Add(-time.Minute).Unix() }, iat.Add(-time.Minute)},
		{"event_timestamp wins", func(c map[string]any) {
			c["toe"] = iat.Add(-time.Minute).Unix()
			c["events"] = map[string]any{ssf.EventSessionRevoked: map[string]any{"event_timestamp": iat.Add(-2 * time.Minute).Unix()}}
		}, iat.Add(-2 * time.Minute)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
			c["iat"] = iat.Unix()
			tt.set(c)
			revs, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, c)))
			if err != nil {
				t.Fatal(err)
			}
			if len(revs) != 1 || !revs[0].EventTime.Equal(tt.want) || !revs[0].At.Equal(f.clk.Now()) {
				t.Fatalf("revocations %+v, want EventTime %v and At %v (the receiver's clock)", revs, tt.want, f.clk.Now())
			}
		})
	}
}

// TestRefusals: every SET that must be refused is, with the right RFC 8935
// code, and OnRevocation is never called.
func TestRefusals(t *testing.T) {
	attacker := ssftest.Start(t, key("evil"))
	tests := []struct {
		name   string
		mod    func(*ssf.Config)
		build  func(t *testing.T, f *fixture) string
		code   ssf.Code
		reason ssf.Reason
		after  func(t *testing.T, f *fixture)
		// refetch: the refusal came from keys fetched for this SET; a
		// second look within the refetch interval is put off (503), so
		// the clock moves past it before Receive.
		refetch bool
	}{
		{name: "bad signature", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				set := f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
				return flipSignature(t, set)
			}},
		{name: "payload changed after signing", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				set := f.tr.MustSign(t, c)
				c["sub_id"] = ssftest.Opaque("someone-else")
				b, _ := json.Marshal(c)
				parts := strings.Split(set, ".")
				return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
			}},
		{name: "another key with the same kid (RSA)", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				return sign(t, key("evil"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
			}},
		{name: "another key with the same kid (EC)", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				return sign(t, key("evil-ec"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
			}},
		{name: "kid not in the transmitter's JWKS", code: ssf.CodeInvalidKey, reason: ssf.ReasonUnknownKey, refetch: true,
			build: func(t *testing.T, f *fixture) string {
				return sign(t, key("rsa2"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
			}},
		{name: "kid of an RSA key with an EC alg", code: ssf.CodeInvalidKey, reason: ssf.ReasonUnknownKey, refetch: true,
			build: func(t *testing.T, f *fixture) string {
				k := key("evil-ec")
				k.ID = "rsa-1"
				return sign(t, k, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
			}},
		{name: "alg none", code: ssf.CodeInvalidKey, reason: ssf.ReasonAlgorithm,
			build: func(t *testing.T, f *fixture) string {
				return compact(t, map[string]any{"alg": "none", "typ": "secevent+jwt", "kid": "rsa-1"},
					f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), nil)
			}},
		{name: "HS256 keyed with the transmitter's public key", code: ssf.CodeInvalidKey, reason: ssf.ReasonAlgorithm,
			build: func(t *testing.T, f *fixture) string {
				return hmacWithPublicKey(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
			}},
		{name: "alg allowed by the library but not configured", code: ssf.CodeInvalidKey, reason: ssf.ReasonAlgorithm,
			mod: func(c *ssf.Config) { c.Algorithms = []string{"RS256"} },
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithKey(key("ec")))
			}},
		{name: "jku header to the attacker's JWKS is ignored", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				return sign(t, key("evil"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithHeader("jku", attacker.JWKSURL()))
			},
			after: func(t *testing.T, _ *fixture) { noRequests(t, attacker) }},
		{name: "x5u header to the attacker is ignored", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				return sign(t, key("evil"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithHeader("x5u", attacker.JWKSURL()))
			},
			after: func(t *testing.T, _ *fixture) { noRequests(t, attacker) }},
		{name: "embedded jwk header is ignored", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				return sign(t, key("evil"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithEmbeddedJWK())
			}},
		{name: "embedded x5c certificate is ignored", code: ssf.CodeAuthenticationFailed, reason: ssf.ReasonSignature,
			build: func(t *testing.T, f *fixture) string {
				return sign(t, key("evil"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithHeader("x5c", []string{selfSigned(t, key("evil"))}))
			}},
		{name: "unknown crit", code: ssf.CodeInvalidRequest, reason: ssf.ReasonCritical,
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")),
					ssftest.WithHeader("crit", []string{"urn:example:must-understand"}), ssftest.WithHeader("urn:example:must-understand", true))
			}},
		{name: "crit b64 (RFC 7797) is not supported either", code: ssf.CodeInvalidRequest, reason: ssf.ReasonCritical,
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")),
					ssftest.WithHeader("crit", []string{"b64"}), ssftest.WithHeader("b64", true))
			}},
		{name: "JWE", code: ssf.CodeInvalidRequest, reason: ssf.ReasonEncrypted,
			build: func(t *testing.T, f *fixture) string {
				return encrypt(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
			}},
		{name: "nested JWT (cty JWT)", code: ssf.CodeInvalidRequest, reason: ssf.ReasonEncrypted,
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithHeader("cty", "JWT"))
			}},
		{name: "typ missing", code: ssf.CodeInvalidRequest, reason: ssf.ReasonType,
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithoutType())
			}},
		{name: "typ JWT", code: ssf.CodeInvalidRequest, reason: ssf.ReasonType,
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithHeader("typ", "JWT"))
			}},
		{name: "typ at+jwt (an access token)", code: ssf.CodeInvalidRequest, reason: ssf.ReasonType,
			mod: func(c *ssf.Config) { c.AcceptUntyped = true },
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithHeader("typ", "at+jwt"))
			}},
		{name: "another audience", code: ssf.CodeInvalidAudience, reason: ssf.ReasonAudience,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["aud"] = "https://other-receiver.example/"
				return f.tr.MustSign(t, c)
			}},
		{name: "audience missing", code: ssf.CodeInvalidAudience, reason: ssf.ReasonAudience,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				delete(c, "aud")
				return f.tr.MustSign(t, c)
			}},
		{name: "audience of the wrong type", code: ssf.CodeInvalidAudience, reason: ssf.ReasonAudience,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["aud"] = map[string]any{"x": aud}
				return f.tr.MustSign(t, c)
			}},
		{name: "another issuer", code: ssf.CodeInvalidIssuer, reason: ssf.ReasonIssuer,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["iss"] = "https://other-transmitter.example"
				return f.tr.MustSign(t, c)
			}},
		{name: "issuer with a trailing slash is another issuer", code: ssf.CodeInvalidIssuer, reason: ssf.ReasonIssuer,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["iss"] = f.tr.Issuer() + "/"
				return f.tr.MustSign(t, c)
			}},
		{name: "claim names are case-sensitive: ISS is not iss", code: ssf.CodeInvalidIssuer, reason: ssf.ReasonIssuer,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["ISS"] = c["iss"]
				delete(c, "iss")
				return f.tr.MustSign(t, c)
			}},
		{name: "issuer missing", code: ssf.CodeInvalidIssuer, reason: ssf.ReasonIssuer,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				delete(c, "iss")
				return f.tr.MustSign(t, c)
			}},
		{name: "old iat", code: ssf.CodeInvalidRequest, reason: ssf.ReasonStale,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["iat"] = f.clk.Now().Add(-ssf.DefaultMaxAge - time.Second).Unix()
				return f.tr.MustSign(t, c)
			}},
		{name: "future iat", code: ssf.CodeInvalidRequest, reason: ssf.ReasonFuture,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["iat"] = f.clk.Now().Add(ssf.DefaultClockSkew + time.Second).Unix()
				return f.tr.MustSign(t, c)
			}},
		{name: "iat missing", code: ssf.CodeInvalidRequest, reason: ssf.ReasonIssuedAt,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				delete(c, "iat")
				return f.tr.MustSign(t, c)
			}},
		{name: "iat a string", code: ssf.CodeInvalidRequest, reason: ssf.ReasonIssuedAt,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["iat"] = "1750000000"
				return f.tr.MustSign(t, c)
			}},
		{name: "exp passed", code: ssf.CodeInvalidRequest, reason: ssf.ReasonExpired,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["exp"] = f.clk.Now().Add(-ssf.DefaultClockSkew - time.Second).Unix()
				return f.tr.MustSign(t, c)
			}},
		{name: "nbf in the future", code: ssf.CodeInvalidRequest, reason: ssf.ReasonFuture,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["nbf"] = f.clk.Now().Add(time.Hour).Unix()
				return f.tr.MustSign(t, c)
			}},
		{name: "jti missing", code: ssf.CodeInvalidRequest, reason: ssf.ReasonJTI,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				delete(c, "jti")
				return f.tr.MustSign(t, c)
			}},
		{name: "jti empty", code: ssf.CodeInvalidRequest, reason: ssf.ReasonJTI,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["jti"] = ""
				return f.tr.MustSign(t, c)
			}},
		{name: "jti a number", code: ssf.CodeInvalidRequest, reason: ssf.ReasonJTI,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["jti"] = 42
				return f.tr.MustSign(t, c)
			}},
		{name: "jti too long", code: ssf.CodeInvalidRequest, reason: ssf.ReasonJTI,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["jti"] = strings.Repeat("j", 257)
				return f.tr.MustSign(t, c)
			}},
		{name: "a sub claim (token-shaped)", code: ssf.CodeInvalidRequest, reason: ssf.ReasonSubClaim,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["sub"] = "user-1"
				return f.tr.MustSign(t, c)
			}},
		{name: "no events", code: ssf.CodeInvalidRequest, reason: ssf.ReasonEvents,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				delete(c, "events")
				return f.tr.MustSign(t, c)
			}},
		{name: "too many events", code: ssf.CodeInvalidRequest, reason: ssf.ReasonEvents,
			mod: func(c *ssf.Config) { c.MaxEvents = 1 },
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["events"] = map[string]any{ssf.EventSessionRevoked: map[string]any{}, ssf.EventSessionsRevoked: map[string]any{}}
				return f.tr.MustSign(t, c)
			}},
		{name: "revoking event without a subject", code: ssf.CodeInvalidRequest, reason: ssf.ReasonSubject,
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				delete(c, "sub_id")
				return f.tr.MustSign(t, c)
			}},
		{name: "revoking event with a malformed subject", code: ssf.CodeInvalidRequest, reason: ssf.ReasonSubject,
			build: func(t *testing.T, f *fixture) string {
				return f.tr.MustSign(t, f.claims(ssf.EventAccountDisabled, map[string]any{"format": "iss_sub", "iss": "https://idp.example.com/"}))
			}},
		{name: "too large", code: ssf.CodeInvalidRequest, reason: ssf.ReasonTooLarge,
			mod: func(c *ssf.Config) { c.MaxBodyBytes = 1024 },
			build: func(t *testing.T, f *fixture) string {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["padding"] = strings.Repeat("p", 1024)
				return f.tr.MustSign(t, c)
			}},
		{name: "not a JWS", code: ssf.CodeInvalidRequest, reason: ssf.ReasonMalformed,
			build: func(*testing.T, *fixture) string { return "hello" }},
		{name: "JWS JSON serialization", code: ssf.CodeInvalidRequest, reason: ssf.ReasonMalformed,
			build: func(t *testing.T, f *fixture) string {
				set := f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
				p := strings.Split(set, ".")
				b, _ := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
				return string(b)
			}},
		{name: "header not JSON", code: ssf.CodeInvalidRequest, reason: ssf.ReasonMalformed,
			build: func(t *testing.T, f *fixture) string {
				set := f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
				return base64.RawURLEncoding.EncodeToString([]byte("not json")) + set[strings.Index(set, "."):]
			}},
		{name: "payload not a JSON object", code: ssf.CodeInvalidRequest, reason: ssf.ReasonMalformed,
			build: func(t *testing.T, f *fixture) string {
				return signPayload(t, key("rsa"), []byte(`["iss"]`))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.mod)
			set := tt.build(t, f)
			revs, err := f.rcv.Verify(context.Background(), []byte(set))
			wantRefused(t, err, tt.code, tt.reason)
			if tt.refetch {
				f.clk.Advance(ssf.DefaultRefetchInterval)
			}
			revs2, err := f.rcv.Receive(context.Background(), []byte(set))
			wantRefused(t, err, tt.code, tt.reason)
			// And over HTTP: the RFC 8935 §2.3 error object with the same code.
			if tt.refetch {
				f.clk.Advance(ssf.DefaultRefetchInterval)
			}
			status := http.StatusBadRequest
			if tt.reason == ssf.ReasonTooLarge {
				status = http.StatusRequestEntityTooLarge
			}
			wantErrorBody(t, serve(f.rcv, set), status, tt.code)
			if revs != nil || revs2 != nil || len(f.rec.calls()) != 0 {
				t.Fatalf("refused SET revoked: %+v %+v, OnRevocation calls %+v", revs, revs2, f.rec.calls())
			}
			if tt.after != nil {
				tt.after(t, f)
			}
		})
	}
}

// TestReplay: the same SET twice is refused the second time; a refused SET
// does not burn its jti; Verify records nothing.
func TestReplay(t *testing.T) {
	f := newFixture(t, nil)
	c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
	set := []byte(f.tr.MustSign(t, c))
	// A refused SET with the same jti first: it must not be remembered.
	bad := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
	bad["jti"], bad["aud"] = c["jti"], "https://other.example"
	_, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, bad)))
	wantRefused(t, err, ssf.CodeInvalidAudience, ssf.ReasonAudience)
	// Verify, twice: no record, no call.
	for range 2 {
		if revs, err := f.rcv.Verify(context.Background(), set); err != nil || len(revs) != 1 {
			t.Fatalf("Verify = %+v, %v", revs, err)
		}
	}
	if n := len(f.rec.calls()); n != 0 {
		t.Fatalf("Verify called OnRevocation %d times", n)
	}
	if _, err := f.rcv.Receive(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Minute)
	_, err = f.rcv.Receive(context.Background(), set)
	wantRefused(t, err, ssf.CodeInvalidRequest, ssf.ReasonReplay)
	_, err = f.rcv.Verify(context.Background(), set)
	wantRefused(t, err, ssf.CodeInvalidRequest, ssf.ReasonReplay)
	// Same jti, re-signed with a fresh iat: still a replay.
	c["iat"] = f.clk.Now().Unix()
	_, err = f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, c)))
	wantRefused(t, err, ssf.CodeInvalidRequest, ssf.ReasonReplay)
	if n := len(f.rec.calls()); n != 1 {
		t.Fatalf("OnRevocation called %d times, want 1", n)
	}
	// Once MaxAge has passed, the original SET is refused as stale.
	f.clk.Advance(ssf.DefaultMaxAge)
	_, err = f.rcv.Receive(context.Background(), set)
	wantRefused(t, err, ssf.CodeInvalidRequest, ssf.ReasonStale)
}

// TestReplayCacheFull: when every remembered jti is live, a new SET is put
// off (503) rather than an entry being forgotten early.
func TestReplayCacheFull(t *testing.T) {
	f := newFixture(t, func(c *ssf.Config) { c.ReplayCapacity = 2 })
	for range 2 {
		if _, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))); err != nil {
			t.Fatal(err)
		}
	}
	third := []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
	_, err := f.rcv.Receive(context.Background(), third)
	un := wantUnavailable(t, err, ssf.ReasonReplayFull)
	if un.RetryAfter > ssf.DefaultMaxAge+ssf.DefaultClockSkew {
		t.Fatalf("RetryAfter %v", un.RetryAfter)
	}
	f.clk.Advance(un.RetryAfter)
	// The third SET is now too old itself; a fresh one fits.
	if _, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))); err != nil {
		t.Fatal(err)
	}
}

// TestRevocationFailureIsRetried: an OnRevocation error makes the SET
// unavailable (the transmitter retries) and its jti is not kept, so the
// retry is processed.
func TestRevocationFailureIsRetried(t *testing.T) {
	f := newFixture(t, nil)
	set := []byte(f.tr.MustSign(t, f.claims(ssf.EventAccountPurged, ssftest.Email("gone@example.com"))))
	f.rec.setFail(errors.New("redis down"))
	_, err := f.rcv.Receive(context.Background(), set)
	un := wantUnavailable(t, err, ssf.ReasonRevocationErr)
	if un.Err == nil || un.Err.Error() != "redis down" {
		t.Fatalf("wrapped error %v", un.Err)
	}
	f.rec.setFail(nil)
	revs, err := f.rcv.Receive(context.Background(), set)
	if err != nil || len(revs) != 1 {
		t.Fatalf("retry = %+v, %v", revs, err)
	}
	if n := len(f.rec.calls()); n != 2 {
		t.Fatalf("OnRevocation called %d times, want 2 (failed + retried)", n)
	}
}

func sameRevocation(a, b ssf.Revocation) bool {
	return a.Subject == b.Subject && a.Event == b.Event && a.JTI == b.JTI && a.At.Equal(b.At) && a.EventTime.Equal(b.EventTime)
}

func sign(t *testing.T, k ssftest.Key, claims map[string]any, opts ...ssftest.SignOption) string {
	t.Helper()
	s, err := ssftest.SignWith(k, claims, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func compact(t *testing.T, header, claims map[string]any, sig func([]byte) []byte) string {
	t.Helper()
	s, err := ssftest.Compact(header, claims, sig)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signPayload signs arbitrary bytes as a SET would be signed.
func signPayload(t *testing.T, k ssftest.Key, payload []byte) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType("secevent+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func flipSignature(t *testing.T, set string) string {
	t.Helper()
	i := strings.LastIndex(set, ".")
	sig, err := base64.RawURLEncoding.DecodeString(set[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x01
	return set[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// hmacWithPublicKey is the classic algorithm-confusion forgery: HS256 with
// the transmitter's public RSA key (as a verifier that hands the JWK's key
// to any algorithm would use it) as the HMAC secret.
func hmacWithPublicKey(t *testing.T, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key("rsa").Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return compact(t, map[string]any{"alg": "HS256", "typ": "secevent+jwt", "kid": "rsa-1"}, claims, func(in []byte) []byte {
		m := hmac.New(sha256.New, der)
		m.Write(in)
		return m.Sum(nil)
	})
}

func encrypt(t testing.TB, claims map[string]any) string {
	t.Helper()
	enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: key("rsa2").Signer.Public().(*rsa.PublicKey)},
		(&jose.EncrypterOptions{}).WithType("secevent+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jwe, err := enc.Encrypt(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwe.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func selfSigned(t *testing.T, k ssftest.Key) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "transmitter"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Signer.Public(), k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func noRequests(t *testing.T, tr *ssftest.Transmitter) {
	t.Helper()
	if md, jwks := tr.Requests(); md != 0 || jwks != 0 {
		t.Fatalf("the attacker's server was contacted: metadata %d, jwks %d", md, jwks)
	}
}

// serve hands set to ServeHTTP as a transmitter's push would.
func serve(h http.Handler, set string) pushAnswer {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/ssf/events", strings.NewReader(set))
	req.Header.Set("Content-Type", ssf.ContentType)
	h.ServeHTTP(rec, req)
	return pushAnswer{rec.Code, rec.Result().Header, rec.Body.Bytes()}
}
