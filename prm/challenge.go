// This file implements the WWW-Authenticate response header field of the
// Bearer scheme (RFC 6750 §3), with the resource_metadata parameter of
// RFC 9728 §5.1, as profiled by the MCP authorization specification.

package prm

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// Error codes of the Bearer scheme (RFC 6750 §3.1), for [Challenge.Error] and
// [ErrorBody.Error].
const (
	// ErrInvalidRequest: the request is missing a required parameter, uses
	// more than one method of sending the token, or is otherwise malformed.
	// Sent with 400 Bad Request.
	ErrInvalidRequest = "invalid_request"
	// ErrInvalidToken: the token is expired, revoked, malformed, or invalid
	// for other reasons. Sent with 401 Unauthorized.
	ErrInvalidToken = "invalid_token"
	// ErrInsufficientScope: the request requires more privileges than the
	// token grants. Sent with 403 Forbidden, and with the needed scope.
	ErrInsufficientScope = "insufficient_scope"
)

// Challenge is one Bearer challenge of a WWW-Authenticate response header
// field (RFC 6750 §3). Empty fields are omitted.
type Challenge struct {
	// ResourceMetadata is the "resource_metadata" parameter (RFC 9728 §5.1):
	// the absolute URL of the protected resource metadata (see [MetadataURL]).
	ResourceMetadata string

	// Scope is the "scope" parameter (RFC 6750 §3): the scopes needed to
	// access the resource, space-joined. Values that are not RFC 6749 §3.3
	// scope-tokens are dropped.
	Scope []string

	// Error is the "error" parameter (RFC 6750 §3): "", or one of
	// [ErrInvalidRequest], [ErrInvalidToken], [ErrInsufficientScope].
	Error string

	// ErrorDescription is the "error_description" parameter (RFC 6750 §3),
	// human-readable text for developers.
	ErrorDescription string
}

// String returns the challenge as a WWW-Authenticate field value:
//
//	Bearer resource_metadata="...", scope="op:add op:sub", error="invalid_token", error_description="..."
//
// Parameters appear in that order and are omitted when empty (after the
// filtering below); with none left the result is just "Bearer". Every value
// is sent as a quoted-string (RFC 9110 §5.6.4). String never fails, so it
// sanitizes instead, and its result never contains CR, LF or any other
// control character, whatever the input:
//
//   - resource_metadata: bytes outside %x21-7E, and '"' and '\', are
//     percent-encoded, so a URL is still a URL and cannot end the quoted-string;
//   - scope: values that are not scope-tokens (RFC 6749 §3.3) are dropped;
//   - error, error_description: restricted to the RFC 6750 §3 character set
//     %x20-21 / %x23-5B / %x5D-7E. A double quote becomes an apostrophe;
//     HTAB, CR and LF become SP; any other character outside the set
//     (non-ASCII runes, and each byte of invalid UTF-8) becomes '?'.
//
// The character sets above exclude '"' and '\', so the quoted-string escape
// (a backslash before '"' or '\') is never needed in practice; it is applied
// anyway.
func (c Challenge) String() string {
	var b strings.Builder
	b.Grow(64 + len(c.ResourceMetadata) + len(c.ErrorDescription))
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		sep = ", "
		b.WriteString(name)
		b.WriteString(`="`)
		writeQuotedContent(&b, value)
		b.WriteByte('"')
	}
	param("resource_metadata", encodeURLChars(c.ResourceMetadata))
	param("scope", joinScopes(c.Scope))
	param("error", sanitizeErrorText(c.Error))
	param("error_description", sanitizeErrorText(c.ErrorDescription))
	return b.String()
}

// writeQuotedContent writes s as the content of a quoted-string
// (RFC 9110 §5.6.4), escaping '"' and '\' with a backslash.
func writeQuotedContent(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
}

// encodeURLChars percent-encodes every byte of s outside %x21-7E, and '"'
// and '\'.
func encodeURLChars(s string) string {
	ok := func(c byte) bool { return c > 0x20 && c < 0x7f && c != '"' && c != '\\' }
	n := 0
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	buf := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ok(c) {
			buf = append(buf, c)
		} else {
			buf = append(buf, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return string(buf)
}

// joinScopes space-joins the values of list that are scope-tokens.
func joinScopes(list []string) string {
	var b strings.Builder
	for _, s := range list {
		if !scopes.ValidToken(s) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// isErrorChar reports whether c may appear in "error" or "error_description"
// (RFC 6750 §3): %x20-21 / %x23-5B / %x5D-7E.
func isErrorChar(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
}

// sanitizeErrorText maps s into the RFC 6750 §3 error character set, as
// documented on [Challenge.String].
func sanitizeErrorText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !isErrorChar(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isErrorChar(c):
			b.WriteByte(c)
			i++
		case c == '"':
			b.WriteByte('\'')
			i++
		case c == '\t' || c == '\r' || c == '\n':
			b.WriteByte(' ')
			i++
		case c < utf8.RuneSelf:
			b.WriteByte('?')
			i++
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			b.WriteByte('?')
			i += size
		}
	}
	return b.String()
}

// ErrorBody is the JSON body of every error response the gateway sends
// (RFC 6750 §3 error codes, RFC 6749 §5.2 member names).
type ErrorBody struct {
	// Error (error) is the error code, e.g. [ErrInvalidToken].
	Error string `json:"error"`
	// ErrorDescription (error_description) is optional human-readable text.
	ErrorDescription string `json:"error_description,omitempty"`
}

// WriteError writes an error response: the WWW-Authenticate header field set
// to ch.String() (only when ch is not nil), Content-Type: application/json,
// Cache-Control: no-store, the status code, and body as JSON.
func WriteError(w http.ResponseWriter, status int, ch *Challenge, body ErrorBody) {
	h := w.Header()
	if ch != nil {
		h.Set("WWW-Authenticate", ch.String())
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	data, err := json.Marshal(body)
	if err != nil { // cannot happen for two strings
		data = []byte(`{"error":"server_error"}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
