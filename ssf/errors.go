package ssf

import (
	"fmt"
	"time"
)

// Code is an RFC 8935 §2.4 Security Event Token error code: the "err"
// member of a push failure response (§2.3). The values are the IANA
// "Security Event Token Error Codes" registry's, so a transmitter can act
// on them without reading the description.
type Code string

// The RFC 8935 §2.4 error codes.
const (
	// CodeInvalidRequest: the body is not a SET, or the SET or an event in
	// it does not conform to its definition (and every other refusal that
	// has no more specific code: stale, replayed, wrong type).
	CodeInvalidRequest Code = "invalid_request"
	// CodeInvalidKey: the key or algorithm the SET names is not acceptable:
	// a "kid" the transmitter's JWKS does not hold, an algorithm outside the
	// allowlist (none, HMAC).
	CodeInvalidKey Code = "invalid_key"
	// CodeInvalidIssuer: "iss" is not the configured transmitter.
	CodeInvalidIssuer Code = "invalid_issuer"
	// CodeInvalidAudience: "aud" names none of the configured audiences.
	CodeInvalidAudience Code = "invalid_audience"
	// CodeAuthenticationFailed: the transmitter could not be authenticated:
	// the signature does not verify with the key the SET names, or the
	// request lacks the configured Authorization header value.
	CodeAuthenticationFailed Code = "authentication_failed"
	// CodeAccessDenied: the transmitter is authenticated but not allowed to
	// send this SET. This receiver has no such policy today; the code is
	// listed so callers can switch on the full set.
	CodeAccessDenied Code = "access_denied"
)

// Reason names why a SET or a push request was refused, finer than Code.
// Values are stable strings for logs and metric labels; none carries any
// part of the SET.
type Reason string

// The reasons a SET or a push request is refused.
const (
	ReasonMethod        Reason = "method"            // not POST
	ReasonContentType   Reason = "content_type"      // not application/secevent+jwt
	ReasonTooLarge      Reason = "too_large"         // body over MaxBodyBytes
	ReasonAuthorization Reason = "authorization"     // Authorization header missing or wrong
	ReasonMalformed     Reason = "malformed"         // not a JWS compact serialization, payload not a JSON object
	ReasonEncrypted     Reason = "encrypted"         // a JWE, or a JWS wrapping another JWT (cty)
	ReasonAlgorithm     Reason = "algorithm"         // alg outside the allowlist (none, HS256 ...)
	ReasonCritical      Reason = "critical"          // a "crit" header parameter
	ReasonType          Reason = "type"              // typ missing or not secevent+jwt
	ReasonUnknownKey    Reason = "unknown_key"       // no key in the transmitter's JWKS matches kid and alg
	ReasonSignature     Reason = "signature"         // the signature does not verify
	ReasonIssuer        Reason = "issuer"            // iss missing or not Config.Issuer
	ReasonAudience      Reason = "audience"          // aud missing or names none of Config.Audience
	ReasonIssuedAt      Reason = "issued_at"         // iat missing or not a number
	ReasonStale         Reason = "stale"             // iat older than MaxAge
	ReasonFuture        Reason = "future"            // iat (or nbf) later than now + ClockSkew
	ReasonExpired       Reason = "expired"           // exp present and passed
	ReasonJTI           Reason = "jti"               // jti missing, empty or too long
	ReasonReplay        Reason = "replay"            // jti seen within MaxAge
	ReasonSubClaim      Reason = "sub_claim"         // a top-level "sub" claim
	ReasonEvents        Reason = "events"            // events missing, empty, not objects, too many
	ReasonSubject       Reason = "subject"           // a revoking event's subject is missing or malformed
	ReasonKeysUnavail   Reason = "keys_unavailable"  // the transmitter's keys could not be fetched (now)
	ReasonReplayFull    Reason = "replay_cache_full" // every remembered jti is live
	ReasonRevocationErr Reason = "revocation_failed" // OnRevocation returned an error
)

// AllReasons lists every Reason in a stable order: the label set of a
// metric of refused pushes.
func AllReasons() []Reason {
	return []Reason{ReasonMethod, ReasonContentType, ReasonTooLarge, ReasonAuthorization, ReasonMalformed,
		ReasonEncrypted, ReasonAlgorithm, ReasonCritical, ReasonType, ReasonUnknownKey, ReasonSignature,
		ReasonIssuer, ReasonAudience, ReasonIssuedAt, ReasonStale, ReasonFuture, ReasonExpired, ReasonJTI,
		ReasonReplay, ReasonSubClaim, ReasonEvents, ReasonSubject, ReasonKeysUnavail, ReasonReplayFull,
		ReasonRevocationErr, ReasonAbandoned}
}

// ReasonAbandoned: the push was given up before it was answered (its
// request's context ended). Only reported to Observer.
const ReasonAbandoned Reason = "abandoned"

// Observer receives the outcome of every push ServeHTTP answers, for
// metrics. reason is "" for an accepted SET (202), else why it was refused
// or not processed. It must be safe for concurrent use and cheap.
type Observer interface {
	Push(reason Reason)
}

// RefusedError means the SET (or the push request carrying it) was examined
// and is not acceptable; sending it again will not change that. Nothing was
// revoked and its jti was not recorded. ServeHTTP answers it with the RFC
// 8935 §2.3 error body. Description is a fixed sentence of this package: it
// never repeats anything from the request.
type RefusedError struct {
	Code        Code
	Reason      Reason
	Description string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("ssf: SET refused (%s, %s): %s", e.Code, e.Reason, e.Description)
}

func refused(code Code, reason Reason, description string) *RefusedError {
	return &RefusedError{Code: code, Reason: reason, Description: description}
}

// UnavailableError means the SET could not be processed now: the
// transmitter's keys could not be fetched, the replay cache is full of live
// entries, or OnRevocation failed. The SET may well be valid; ServeHTTP
// answers 503 with Retry-After so the transmitter delivers it again (RFC
// 8935 §4 leaves retries to the transmitter; a 4xx would tell it not to).
// Nothing is recorded, so the retry is not taken for a replay.
type UnavailableError struct {
	Reason     Reason
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("ssf: SET not processed now (%s)", e.Reason)
	}
	return fmt.Sprintf("ssf: SET not processed now (%s): %v", e.Reason, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }
