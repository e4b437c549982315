package accesstoken

import "github.com/modelcontextprotocol/go-sdk/auth"

// Reason says why a token was refused. The values are stable strings, so a
// caller can put them in a metric label, a log line or an RFC 6750
// error_description without ever touching the token itself. They are the
// one vocabulary of refusals, whichever way the token was validated.
type Reason string

// The reasons a token is refused.
const (
	// ReasonInactive: the authorization server answered "active": false
	// (RFC 7662 §2.2), or the answer carried a claim that could not be
	// parsed and the verifier failed closed.
	ReasonInactive Reason = "inactive"
	// ReasonExpired: "exp" (plus the clock skew) is not in the future.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: "nbf" (minus the clock skew) is in the future.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonAudience: "aud" names none of the accepted audiences, or is
	// missing and a missing audience is not allowed.
	ReasonAudience Reason = "audience"
	// ReasonIssuer: "iss" is present and names another issuer.
	ReasonIssuer Reason = "issuer"
	// ReasonTokenType: the token is a refresh or ID token (or another
	// non-access type) per "token_type", "token_use" or Keycloak's "typ".
	ReasonTokenType Reason = "token_type"
	// ReasonRejected: the authorization server answered 400 about the token
	// itself (invalid_request, unsupported_token_type, invalid_token).
	ReasonRejected Reason = "rejected"
	// ReasonMalformed: the token is empty or longer than MaxLength; it is
	// refused without asking anyone.
	ReasonMalformed Reason = "malformed"
	// ReasonSignature: a JWT access token (RFC 9068) whose signature does
	// not verify with the issuer's key, names an algorithm outside the
	// allowlist, or names a key the issuer's JWKS does not hold.
	ReasonSignature Reason = "signature"
	// ReasonFormat: a token that must be a JWT access token is not one
	// the gateway can verify: not a JWS compact serialization, encrypted
	// or nested, an unknown critical header, or a required claim ("exp",
	// "iss") missing or unreadable.
	ReasonFormat Reason = "format"
)

// AllReasons lists every Reason, in a stable order: the label set of the
// refusal metrics is built from it.
func AllReasons() []Reason {
	return []Reason{ReasonInactive, ReasonExpired, ReasonNotYetValid, ReasonAudience,
		ReasonIssuer, ReasonTokenType, ReasonRejected, ReasonMalformed, ReasonSignature, ReasonFormat}
}

// InvalidError means the token was examined and is not acceptable: a
// resource server answers 401 invalid_token (RFC 6750 §3.1). It unwraps to
// auth.ErrInvalidToken, the Go MCP SDK's word for the same thing. Its
// message never contains the token.
type InvalidError struct {
	Reason Reason
	Detail string // short, token-free explanation; may be empty
}

func (e *InvalidError) Error() string {
	if e.Detail == "" {
		return "invalid token: " + string(e.Reason)
	}
	return "invalid token: " + string(e.Reason) + ": " + e.Detail
}

// Unwrap makes errors.Is(err, auth.ErrInvalidToken) true.
func (e *InvalidError) Unwrap() error { return auth.ErrInvalidToken }
