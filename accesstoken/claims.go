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
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	sjson "github.com/segmentio/encoding/json"

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

// ClaimError says which claim has the wrong JSON type or an impossible
// value. The validator decides what that means (introspection fails closed
// with ReasonInactive).
type ClaimError struct{ Claim string }

func (e *ClaimError) Error() string { return "unparsable " + e.Claim }

// isNull reports whether a member is absent or JSON null; both mean "no
// claim".
func isNull(m json.RawMessage) bool {
	return len(m) == 0 || string(m) == "null"
}

// A member is a valid JSON value (ReadMembers), so the common shapes are
// read directly, and anything else by the decoder ReadMembers uses:
//   - a number: its first byte is '-' or a digit, and strconv.ParseFloat
//     reads every JSON number (RFC 8259 §6) as encoding/json does; no
//     other JSON value decodes into a number;
//   - a plain string: printable ASCII between quotes, without escapes, is
//     its own value.

// isNumber reports whether m, a valid JSON value, is a number.
func isNumber(m json.RawMessage) bool {
	return len(m) > 0 && (m[0] == '-' || '0' <= m[0] && m[0] <= '9')
}

// plainString returns the value of m, a valid JSON value, when it is a
// string of printable ASCII without escapes.
func plainString(m json.RawMessage) (string, bool) {
	if len(m) < 2 || m[0] != '"' || m[len(m)-1] != '"' {
		return "", false
	}
	body := m[1 : len(m)-1]
	for _, c := range body {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(body), true
}

// numericDate parses an RFC 7519 §2 NumericDate: a JSON number of seconds,
// possibly fractional (truncated). Strings are refused, not coerced.
func numericDate(m json.RawMessage) (int64, bool, error) {
	if isNull(m) {
		return 0, false, nil
	}
	if !isNumber(m) {
		return 0, false, errors.New("numeric date is not a number")
	}
	f, err := strconv.ParseFloat(string(m), 64)
	if err != nil {
		return 0, false, err
	}
	if math.IsNaN(f) || f < 0 || f > maxUnixSeconds {
		return 0, false, errors.New("numeric date out of range")
	}
	return int64(f), true, nil
}

// optionalString parses a member that must be a JSON string when present.
func optionalString(m json.RawMessage) (string, error) {
	if isNull(m) {
		return "", nil
	}
	return jsonString(m)
}

// stringOrArray parses a member that is a string or an array of strings,
// as RFC 7519 §4.1.3 "aud" is. ok is false when the member is absent.
func stringOrArray(m json.RawMessage) (list []string, ok bool, err error) {
	if isNull(m) {
		return nil, false, nil
	}
	if s, err := jsonString(m); err == nil {
		return []string{s}, true, nil
	}
	var a []string
	if err := sjson.Unmarshal(m, &a); err != nil {
		return nil, false, err
	}
	if a == nil {
		a = []string{}
	}
	return a, true, nil
}

// jsonString decodes m, a valid JSON value, that must be a string.
func jsonString(m json.RawMessage) (string, error) {
	if s, ok := plainString(m); ok {
		return s, nil
	}
	var s string
	if err := sjson.Unmarshal(m, &s); err != nil {
		return "", err
	}
	return s, nil
}

// appendScopes adds the scope-tokens of a "scope"/"scp" member to dst: a
// space-separated string (RFC 7662 §2.2) or an array whose elements are
// each split on spaces too. Tokens that are not valid RFC 6749 §3.3
// scope-tokens are dropped so a hostile claim cannot smuggle quotes or
// control characters into a WWW-Authenticate header later.
func appendScopes(dst []string, m json.RawMessage) []string {
	a, _, err := stringOrArray(m)
	if err != nil {
		return dst
	}
	for _, s := range a {
		for f := range strings.SplitSeq(s, " ") {
			if scopes.ValidToken(f) && !slices.Contains(dst, f) {
				if dst == nil {
					dst = make([]string, 0, strings.Count(s, " ")+1)
				}
				dst = append(dst, f)
			}
		}
	}
	return dst
}
