package jwtaccess

// The JWS compact serialization, RFC 7515 §7.1: split, decoded, and its
// JOSE header read, before and apart from any signature check. go-jose's
// ParseSignedCompact does the same and more (it reads every header
// parameter it knows, embedded keys and certificates included), and was a
// quarter of the cost of a new token; the signature itself is checked by
// a library (verify.go).

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
)

// compact is a JWS in the compact serialization, not verified.
type compact struct {
	header header
	// signingInput is ASCII(BASE64URL(UTF8(JWS Protected Header)) || '.'
	// || BASE64URL(JWS Payload)), what the signature is over (RFC 7515
	// §5.2 step 8): the token's first two parts as they came.
	signingInput string
	payload      []byte
	signature    []byte
}

// header holds the JOSE header parameters that this verifier reads (RFC
// 7515 §4.1). All others are ignored: in particular "jku", "jwk", "x5u"
// and "x5c" never supply a key (RFC 8725 §3.10; keys come from the
// issuer's JWKS only). Parameters whose type is checked later, or whose
// mere presence refuses the token, are kept raw.
type header struct {
	// Alg is "alg" (§4.1.1): the algorithm, checked against
	// JWT_ALGORITHMS before anything else.
	Alg string `json:"alg"`
	// Kid is "kid" (§4.1.4): which key of the JWKS.
	Kid string `json:"kid"`
	// Typ is "typ" (§4.1.9): "at+jwt" for an RFC 9068 access token.
	Typ json.RawMessage `json:"typ"`
	// Cty is "cty" (§4.1.10): present only on a nested JWT, refused.
	Cty json.RawMessage `json:"cty"`
	// Crit is "crit" (§4.1.11): extensions that must be understood; none
	// is, so it is refused.
	Crit json.RawMessage `json:"crit"`
	// B64 is "b64" (RFC 7797 §3): an unencoded payload, refused whatever
	// its value (it is only meaningful listed in "crit").
	B64 json.RawMessage `json:"b64"`
}

var errNotCompact = errors.New("not a well-formed JWS compact serialization")

// partEncoding decodes a part: base64url without padding (RFC 7515 §2),
// strictly, so that unused trailing bits must be zero and a token has one
// spelling. (A re-spelled header or payload fails the signature anyway,
// and token revocations name a JWT without its signature part:
// tokendigest.Revocation.)
var partEncoding = base64.RawURLEncoding.Strict()

// parseCompact splits and decodes a token for which compactJWS holds. Its
// header must be a JSON object whose member names match exactly (RFC 7515
// §4: names are case-sensitive; a duplicate name takes the last value, as
// §4 allows); "alg" and "kid", when present, strings. The three parts are
// decoded into one buffer, which the payload, the signature and the
// header's raw members share.
func parseCompact(token string) (*compact, error) {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	parts := [3]string{token[:first], token[first+1 : last], token[last+1:]}
	n := 0
	for _, p := range parts {
		n += partEncoding.DecodedLen(len(p))
	}
	buf := make([]byte, n)
	var dec [3][]byte
	for i, p := range parts {
		k, err := partEncoding.Decode(buf, []byte(p))
		if err != nil {
			return nil, errNotCompact
		}
		dec[i], buf = buf[:k:k], buf[k:]
	}
	c := &compact{signingInput: token[:last], payload: dec[1], signature: dec[2]}
	if accesstoken.DecodeObject(dec[0], &c.header) != nil {
		return nil, errNotCompact
	}
	return c, nil
}

// compactJWS reports whether token has the shape of a JWS compact
// serialization: three non-empty base64url parts (RFC 7515 §7.1). Checked
// before any decoding so that whitespace, padding or a fourth part never
// reach the decoder (base64 decoders skip newlines).
func compactJWS(token string) bool {
	if len(token) == 0 || len(token) > accesstoken.MaxLength {
		return false
	}
	dots, last := 0, -1
	for i := 0; i < len(token); i++ {
		switch base64url[token[i]] {
		case partByte:
		case separator:
			if i == last+1 {
				return false // an empty part
			}
			dots++
			last = i
		default:
			return false
		}
	}
	return dots == 2 && last < len(token)-1
}

// Classes of a byte in a JWS compact serialization: the base64url
// alphabet without padding (RFC 7515 §2, RFC 4648 §5), the separator, and
// anything else (the zero value). A table, because this runs over every
// byte of every token before anything else.
const (
	partByte  = 1
	separator = 2
)

var base64url = func() (t [256]byte) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			t[c] = partByte
		case c == '.':
			t[c] = separator
		}
	}
	return t
}()
