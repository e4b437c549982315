package introspect

import (
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// claimChecker holds the pre-computed, immutable inputs of the claim checks
// done on every introspection answer.
type claimChecker struct {
	issuer               string              // "" disables the "iss" check
	audiences            map[string]struct{} // normalised accepted audiences
	allowMissingAudience bool
}

func newClaimChecker(issuer string, audiences []string, allowMissing bool) claimChecker {
	c := claimChecker{issuer: issuer, audiences: make(map[string]struct{}, len(audiences)), allowMissingAudience: allowMissing}
	for _, a := range audiences {
		c.audiences[normalizeAudience(a)] = struct{}{}
	}
	return c
}

// checkStatic runs the checks whose outcome cannot change while the answer
// is cached: issuer, audience and token type. Their result is computed once
// at insert time; exp/nbf are re-checked on every use by checkTime.
func (c *claimChecker) checkStatic(r *response) *InvalidTokenError {
	if err := checkTokenType(r); err != nil {
		return err
	}
	// RFC 7662 §2.2 "iss" is optional; when present it must be the issuer we
	// trust, or an answer about some other issuer's token would be accepted.
	if c.issuer != "" && r.Iss != "" && !sameIssuer(r.Iss, c.issuer) {
		return &InvalidTokenError{Reason: ReasonIssuer, Detail: "iss does not match the configured issuer"}
	}
	// RFC 8707 / MCP authorization: a token must be meant for this resource,
	// or a token minted for another service could be replayed here.
	if !r.HasAud || len(r.Aud) == 0 {
		if c.allowMissingAudience {
			return nil
		}
		return &InvalidTokenError{Reason: ReasonAudience, Detail: "token has no aud"}
	}
	for _, a := range r.Aud {
		if _, ok := c.audiences[normalizeAudience(a)]; ok {
			return nil
		}
	}
	return &InvalidTokenError{Reason: ReasonAudience, Detail: "aud does not name this resource"}
}

// sameIssuer compares issuer identifiers exactly except for one trailing
// slash, which IdPs add or omit inconsistently between their metadata and
// their tokens.
func sameIssuer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// checkTokenType refuses answers that describe something other than an
// access token. Several IdPs say "active": true for refresh and ID tokens
// too; a refresh token presented as a bearer token must not grant access.
// Unknown values are refused (fail closed).
func checkTokenType(r *response) *InvalidTokenError {
	// "token_type" (RFC 7662 §2.2): Okta and Hydra "Bearer", Ory
	// "refresh_token" for refresh tokens, RFC 8693 URIs from some servers.
	if t := r.TokenType; t != "" {
		switch strings.ToLower(t) {
		case "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		default:
			return &InvalidTokenError{Reason: ReasonTokenType, Detail: "token_type is not an access token"}
		}
	}
	// "token_use" (Ory Hydra "access_token"/"refresh_token", AWS Cognito
	// "access"/"id").
	if t := r.TokenUse; t != "" {
		switch strings.ToLower(t) {
		case "access_token", "access":
		default:
			return &InvalidTokenError{Reason: ReasonTokenType, Detail: "token_use is not an access token"}
		}
	}
	// "typ" (Keycloak: "Bearer", "Refresh", "Offline", "ID"; RFC 9068 JWT
	// access tokens "at+jwt").
	if t := r.Typ; t != "" {
		switch strings.ToLower(t) {
		case "bearer", "at+jwt", "application/at+jwt":
		default:
			return &InvalidTokenError{Reason: ReasonTokenType, Detail: "typ is not an access token"}
		}
	}
	return nil
}

// checkTime applies "exp" and "nbf" (RFC 7662 §2.2, RFC 7519 §4.1.4-5)
// with the configured clock skew. exp/nbf are the zero time when absent.
func checkTime(exp, nbf, now time.Time, skew time.Duration) error {
	if !exp.IsZero() && !now.Before(exp.Add(skew)) {
		return &InvalidTokenError{Reason: ReasonExpired}
	}
	if !nbf.IsZero() && now.Before(nbf.Add(-skew)) {
		return &InvalidTokenError{Reason: ReasonNotYetValid}
	}
	return nil
}

// tokenInfo builds the SDK's TokenInfo from an accepted answer. It is built
// once per introspection and shared by every cache hit, so callers must
// treat it as read-only.
//
// Every cached token keeps one, so it holds only what is read downstream:
// the scopes, the expiry, the user (for the SDK's session binding) and, in
// Extra, "sub", "username", "email", "client_id" (whoami) and "aud". The
// claims checked once at insert time (iss, token type, nbf) are not kept.
// Well-known strings (the operation scopes, the configured audience) are
// shared rather than copied per token.
func (r *response) tokenInfo(known *interner) *auth.TokenInfo {
	n := 0
	for _, present := range [...]bool{r.HasAud, r.Sub != "", r.Username != "", r.Email != "", r.ClientID != ""} {
		if present {
			n++
		}
	}
	ti := &auth.TokenInfo{Scopes: known.scopes(r.Scopes), Extra: make(map[string]any, n)}
	if r.HasExp {
		ti.Expiration = time.Unix(r.Exp, 0).UTC()
	}
	ti.UserID = r.Sub
	if ti.UserID == "" {
		ti.UserID = r.Username
	}
	for _, kv := range [...]struct{ k, v string }{
		{"sub", r.Sub}, {"username", r.Username}, {"email", r.Email}, {"client_id", r.ClientID},
	} {
		if kv.v != "" {
			ti.Extra[kv.k] = kv.v
		}
	}
	if r.HasAud {
		ti.Extra["aud"] = known.audience(r.Aud)
	}
	return ti
}

// interner hands out shared copies of strings most tokens carry, so that a
// cache of many tokens does not hold many copies of them.
type interner struct {
	scopeSet map[string]string
	audSets  [][]string // one single-element slice per configured audience
}

func newInterner(scopeTokens, audiences []string) *interner {
	in := &interner{scopeSet: make(map[string]string, len(scopeTokens))}
	for _, s := range scopeTokens {
		in.scopeSet[s] = s
	}
	for _, a := range audiences {
		in.audSets = append(in.audSets, []string{a})
	}
	return in
}

// scopes returns s with known scope-tokens replaced by shared strings, in
// a slice of exactly the right size; never nil.
func (in *interner) scopes(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		if k, ok := in.scopeSet[v]; ok {
			v = k
		}
		out[i] = v
	}
	return out
}

// audience returns a shared slice when aud is exactly one configured
// audience, else aud itself.
func (in *interner) audience(aud []string) []string {
	if len(aud) == 1 {
		for _, a := range in.audSets {
			if a[0] == aud[0] {
				return a
			}
		}
	}
	return aud
}

// timeOf turns an optional unix time into a time.Time (zero when absent).
func timeOf(sec int64, ok bool) time.Time {
	if !ok {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}
