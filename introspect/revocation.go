package introspect

// Revocations (issue 15): a revocation of a token, a subject, a client or
// an email address makes every cached answer about it that was verified at
// or before the revocation a miss, on every tier, so that the token is
// introspected again: a user whose access was removed at the authorization
// server is refused at once, and one who is merely re-checked gets in after
// one introspection. The records themselves are sharedcache's
// RevocationSet, fed by the admin API, OpenID Shared Signals and Redis
// pub/sub; this file is where the verifier consults it.

import (
	"encoding/binary"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/tokendigest"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// accept makes e the accepted answer c for token: its TokenInfo
// (setInfo) and, when revocations are kept, the keyed ID its token
// revocations name (tokendigest.Revocation: not e.digest, which for a JWT
// covers its signature too). Every accepted entry is made here, once per
// verification, before it is judged against the revocations or cached,
// never per hit: a hit only reads.
func (v *Verifier) accept(e *entry, c *accesstoken.Claims, token string) {
	e.setInfo(c, v.known)
	if t := v.tier; t != nil && t.revs != nil {
		e.id, e.hasID = t.ids.ID(tokendigest.Revocation(token)), true
	}
}

// PrincipalOf is who a verified token is about, as revocations name it:
// its subject (the TokenInfo's UserID: "sub", else "username"), its client
// and its email, as the verifier keeps them.
func PrincipalOf(ti *auth.TokenInfo) sharedcache.Principal {
	if ti == nil {
		return sharedcache.Principal{}
	}
	who := sharedcache.Principal{Sub: ti.UserID}
	who.ClientID, _ = ti.Extra["client_id"].(string)
	who.Email, _ = ti.Extra["email"].(string)
	return who
}

// revokedEntry reports whether a cached accepted answer must not be used
// because a revocation applies to it, counting it for tier. On an empty
// set it is one atomic load: the hot path of a deployment that never
// revokes is unchanged.
func (v *Verifier) revokedEntry(e *entry, tier CacheTier) bool {
	t := v.tier
	if t == nil || t.revs == nil || !e.accepted || t.revs.Len() == 0 {
		return false
	}
	if !t.revs.Revoked(e.id, e.principal(), e.verifiedAt.Time()) {
		return false
	}
	if t.obs != nil {
		t.obs.RevokedAnswer(tier)
	}
	return true
}

// flightKey is the singleflight key of a miss: the digest, and once
// revocations exist, their generation, so that a request made after a
// revocation never shares a call that started before it (whose answer may
// predate the revocation).
func (v *Verifier) flightKey(d *[32]byte) string {
	t := v.tier
	if t == nil || t.revs == nil {
		return string(d[:])
	}
	var k [40]byte
	copy(k[:], d[:])
	binary.BigEndian.PutUint64(k[32:], t.revs.Generation())
	return string(k[:])
}

// jwtRevoked judges a JWT verified locally against the revocations. A JWT
// is what its issuer vouched for when it issued it, so its verification
// time is its "iat" (now when it has none, or one in the future): a token
// issued at or before a revocation of itself, its subject, its client or
// its email falls under it, however often it is verified again. It sets
// e.verifiedAt. ask is true when the authorization server can decide
// instead (introspection is configured); otherwise err refuses the token,
// as the revocation asked. Neither is cached: once the revocation expires
// (revocation TTL) the token is judged on its own again.
func (v *Verifier) jwtRevoked(e *entry, c *accesstoken.Claims, now time.Time) (err error, ask bool) {
	e.verifiedAt = instantOf(now)
	if iat := accesstoken.Time(c.Iat, c.HasIat); c.HasIat && !iat.After(now) {
		e.verifiedAt = instantOf(iat)
	}
	if !v.revokedEntry(e, TierLocal) {
		return nil, false
	}
	if v.local.mode.Introspects {
		return nil, true
	}
	v.obs.Validation(ValidatorJWT, false)
	return &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive,
		Detail: "revoked: issued before a revocation of this token, its subject or its client"}, false
}
