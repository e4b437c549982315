package accesstoken

// Reading a JSON object of claims (an RFC 7662 §2.2 introspection answer,
// an RFC 9068 §2.2 JWT payload) in one pass. Every new token pays for it,
// so it decodes into a struct of the members the gateway reads, matched by
// exact name, rather than a map of every member: unknown members ("jti",
// custom claims) are skipped unread, and no member is copied. Each claim is
// then parsed on its own (claims.go), so that one odd member is a refusal
// naming it, not an unreadable object.
//
// Package claimsref reads the same objects the slow, obvious way
// (encoding/json, a map, member by member); the tests check that both give
// the same result on every input, since a parser differential in an
// authorization decision is a vulnerability.

import (
	"encoding/json"
	"errors"

	sjson "github.com/segmentio/encoding/json"
)

// ErrNotObject means the data is not one JSON object (RFC 8259 §4), alone
// but for white space.
var ErrNotObject = errors.New("not a JSON object")

// Members are the members of a JSON object of claims that the gateway
// reads, as they came. Build them with ReadMembers: the claims they hold
// are then known to be valid JSON values.
type Members struct{ m members }

// members holds each member the gateway reads, raw, nil when absent (a
// member that is JSON null holds "null"). A duplicate name keeps its last
// value, as encoding/json into a map does (RFC 8259 §4 leaves duplicates
// to the implementation).
type members struct {
	Active    json.RawMessage `json:"active"`     // RFC 7662 §2.2
	Nonce     json.RawMessage `json:"nonce"`      // OpenID Connect Core §2
	Exp       json.RawMessage `json:"exp"`        // RFC 7519 §4.1.4
	Nbf       json.RawMessage `json:"nbf"`        // RFC 7519 §4.1.5
	Iat       json.RawMessage `json:"iat"`        // RFC 7519 §4.1.6
	Sub       json.RawMessage `json:"sub"`        // RFC 7519 §4.1.2
	Username  json.RawMessage `json:"username"`   // RFC 7662 §2.2
	Email     json.RawMessage `json:"email"`      // OpenID Connect Core §5.1
	ClientID  json.RawMessage `json:"client_id"`  // RFC 7662 §2.2, RFC 9068 §2.2
	Azp       json.RawMessage `json:"azp"`        // OpenID Connect Core §2
	Iss       json.RawMessage `json:"iss"`        // RFC 7519 §4.1.1
	TokenType json.RawMessage `json:"token_type"` // RFC 7662 §2.2
	TokenUse  json.RawMessage `json:"token_use"`  // Ory Hydra, AWS Cognito
	Typ       json.RawMessage `json:"typ"`        // Keycloak
	Aud       json.RawMessage `json:"aud"`        // RFC 7519 §4.1.3
	Scope     json.RawMessage `json:"scope"`      // RFC 7662 §2.2, RFC 9068 §2.2.3
	Scp       json.RawMessage `json:"scp"`        // Entra ID, Okta
}

// ReadMembers reads the members the gateway uses from data, which must be
// one JSON object. The Members point into data: data must not change while
// they are used.
func ReadMembers(data []byte) (*Members, error) {
	m := &Members{}
	if err := DecodeObject(data, &m.m); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeObject decodes data, which must be one JSON object, into the
// struct v points to, as the gateway reads every object it decides on (a
// JWT's claims and JOSE header, an introspection answer): member names
// match exactly (RFC 8259 §4, RFC 7515 §4 and RFC 7519 §4 make them
// case-sensitive; "EXP" is not "exp"), a duplicate name keeps its last
// value, and json.RawMessage fields point into data rather than being
// copied, so data must not change while v is used. Anything else is
// ErrNotObject.
func DecodeObject(data []byte, v any) error {
	rest, err := sjson.Parse(data, v, sjson.DontMatchCaseInsensitiveStructFields|sjson.DontCopyRawMessage)
	// Parse skips white space around the value, reads "null" into a struct
	// as nothing, and leaves what follows the value to the caller.
	if err != nil || len(rest) != 0 || !isObject(data) {
		return ErrNotObject
	}
	return nil
}

// isObject reports whether b, valid JSON, is an object.
func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// Active is the "active" member (RFC 7662 §2.2) as it came, nil when
// absent.
func (m *Members) Active() json.RawMessage { return m.m.Active }

// HasNonce reports whether a "nonce" member is present, whatever its value
// (JSON null included): only ID tokens carry one (OpenID Connect Core §2).
func (m *Members) HasNonce() bool { return m.m.Nonce != nil }

// Claims parses the claims. A claim the gateway relies on ("exp", "nbf",
// "iat", "iss", "aud", "sub", token types ...) with the wrong JSON type is
// a *ClaimError: the verdict fails closed rather than ignore it. Scopes
// only ever grant, so a "scope" or "scp" it cannot read grants nothing,
// which is the safe direction, and is dropped.
func (m *Members) Claims() (*Claims, error) {
	c := &Claims{}
	var err error
	if c.Exp, c.HasExp, err = numericDate(m.m.Exp); err != nil {
		return nil, &ClaimError{"exp"}
	}
	if c.Nbf, c.HasNbf, err = numericDate(m.m.Nbf); err != nil {
		return nil, &ClaimError{"nbf"}
	}
	if c.Iat, c.HasIat, err = numericDate(m.m.Iat); err != nil {
		return nil, &ClaimError{"iat"}
	}
	for _, s := range [...]struct {
		name string
		src  json.RawMessage
		dst  *string
	}{
		{"sub", m.m.Sub, &c.Sub}, {"username", m.m.Username, &c.Username}, {"email", m.m.Email, &c.Email},
		{"client_id", m.m.ClientID, &c.ClientID}, {"azp", m.m.Azp, &c.Azp}, {"iss", m.m.Iss, &c.Iss},
		{"token_type", m.m.TokenType, &c.TokenType}, {"token_use", m.m.TokenUse, &c.TokenUse}, {"typ", m.m.Typ, &c.Typ},
	} {
		if *s.dst, err = optionalString(s.src); err != nil {
			return nil, &ClaimError{s.name}
		}
	}
	if c.Aud, c.HasAud, err = stringOrArray(m.m.Aud); err != nil {
		return nil, &ClaimError{"aud"}
	}
	c.Scopes = appendScopes(c.Scopes, m.m.Scope)
	c.Scopes = appendScopes(c.Scopes, m.m.Scp)
	return c, nil
}
