// Package accesstoken is what a resource server knows and decides about an
// OAuth 2.0 access token, whichever way it was validated: the claims it
// relies on (RFC 7662 §2.2 introspection members, which RFC 9068 §2.2 JWT
// access tokens share), how they are parsed from JSON, the checks applied to
// them (issuer, audience per RFC 8707, token type, expiry), and the reasons
// a token is refused.
//
// Validators (RFC 7662 introspection, RFC 9068 local JWT verification)
// produce Claims; the Checker and CheckTime decide. Nothing here makes a
// network call or sees the raw token.
package accesstoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// MaxLength is the longest access token the gateway accepts, in bytes. Real
// access tokens (opaque or JWT) are far shorter; refusing huge ones locally
// stops a client from using the gateway to flood the authorization server,
// and bounds what every later step handles.
const MaxLength = 4096

// Claims are the members of an introspection answer or a JWT access token's
// payload the gateway uses. Everything else is ignored, as RFC 7662 §2.2
// and RFC 7519 §4 allow.
type Claims struct {
	// Scopes is the union of "scope" (RFC 7662 §2.2, RFC 9068 §2.2.3: a
	// space-separated string; some IdPs send a JSON array) and "scp" (array
	// or string, Entra/Okta style), each a valid RFC 6749 §3.3
	// scope-token, without duplicates, in order.
	Scopes []string

	// Unix seconds of "exp", "iat", "nbf" (RFC 7519 §4.1.4-6), valid only
	// when the matching Has flag is set.
	Exp, Iat, Nbf          int64
	HasExp, HasIat, HasNbf bool

	Sub      string // "sub" (RFC 7519 §4.1.2)
	Username string // "username" (RFC 7662 §2.2)
	Email    string // "email" (OpenID Connect Core §5.1; Okta, Keycloak)
	ClientID string // "client_id" (RFC 7662 §2.2, RFC 9068 §2.2)
	// Azp is "azp" (OpenID Connect Core §2: the party the token was
	// issued to), which Auth0, Keycloak, Entra and Clerk put in JWT access
	// tokens instead of "client_id".
	Azp string
	Iss string // "iss" (RFC 7519 §4.1.1)

	// Aud is "aud" (RFC 7519 §4.1.3), a string or an array of strings,
	// normalised to a slice. HasAud distinguishes a missing claim from an
	// empty array.
	Aud    []string
	HasAud bool

	TokenType string // "token_type" (RFC 7662 §2.2): "Bearer", or Ory's "refresh_token" ...
	TokenUse  string // "token_use" (Ory Hydra, AWS Cognito): "access_token", "refresh_token", "id_token"
	Typ       string // "typ" (Keycloak): "Bearer", "Refresh", "ID", "Offline"
}

// Client is the OAuth client the token was issued to: "client_id"
// (RFC 9068 §2.2), else "azp".
func (c *Claims) Client() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return c.Azp
}

// maxUnixSeconds bounds accepted timestamps to before year 10000 so that
// time arithmetic never overflows and a hostile value cannot wrap around.
const maxUnixSeconds = 253402300799

// Unmarshal decodes JSON as encoding/json.Unmarshal does. Validators pass
// the decoder they parse with, so that one claim is never read two ways.
type Unmarshal func(data []byte, v any) error

// ClaimError says which claim has the wrong JSON type or an impossible
// value. The validator decides what that means (introspection fails closed
// with ReasonInactive).
type ClaimError struct{ Claim string }

func (e *ClaimError) Error() string { return "unparsable " + e.Claim }

// ParseMembers reads Claims from the members of a JSON object. A claim the
// gateway relies on ("exp", "nbf", "iat", "iss", "aud", "sub", token types
// ...) with the wrong JSON type is a *ClaimError: the verdict fails closed
// rather than ignore it. Scopes only ever grant, so a "scope" or "scp" it
// cannot read grants nothing, which is the safe direction, and is dropped.
func ParseMembers(unmarshal Unmarshal, members map[string]json.RawMessage) (*Claims, error) {
	c := &Claims{}
	var err error
	if c.Exp, c.HasExp, err = numericDate(unmarshal, members["exp"]); err != nil {
		return nil, &ClaimError{"exp"}
	}
	if c.Nbf, c.HasNbf, err = numericDate(unmarshal, members["nbf"]); err != nil {
		return nil, &ClaimError{"nbf"}
	}
	if c.Iat, c.HasIat, err = numericDate(unmarshal, members["iat"]); err != nil {
		return nil, &ClaimError{"iat"}
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"sub", &c.Sub}, {"username", &c.Username}, {"email", &c.Email},
		{"client_id", &c.ClientID}, {"azp", &c.Azp}, {"iss", &c.Iss},
		{"token_type", &c.TokenType}, {"token_use", &c.TokenUse}, {"typ", &c.Typ},
	} {
		if *s.dst, err = OptionalString(unmarshal, members[s.name]); err != nil {
			return nil, &ClaimError{s.name}
		}
	}
	if c.Aud, c.HasAud, err = StringOrArray(unmarshal, members["aud"]); err != nil {
		return nil, &ClaimError{"aud"}
	}
	c.Scopes = appendScopes(unmarshal, c.Scopes, members["scope"])
	c.Scopes = appendScopes(unmarshal, c.Scopes, members["scp"])
	return c, nil
}

// IsNull reports whether a member is absent or JSON null; both mean "no
// claim".
func IsNull(m json.RawMessage) bool {
	return len(m) == 0 || string(bytes.TrimSpace(m)) == "null"
}

// numericDate parses an RFC 7519 §2 NumericDate: a JSON number of seconds,
// possibly fractional (truncated). Strings are refused, not coerced.
func numericDate(unmarshal Unmarshal, m json.RawMessage) (int64, bool, error) {
	if IsNull(m) {
		return 0, false, nil
	}
	var f float64
	if err := unmarshal(m, &f); err != nil {
		return 0, false, err
	}
	if math.IsNaN(f) || f < 0 || f > maxUnixSeconds {
		return 0, false, errors.New("numeric date out of range")
	}
	return int64(f), true, nil
}

// OptionalString parses a member that must be a JSON string when present.
func OptionalString(unmarshal Unmarshal, m json.RawMessage) (string, error) {
	if IsNull(m) {
		return "", nil
	}
	var s string
	if err := unmarshal(m, &s); err != nil {
		return "", err
	}
	return s, nil
}

// StringOrArray parses a member that is a string or an array of strings,
// as RFC 7519 §4.1.3 "aud" is. ok is false when the member is absent.
func StringOrArray(unmarshal Unmarshal, m json.RawMessage) (list []string, ok bool, err error) {
	if IsNull(m) {
		return nil, false, nil
	}
	var s string
	if err := unmarshal(m, &s); err == nil {
		return []string{s}, true, nil
	}
	var a []string
	if err := unmarshal(m, &a); err != nil {
		return nil, false, err
	}
	if a == nil {
		a = []string{}
	}
	return a, true, nil
}

// appendScopes adds the scope-tokens of a "scope"/"scp" member to dst: a
// space-separated string (RFC 7662 §2.2) or an array whose elements are
// each split on spaces too. Tokens that are not valid RFC 6749 §3.3
// scope-tokens are dropped so a hostile claim cannot smuggle quotes or
// control characters into a WWW-Authenticate header later.
func appendScopes(unmarshal Unmarshal, dst []string, m json.RawMessage) []string {
	a, _, err := StringOrArray(unmarshal, m)
	if err != nil {
		return dst
	}
	for _, s := range a {
		for f := range strings.SplitSeq(s, " ") {
			if scopes.ValidToken(f) && !slices.Contains(dst, f) {
				dst = append(dst, f)
			}
		}
	}
	return dst
}
