package introspect

import (
	"crypto/elliptic"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/tokendigest"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// A token revocation names a JWT by its signed content, not by its whole
// string: an ECDSA signature (r, s) has a twin (r, n-s) that whoever holds
// the token can compute, a valid token of its own. Revoking the token
// revokes its twin, whether the twin was seen before the revocation or
// only after.
func TestTokenRevocationCoversTheSignatureTwin(t *testing.T) {
	as := newJWTAS(t, jwtaccesstest.WithKey(jwtaccesstest.NewKey(t, jose.ES256, "ec-1")))
	var revs *sharedcache.RevocationSet
	var ids *sharedcache.IDs
	v, clk, _ := newJWTVerifier(t, as, false, func(c *Config) {
		revs = sharedcache.NewRevocationSet(time.Minute, 0, c.Now)
		ids, _ = sharedcache.NewIDs(testKeySecret)
		c.Shared = SharedTier{Revocations: revs, IDs: ids}
	})
	t0 := clk.Now()
	issue := func(sub string) (tok, twin string) {
		claims := as.jwt.Claims(sub, []string{"op"}, testResource, time.Hour)
		claims["iat"] = t0.Add(-10 * time.Second).Unix()
		tok = as.jwt.Token(claims)
		return tok, ecdsaTwin(t, tok, elliptic.P256())
	}
	seen, seenTwin := issue("alice")
	unseen, unseenTwin := issue("bob")
	for _, tok := range []string{seen, seenTwin, unseen} {
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("before the revocations: %v (the twin of a valid token is valid)", err)
		}
	}
	v.Wait()
	for _, tok := range []string{seen, unseen} {
		revs.Add(sharedcache.Revocation{Kind: sharedcache.KindToken, Value: ids.ID(tokendigest.Revocation(tok)).String(), At: t0})
	}
	for name, tok := range map[string]string{"revoked, cached": seen, "its twin, cached": seenTwin, "revoked": unseen, "its twin, never seen": unseenTwin} {
		if _, err := v.Verify(t.Context(), tok); reasonOf(err) != accesstoken.ReasonInactive {
			t.Errorf("%s: %v, want refused as revoked", name, err)
		}
	}
}

// ecdsaTwin rewrites the JWS signature (r, s) of token (RFC 7518 §3.4: r
// and s, each the curve's size) as (r, n-s), which verifies as well.
func ecdsaTwin(t *testing.T, token string, curve elliptic.Curve) string {
	t.Helper()
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		t.Fatal(err)
	}
	half := len(sig) / 2
	s := new(big.Int).SetBytes(sig[half:])
	twin := append([]byte(nil), sig[:half]...)
	twin = append(twin, new(big.Int).Sub(curve.Params().N, s).FillBytes(make([]byte, half))...)
	return token[:dot+1] + base64.RawURLEncoding.EncodeToString(twin)
}
