package introspect

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// Reason says why a token was refused. The values are stable strings so a
// caller can put them in a metric label or an RFC 6750 error_description
// without ever touching the token itself.
type Reason string

// The reasons a token is refused.
const (
	// ReasonInactive: the authorization server answered "active": false
	// (RFC 7662 §2.2), or the answer carried a claim we could not parse and we
	// fail closed.
	ReasonInactive Reason = "inactive"
	// ReasonExpired: "exp" (plus ClockSkew) is not in the future.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: "nbf" (minus ClockSkew) is in the future.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonAudience: "aud" names none of the configured audiences, or is
	// missing and AllowMissingAudience is false.
	ReasonAudience Reason = "audience"
	// ReasonIssuer: "iss" is present and differs from Config.Issuer.
	ReasonIssuer Reason = "issuer"
	// ReasonTokenType: the token is a refresh or ID token (or another
	// non-access type) per "token_type", "token_use" or Keycloak's "typ".
	ReasonTokenType Reason = "token_type"
	// ReasonRejected: the authorization server answered 400 about the token
	// itself (invalid_request, unsupported_token_type, invalid_token).
	ReasonRejected Reason = "rejected"
	// ReasonMalformed: the token is empty or longer than MaxTokenLength; it
	// is refused without calling the authorization server.
	ReasonMalformed Reason = "malformed"
)

// InvalidTokenError means the token was examined and is not acceptable. It
// unwraps to auth.ErrInvalidToken so the MCP SDK's bearer middleware answers
// 401. Its message never contains the token.
type InvalidTokenError struct {
	Reason Reason
	Detail string // short, token-free explanation; may be empty
}

func (e *InvalidTokenError) Error() string {
	if e.Detail == "" {
		return "invalid token: " + string(e.Reason)
	}
	return "invalid token: " + string(e.Reason) + ": " + e.Detail
}

// Unwrap makes errors.Is(err, auth.ErrInvalidToken) true.
func (e *InvalidTokenError) Unwrap() error { return auth.ErrInvalidToken }

// UnavailableError means the token could not be checked: the authorization
// server was unreachable, slow, overloaded, or answered something we cannot
// interpret. The token may well be valid, so a resource server should answer
// 503 with Retry-After rather than 401 (a 401 would send clients back
// through login for nothing). It is never cached.
type UnavailableError struct {
	// RetryAfter is how long the caller should suggest clients wait: the
	// authorization server's Retry-After when it sent one (capped at
	// maxRetryAfter), else defaultRetryAfter.
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return "introspection unavailable"
	}
	return "introspection unavailable: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ClientAuthError means the authorization server refused the gateway's own
// client credentials (HTTP 401/403, or 400 invalid_client). It is a
// configuration error, not a problem with the caller's token, so it does not
// unwrap to auth.ErrInvalidToken. Until a later introspection succeeds,
// Verifier.Ready reports it.
type ClientAuthError struct {
	StatusCode int
}

func (e *ClientAuthError) Error() string {
	return "introspection: authorization server rejected the gateway's client credentials (HTTP " +
		strconv.Itoa(e.StatusCode) + ")"
}

const (
	// defaultRetryAfter is suggested when the authorization server gave no
	// Retry-After: long enough not to hammer it, short enough that a blip
	// costs users little.
	defaultRetryAfter = 5 * time.Second
	// maxRetryAfter caps what a (possibly misbehaving) authorization server
	// can make us tell clients.
	maxRetryAfter = 60 * time.Second
)

// unavailable builds an *UnavailableError with the default retry delay.
func unavailable(format string, args ...any) *UnavailableError {
	return &UnavailableError{RetryAfter: defaultRetryAfter, Err: fmt.Errorf(format, args...)}
}

// parseRetryAfter reads an RFC 9110 §10.2.3 Retry-After value: either
// delay-seconds or an HTTP-date. Missing, unparsable or non-positive values
// give defaultRetryAfter; large ones are capped at maxRetryAfter.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return defaultRetryAfter
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	} else {
		return defaultRetryAfter
	}
	switch {
	case d <= 0:
		return defaultRetryAfter
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d
}
