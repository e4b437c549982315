package introspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"

	sjson "github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// response is an RFC 7662 §2.2 introspection response after strict parsing.
// Only the members the gateway uses are kept; everything else in the answer
// is ignored, as §2.2 allows.
type response struct {
	// Scopes is the union of "scope" (§2.2: a space-separated string; some
	// IdPs send a JSON array) and "scp" (array or string, Azure/Okta style),
	// each a valid RFC 6749 §3.3 scope-token, without duplicates, in order.
	Scopes []string

	// Unix seconds of "exp", "iat", "nbf" (§2.2), valid only when the
	// matching Has flag is set.
	Exp, Iat, Nbf          int64
	HasExp, HasIat, HasNbf bool

	Sub      string // "sub" (§2.2)
	Username string // "username" (§2.2)
	Email    string // "email" (OpenID Connect Core §5.1; Okta, Keycloak)
	ClientID string // "client_id" (§2.2)
	Iss      string // "iss" (§2.2)

	// Aud is "aud" (§2.2), a string or an array of strings, normalised to a
	// slice. HasAud distinguishes a missing claim from an empty array.
	Aud    []string
	HasAud bool

	TokenType string // "token_type" (§2.2): "Bearer", or Ory's "refresh_token" ...
	TokenUse  string // "token_use" (Ory Hydra, AWS Cognito): "access_token", "refresh_token", "id_token"
	Typ       string // "typ" (Keycloak): "Bearer", "Refresh", "ID", "Offline"
}

// maxUnixSeconds bounds accepted timestamps to before year 10000 so that
// time arithmetic never overflows and a hostile value cannot wrap around.
const maxUnixSeconds = 253402300799

// errNotObject and friends describe why an answer cannot be interpreted at
// all; they end up inside an *UnavailableError.
var (
	errNotObject = errors.New("response is not a JSON object")
	errNoActive  = errors.New(`response has no "active" member`)
	errBadActive = errors.New(`response "active" is not a JSON boolean`)
)

// parseResponse parses an RFC 7662 §2.2 introspection response body.
//
// It returns:
//   - *UnavailableError when the body is not a JSON object or "active" is
//     missing or not a boolean: we cannot tell whether the token is active,
//     and guessing either way is wrong (§2.2 makes "active" REQUIRED);
//   - *InvalidTokenError{ReasonInactive} for "active": false, and also when
//     a claim we rely on ("exp", "nbf", "iss", "aud", "sub", token types ...)
//     has the wrong JSON type: we fail closed rather than ignore it;
//   - the parsed response otherwise. Claims are not checked here (see
//     verify.go).
func parseResponse(body []byte) (*response, error) {
	return parseResponseWith(sjson.Unmarshal, body)
}

// unmarshalFunc decodes JSON as encoding/json.Unmarshal does.
type unmarshalFunc func(data []byte, v any) error

// parseResponseWith is parseResponse with a choice of JSON decoder. Every
// cache miss parses one answer, and segmentio's decoder (already the MCP
// SDK's) takes about a third of encoding/json's time on a typical answer
// (BenchmarkParseResponse: 10 µs against 34 µs); FuzzParseResponseDecoders
// checks the two decoders give the same verdict on every input, since a
// parser differential in an authorization decision is a vulnerability.
func parseResponseWith(unmarshal unmarshalFunc, body []byte) (*response, error) {
	// A map of raw members lets every claim be type-checked on its own:
	// IdPs disagree on shapes ("aud" string or array, "scope" string or
	// array) and one odd member must not make the whole answer unreadable.
	var raw map[string]json.RawMessage
	if err := unmarshal(body, &raw); err != nil || raw == nil {
		// The decoder's message may quote part of the body; the body does
		// not contain the token, but keep the error terse anyway.
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: errNotObject}
	}
	act, ok := raw["active"]
	if !ok {
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: errNoActive}
	}
	switch string(bytes.TrimSpace(act)) {
	case "true":
	case "false":
		return nil, &InvalidTokenError{Reason: ReasonInactive}
	default:
		return nil, &UnavailableError{RetryAfter: defaultRetryAfter, Err: errBadActive}
	}

	r := &response{}
	var err error
	malformed := func(claim string) error {
		return &InvalidTokenError{Reason: ReasonInactive, Detail: "unparsable " + claim}
	}
	if r.Exp, r.HasExp, err = numericDate(unmarshal, raw["exp"]); err != nil {
		return nil, malformed("exp")
	}
	if r.Nbf, r.HasNbf, err = numericDate(unmarshal, raw["nbf"]); err != nil {
		return nil, malformed("nbf")
	}
	if r.Iat, r.HasIat, err = numericDate(unmarshal, raw["iat"]); err != nil {
		return nil, malformed("iat")
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"sub", &r.Sub}, {"username", &r.Username}, {"email", &r.Email},
		{"client_id", &r.ClientID}, {"iss", &r.Iss},
		{"token_type", &r.TokenType}, {"token_use", &r.TokenUse}, {"typ", &r.Typ},
	} {
		if *s.dst, err = optionalString(unmarshal, raw[s.name]); err != nil {
			return nil, malformed(s.name)
		}
	}
	if r.Aud, r.HasAud, err = stringOrArray(unmarshal, raw["aud"]); err != nil {
		return nil, malformed("aud")
	}
	// Scopes only ever grant; a scope claim we cannot read grants nothing,
	// which is the safe direction, so a bad shape is dropped, not fatal.
	r.Scopes = appendScopes(unmarshal, r.Scopes, raw["scope"])
	r.Scopes = appendScopes(unmarshal, r.Scopes, raw["scp"])
	return r, nil
}

// isNull reports whether a member is absent or JSON null; both mean "no
// claim".
func isNull(m json.RawMessage) bool {
	return len(m) == 0 || string(bytes.TrimSpace(m)) == "null"
}

// numericDate parses an RFC 7519 §2 NumericDate: a JSON number of seconds,
// possibly fractional (truncated). Strings are refused, not coerced.
func numericDate(unmarshal unmarshalFunc, m json.RawMessage) (int64, bool, error) {
	if isNull(m) {
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

// optionalString parses a member that must be a JSON string when present.
func optionalString(unmarshal unmarshalFunc, m json.RawMessage) (string, error) {
	if isNull(m) {
		return "", nil
	}
	var s string
	if err := unmarshal(m, &s); err != nil {
		return "", err
	}
	return s, nil
}

// stringOrArray parses RFC 7519 §4.1.3 "aud": a string or an array of
// strings.
func stringOrArray(unmarshal unmarshalFunc, m json.RawMessage) ([]string, bool, error) {
	if isNull(m) {
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

// appendScopes adds the scope-tokens of a "scope"/"scp" member to dst:
// a space-separated string (RFC 7662 §2.2) or an array whose elements are
// each split on spaces too. Tokens that are not valid RFC 6749 §3.3
// scope-tokens are dropped so a hostile claim cannot smuggle quotes or
// control characters into a WWW-Authenticate header later.
func appendScopes(unmarshal unmarshalFunc, dst []string, m json.RawMessage) []string {
	if isNull(m) {
		return dst
	}
	a, _, err := stringOrArray(unmarshal, m)
	if err != nil {
		return dst
	}
	for _, s := range a {
		dst = addScopeTokens(dst, s)
	}
	return dst
}

func addScopeTokens(dst []string, s string) []string {
	for f := range strings.SplitSeq(s, " ") {
		if !scopes.ValidToken(f) {
			continue
		}
		if !slices.Contains(dst, f) {
			dst = append(dst, f)
		}
	}
	return dst
}
