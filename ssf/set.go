package ssf

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/jwks"
)

// DefaultAlgorithms returns the JWS algorithms accepted when
// Config.Algorithms is empty: every asymmetric algorithm of RFC 7518 §3.1
// and RFC 8037 §3.1. "none" and the HMAC family are never accepted (RFC
// 8725 §3.1, §3.2): a SET must prove it comes from the transmitter, and an
// HMAC key is one the receiver would share.
func DefaultAlgorithms() []string { return jwks.AsymmetricNames() }

// asymmetricAlgorithm reports whether alg may be configured at all.
func asymmetricAlgorithm(alg string) bool {
	return slices.Contains(jwks.Asymmetric(), jose.SignatureAlgorithm(alg))
}

// secEventType is the RFC 8417 §2.3 "typ" of a SET ("application/"
// omitted, as RFC 7515 §4.1.9 recommends).
const secEventType = "secevent+jwt"

// maxJTILen bounds "jti": it is kept in the replay cache.
const maxJTILen = 256

// maxKeysTried bounds the keys a SET without "kid" is checked against (RFC
// 7515 §4.1.4 makes kid optional; transmitters with one or two keys often
// omit it): the jwks.KeySet's KeylessCandidates, checked again where the
// signatures are.
const maxKeysTried = 4

// verifiedSET is a SET whose signature and claims passed every check.
type verifiedSET struct {
	JTI      string
	IssuedAt time.Time
	Toe      time.Time // RFC 8417 §2.2 "toe", if present
	Events   []event
}

// claims is the SET's claims set, each member kept raw and looked up by
// its exact name: JWT claim names are case-sensitive (RFC 7519 §4), which
// decoding into a struct would not respect, and a member of the wrong JSON
// type must be refused rather than silently zeroed.
type claims map[string]json.RawMessage

// verifySET checks one SET in JWS compact serialization (RFC 7515 §7.1)
// and returns what it says. In order:
//
//  1. Shape: three parts (five is a JWE: refused, this receiver holds no
//     decryption key and RFC 8417 §5.1 only needs integrity here).
//  2. Header: "alg" in the allowlist (never none or HMAC, RFC 8725 §3.1);
//     no "crit" (RFC 7515 §4.1.11: a receiver must refuse extensions it does
//     not implement, and this one implements none); no "cty" (RFC 7519 §5.2:
//     that would be a nested JWT); "typ" secevent+jwt (RFC 8417 §2.3, made
//     mandatory by SSF 1.0 §4.1.1 against confusion with other JWTs),
//     missing only if AcceptUntyped.
//  3. Key and signature: the key comes from the transmitter's JWKS by
//     "kid" and "alg" only (keySet, a jwks.KeySet), and the signature must
//     verify with it.
//  4. Claims (checked only once the signature holds, so nothing an outsider
//     writes is interpreted before it is authenticated): iss, aud, iat,
//     exp, nbf, jti, no "sub", and the events (see checkClaims).
//
// It does not look at the replay cache; the caller does.
func (r *Receiver) verifySET(ctx context.Context, raw []byte) (*verifiedSET, error) {
	s := strings.TrimSpace(string(raw))
	switch strings.Count(s, ".") {
	case 2:
	case 4:
		return nil, refused(CodeInvalidRequest, ReasonEncrypted, "encrypted SETs (JWE) are not accepted; send a signed SET (JWS)")
	default:
		return nil, refused(CodeInvalidRequest, ReasonMalformed, "the body is not a SET in JWS compact serialization")
	}
	header, err := rawHeader(s)
	if err != nil {
		return nil, refused(CodeInvalidRequest, ReasonMalformed, "the SET's JOSE header is not a base64url-encoded JSON object")
	}
	if _, ok := header["crit"]; ok {
		return nil, refused(CodeInvalidRequest, ReasonCritical, `the SET's header has a "crit" parameter; no JWS extension is supported (RFC 7515 §4.1.11)`)
	}
	if _, ok := header["cty"]; ok {
		return nil, refused(CodeInvalidRequest, ReasonEncrypted, `the SET's header has a "cty" parameter; nested JWTs are not accepted (RFC 7519 §5.2)`)
	}
	if err := r.checkType(header["typ"]); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(s, r.algs)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, refused(CodeInvalidKey, ReasonAlgorithm, "the SET's alg is not an allowed asymmetric algorithm (never none or HMAC)")
		}
		return nil, refused(CodeInvalidRequest, ReasonMalformed, "the body is not a SET in JWS compact serialization")
	}
	if len(jws.Signatures) != 1 {
		return nil, refused(CodeInvalidRequest, ReasonMalformed, "the SET must carry exactly one signature")
	}
	sig := jws.Signatures[0]
	// The key is chosen by kid and alg alone: jku, x5u, jwk and x5c in the
	// header are never used (RFC 8725 §3.10).
	keys, err := r.keys.keysFor(ctx, sig.Protected.KeyID, sig.Protected.Algorithm)
	if err != nil {
		return nil, err
	}
	if len(keys) > maxKeysTried {
		// Only possible without a kid: each try is a signature check an
		// unauthenticated POST would make this receiver pay for.
		return nil, refused(CodeInvalidKey, ReasonUnknownKey, "the SET names no kid and the transmitter's JWKS holds too many keys for its alg to try them all")
	}
	var payload []byte
	for _, k := range keys {
		if p, err := jws.Verify(k.Key); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, refused(CodeAuthenticationFailed, ReasonSignature, "the SET's signature does not verify with the transmitter's key")
	}
	return r.checkClaims(payload)
}

// rawHeader decodes the protected header of a compact JWS, so that "crit",
// "cty" and "typ" are read as sent rather than as a library's model of them.
func rawHeader(compact string) (map[string]json.RawMessage, error) {
	enc, _, _ := strings.Cut(compact, ".")
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, err
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil || h == nil {
		return nil, errors.New("not a JSON object")
	}
	return h, nil
}

// checkType applies RFC 8417 §2.3 / SSF 1.0 §4.1.1 explicit typing. The
// media type comparison is case-insensitive and the "application/" prefix
// optional (RFC 7515 §4.1.9).
func (r *Receiver) checkType(raw json.RawMessage) error {
	if raw == nil {
		if r.cfg.AcceptUntyped {
			return nil
		}
		return refused(CodeInvalidRequest, ReasonType, `the SET's header has no "typ"; SETs must be explicitly typed secevent+jwt (RFC 8417 §2.3, SSF 1.0 §4.1.1)`)
	}
	var typ string
	if err := json.Unmarshal(raw, &typ); err == nil {
		mt := strings.ToLower(typ)
		if !strings.Contains(mt, "/") {
			mt = "application/" + mt
		}
		if parsed, _, err := mime.ParseMediaType(mt); err == nil && parsed == "application/"+secEventType {
			return nil
		}
	}
	return refused(CodeInvalidRequest, ReasonType, `the SET's "typ" is not secevent+jwt (RFC 8417 §2.3)`)
}

// checkClaims validates the verified claims set:
//   - "iss" identical to Config.Issuer (RFC 8417 §2.2, SSF 1.0 §4.1.6);
//   - "aud" (a string or an array of strings, RFC 7519 §4.1.3) naming one of
//     Config.Audience; required, though RFC 8417 only recommends it,
//     because without it a SET meant for another receiver of the same
//     transmitter would be accepted here;
//   - "iat" a NumericDate no older than MaxAge and no later than now +
//     ClockSkew: a SET older than that could be a replay the bounded replay
//     cache no longer remembers (RFC 8417 §2.2 makes "iat" REQUIRED; the
//     window is this receiver's policy);
//   - "exp", which SSF 1.0 §4.1.7 says transmitters must not send, is
//     tolerated from older transmitters but honoured: a SET past its exp
//     is refused; "nbf" likewise;
//   - "jti" a non-empty string (RFC 8417 §2.2 REQUIRED), bounded;
//   - no "sub": SSF 1.0 §4.1.2 forbids it, so that a SET cannot pass for an
//     ID or access token (RFC 8417 §4.1, §4.2), and a JWT carrying one is
//     more likely such a token replayed here than a SET;
//   - "events" (parseEvents).
func (r *Receiver) checkClaims(payload []byte) (*verifiedSET, error) {
	var c claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&c); err != nil || c == nil || dec.More() {
		return nil, refused(CodeInvalidRequest, ReasonMalformed, "the SET's payload is not a JSON object")
	}
	var iss string
	if c["iss"] == nil || json.Unmarshal(c["iss"], &iss) != nil || iss != r.cfg.Issuer {
		return nil, refused(CodeInvalidIssuer, ReasonIssuer, `the SET's "iss" is not the configured transmitter`)
	}
	if !r.audienceOK(c["aud"]) {
		return nil, refused(CodeInvalidAudience, ReasonAudience, `the SET's "aud" does not name this receiver`)
	}
	now := r.now()
	if c["iat"] == nil {
		return nil, refused(CodeInvalidRequest, ReasonIssuedAt, `the SET has no "iat" (RFC 8417 §2.2)`)
	}
	iat, err := numericDate(c["iat"])
	if err != nil {
		return nil, refused(CodeInvalidRequest, ReasonIssuedAt, `the SET's "iat" is not a NumericDate`)
	}
	if iat.Before(now.Add(-r.cfg.MaxAge)) {
		return nil, refused(CodeInvalidRequest, ReasonStale, `the SET's "iat" is older than this receiver accepts`)
	}
	if iat.After(now.Add(r.cfg.ClockSkew)) {
		return nil, refused(CodeInvalidRequest, ReasonFuture, `the SET's "iat" is in the future`)
	}
	if c["exp"] != nil {
		exp, err := numericDate(c["exp"])
		if err != nil {
			return nil, refused(CodeInvalidRequest, ReasonMalformed, `the SET's "exp" is not a NumericDate`)
		}
		if !now.Before(exp.Add(r.cfg.ClockSkew)) {
			return nil, refused(CodeInvalidRequest, ReasonExpired, `the SET's "exp" has passed`)
		}
	}
	if c["nbf"] != nil {
		nbf, err := numericDate(c["nbf"])
		if err != nil {
			return nil, refused(CodeInvalidRequest, ReasonMalformed, `the SET's "nbf" is not a NumericDate`)
		}
		if nbf.After(now.Add(r.cfg.ClockSkew)) {
			return nil, refused(CodeInvalidRequest, ReasonFuture, `the SET's "nbf" is in the future`)
		}
	}
	var jti string
	if c["jti"] == nil || json.Unmarshal(c["jti"], &jti) != nil || jti == "" || len(jti) > maxJTILen {
		return nil, refused(CodeInvalidRequest, ReasonJTI, `the SET's "jti" is missing, empty or too long (RFC 8417 §2.2)`)
	}
	if c["sub"] != nil {
		return nil, refused(CodeInvalidRequest, ReasonSubClaim, `the SET has a "sub" claim, which SSF 1.0 §4.1.2 forbids`)
	}
	v := &verifiedSET{JTI: jti, IssuedAt: iat}
	if c["toe"] != nil {
		if v.Toe, err = numericDate(c["toe"]); err != nil {
			return nil, refused(CodeInvalidRequest, ReasonMalformed, `the SET's "toe" is not a NumericDate`)
		}
	}
	events, rerr := parseEvents(c["events"], c["sub_id"], r.cfg.MaxEvents, r.keys.critical())
	if rerr != nil {
		return nil, rerr
	}
	v.Events = events
	return v, nil
}

// audienceOK reports whether aud, a string or a non-empty array of strings,
// names one of the configured audiences.
func (r *Receiver) audienceOK(raw json.RawMessage) bool {
	if raw == nil {
		return false
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return slices.Contains(r.cfg.Audience, one)
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return false
	}
	for _, a := range many {
		if slices.Contains(r.cfg.Audience, a) {
			return true
		}
	}
	return false
}
