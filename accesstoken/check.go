package accesstoken

import (
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// Checker holds the pre-computed, immutable inputs of the claim checks done
// on every validated token. Build it with NewChecker.
type Checker struct {
	issuer               string              // "" disables the "iss" check
	audiences            map[string]struct{} // normalised accepted audiences
	allowMissingAudience bool
}

// NewChecker returns a Checker accepting tokens from issuer ("" accepts any
// "iss") for any of audiences, compared after RFC 3986 §6.2.2 normalisation
// (see normalizeAudience). allowMissingAudience accepts a token with no
// "aud" (for IdPs that cannot bind tokens to a resource).
func NewChecker(issuer string, audiences []string, allowMissingAudience bool) *Checker {
	c := &Checker{issuer: issuer, audiences: make(map[string]struct{}, len(audiences)), allowMissingAudience: allowMissingAudience}
	for _, a := range audiences {
		c.audiences[normalizeAudience(a)] = struct{}{}
	}
	return c
}

// Static runs the checks whose outcome cannot change while a verdict is
// cached: token type, issuer and audience. Time (exp, nbf) is re-checked on
// every use by CheckTime.
func (c *Checker) Static(cl *Claims) *InvalidError {
	if err := checkTokenType(cl); err != nil {
		return err
	}
	// RFC 7662 §2.2 "iss" is optional; when present it must be the issuer we
	// trust, or an answer about some other issuer's token would be accepted.
	if c.issuer != "" && cl.Iss != "" && !urlrule.SameIssuer(cl.Iss, c.issuer) {
		return &InvalidError{Reason: ReasonIssuer, Detail: "iss does not match the configured issuer"}
	}
	// RFC 8707 / MCP authorization: a token must be meant for this resource,
	// or a token minted for another service could be replayed here.
	if !cl.HasAud || len(cl.Aud) == 0 {
		if c.allowMissingAudience {
			return nil
		}
		return &InvalidError{Reason: ReasonAudience, Detail: "token has no aud"}
	}
	for _, a := range cl.Aud {
		// An "aud" already in normal form is found as it came: normalizing
		// is idempotent (FuzzNormalizeAudience), so it would find the same.
		if _, ok := c.audiences[a]; ok {
			return nil
		}
		if _, ok := c.audiences[normalizeAudience(a)]; ok {
			return nil
		}
	}
	return &InvalidError{Reason: ReasonAudience, Detail: "aud does not name this resource"}
}

// StaticJWT runs the static checks on the claims of a JWT access token the
// gateway verified itself (RFC 9068 §4). No authorization server vouched
// for it, so what RFC 9068 §2.2 makes REQUIRED must be there and is not
// inferred: "exp" (a self-contained token without it would be valid
// forever) and "iss", which must exactly match the issuer ("MUST exactly
// match", RFC 9068 §4; not merely up to a trailing slash as for an
// introspection answer), so the Checker's issuer must be the authorization
// server's issuer exactly as its metadata declares it. Then Static.
func (c *Checker) StaticJWT(cl *Claims) *InvalidError {
	if !cl.HasExp {
		return &InvalidError{Reason: ReasonFormat, Detail: "exp is required (RFC 9068 §2.2)"}
	}
	if cl.Iss == "" {
		return &InvalidError{Reason: ReasonIssuer, Detail: "iss is required (RFC 9068 §2.2)"}
	}
	if c.issuer == "" || cl.Iss != c.issuer {
		return &InvalidError{Reason: ReasonIssuer, Detail: "iss does not exactly match the issuer"}
	}
	return c.Static(cl)
}

// checkTokenType refuses claims that describe something other than an
// access token. Several IdPs say "active": true for refresh and ID tokens
// too; a refresh token presented as a bearer token must not grant access.
// Unknown values are refused (fail closed).
func checkTokenType(cl *Claims) *InvalidError {
	// "token_type" (RFC 7662 §2.2): Okta and Hydra "Bearer", Ory
	// "refresh_token" for refresh tokens, RFC 8693 URIs from some servers.
	if t := cl.TokenType; t != "" {
		switch strings.ToLower(t) {
		case "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		default:
			return &InvalidError{Reason: ReasonTokenType, Detail: "token_type is not an access token"}
		}
	}
	// "token_use" (Ory Hydra "access_token"/"refresh_token", AWS Cognito
	// "access"/"id").
	if t := cl.TokenUse; t != "" {
		switch strings.ToLower(t) {
		case "access_token", "access":
		default:
			return &InvalidError{Reason: ReasonTokenType, Detail: "token_use is not an access token"}
		}
	}
	// "typ" (Keycloak: "Bearer", "Refresh", "Offline", "ID"; RFC 9068 JWT
	// access tokens "at+jwt").
	if t := cl.Typ; t != "" {
		switch strings.ToLower(t) {
		case "bearer", "at+jwt", "application/at+jwt":
		default:
			return &InvalidError{Reason: ReasonTokenType, Detail: "typ is not an access token"}
		}
	}
	return nil
}

// CheckTime applies "exp" and "nbf" (RFC 7519 §4.1.4-5, RFC 7662 §2.2)
// with the given clock skew; exp and nbf are the zero time when absent. It
// is the one place expiry is decided.
func CheckTime(exp, nbf, now time.Time, skew time.Duration) error {
	if !exp.IsZero() && !now.Before(exp.Add(skew)) {
		return &InvalidError{Reason: ReasonExpired}
	}
	if !nbf.IsZero() && now.Before(nbf.Add(-skew)) {
		return &InvalidError{Reason: ReasonNotYetValid}
	}
	return nil
}

// Time turns an optional unix time into a time.Time (zero when absent).
func Time(sec int64, ok bool) time.Time {
	if !ok {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}
