// This file implements bearer token extraction from the Authorization
// request header field (RFC 6750 §2.1), the only method MCP allows.

package prm

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
)

// ErrNoToken is returned when the request has no Authorization header field
// at all. The gateway answers it with 401 and a challenge without an error
// code (RFC 6750 §3.1: no error information for a request that lacks
// authentication).
var ErrNoToken = errors.New("no bearer token")

// MalformedError is returned for a request whose credentials cannot be read:
// a bad Authorization header field, or a token sent by a method other than
// the header. The gateway answers it with 400 invalid_request (RFC 6750 §3.1).
//
// Problem never contains the token or the header field value.
type MalformedError struct {
	Problem string
}

func (e *MalformedError) Error() string {
	return "malformed Authorization header: " + e.Problem
}

// Problems named in a [MalformedError].
const (
	ProblemMultipleHeaders  = "more than one Authorization header field"
	ProblemEmptyHeader      = "empty Authorization header field"
	ProblemUnsupported      = "unsupported scheme"
	ProblemSeparator        = "scheme must be followed by a space"
	ProblemMissingToken     = "missing bearer token"
	ProblemTooLong          = "bearer token too long"
	ProblemInvalidCharacter = "invalid character in bearer token"
	ProblemTrailingData     = "unexpected data after bearer token"
	ProblemQueryToken       = "token in URL query not supported"
	ProblemFormBody         = "token in form body not supported"
)

// TokenFromHeader returns the bearer token in the Authorization header field
// values (as from r.Header.Values("Authorization")).
//
// The grammar is RFC 6750 §2.1:
//
//	credentials = "Bearer" 1*SP b64token
//	b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//
// after removing optional whitespace (SP, HTAB) around the whole value,
// which is not part of a field value (RFC 9110 §5.5). So:
//
//   - no values: [ErrNoToken]; more than one value, or one that is empty:
//     [*MalformedError];
//   - the scheme is matched case-insensitively (RFC 9110 §11.1), and must be
//     "Bearer" (Basic, DPoP, ... are "unsupported scheme");
//   - it is followed by one or more SP; HTAB or anything else there is refused,
//     as the grammar says;
//   - the token must be a b64token of at most [accesstoken.MaxLength] bytes, and
//     nothing may follow it (no second token, no auth-params).
//
// The token returned is a substring of the value: a valid header costs no
// allocation.
func TokenFromHeader(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", &MalformedError{Problem: ProblemMultipleHeaders}
	}
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return "", &MalformedError{Problem: ProblemEmptyHeader}
	}
	const scheme = "Bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", &MalformedError{Problem: ProblemUnsupported}
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", &MalformedError{Problem: ProblemMissingToken}
	}
	if rest[0] != ' ' {
		if rest[0] == '\t' {
			return "", &MalformedError{Problem: ProblemSeparator}
		}
		// e.g. "Bearerx abc": some other scheme.
		return "", &MalformedError{Problem: ProblemUnsupported}
	}
	i := 0
	for i < len(rest) && rest[i] == ' ' {
		i++
	}
	tok := rest[i:]
	if tok == "" {
		return "", &MalformedError{Problem: ProblemMissingToken}
	}
	if problem := checkB64Token(tok); problem != "" {
		return "", &MalformedError{Problem: problem}
	}
	return tok, nil
}

// checkB64Token returns "" if s is a b64token (RFC 6750 §2.1) of at most
// accesstoken.MaxLength bytes, else the problem with it.
func checkB64Token(s string) string {
	if len(s) > accesstoken.MaxLength {
		return ProblemTooLong
	}
	i := 0
	for i < len(s) && isB64TokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return ProblemInvalidCharacter
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	if i < len(s) {
		switch s[i] {
		case ' ', '\t', ',':
			return ProblemTrailingData
		default:
			return ProblemInvalidCharacter
		}
	}
	return ""
}

// b64token character set, as bitmasks over bytes 0-63 and 64-127:
// ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
const (
	b64CharsLo uint64 = 0x3ffe80000000000  // "+" "-" "." "/" DIGIT
	b64CharsHi uint64 = 0x47fffffe87fffffe // ALPHA "_" "~"
)

// isB64TokenChar reports whether c is ALPHA / DIGIT / "-" / "." / "_" / "~"
// / "+" / "/".
func isB64TokenChar(c byte) bool {
	if c < 64 {
		return b64CharsLo&(1<<c) != 0
	}
	return c < 128 && b64CharsHi&(1<<(c-64)) != 0
}

// TokenFromRequest returns the bearer token of r, which must be sent in the
// Authorization header field (see [TokenFromHeader]).
//
// The other RFC 6750 methods are refused with a [*MalformedError], whether or
// not the header is also present (using two methods is itself invalid,
// RFC 6750 §3.1):
//
//   - an access_token parameter in the URL query (§2.3): the MCP
//     authorization specification forbids tokens in the query string;
//   - a form-encoded body (§2.2): any request whose Content-Type is
//     application/x-www-form-urlencoded is refused, since MCP bodies are JSON.
//     The body is never read, so this costs nothing and cannot be used to
//     make the gateway buffer a body before authentication.
func TokenFromRequest(r *http.Request) (string, error) {
	if r.URL != nil && r.URL.RawQuery != "" {
		// ParseQuery returns what it could parse even on error.
		if q, _ := url.ParseQuery(r.URL.RawQuery); q.Has("access_token") {
			return "", &MalformedError{Problem: ProblemQueryToken}
		}
	}
	if isFormContentType(r.Header.Get("Content-Type")) {
		return "", &MalformedError{Problem: ProblemFormBody}
	}
	return TokenFromHeader(r.Header.Values("Authorization"))
}

// isFormContentType reports whether the media type of the Content-Type value
// ct is application/x-www-form-urlencoded, ignoring parameters and case.
func isFormContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.Trim(mt, " \t"), "application/x-www-form-urlencoded")
}
