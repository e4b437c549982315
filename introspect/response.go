package introspect

import (
	"bytes"
	"encoding/json"
	"errors"

	sjson "github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
)

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
//   - *accesstoken.InvalidError{ReasonInactive} for "active": false, and
//     also when a claim we rely on has the wrong JSON type: we fail closed
//     rather than ignore it;
//   - the claims otherwise. They are not checked here (accesstoken.Checker
//     does that).
func parseResponse(body []byte) (*accesstoken.Claims, error) {
	return parseResponseWith(sjson.Unmarshal, body)
}

// parseResponseWith is parseResponse with a choice of JSON decoder. Every
// cache miss parses one answer, and segmentio's decoder (already the MCP
// SDK's) takes about a third of encoding/json's time on a typical answer
// (BenchmarkParseResponse: 10 µs against 34 µs); FuzzParseResponseDecoders
// checks the two decoders give the same verdict on every input, since a
// parser differential in an authorization decision is a vulnerability.
func parseResponseWith(unmarshal accesstoken.Unmarshal, body []byte) (*accesstoken.Claims, error) {
	// A map of raw members lets every claim be type-checked on its own:
	// IdPs disagree on shapes ("aud" string or array, "scope" string or
	// array) and one odd member must not make the whole answer unreadable.
	var raw map[string]json.RawMessage
	if err := unmarshal(body, &raw); err != nil || raw == nil {
		// The decoder's message may quote part of the body; the body does
		// not contain the token, but keep the error terse anyway.
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: errNotObject}
	}
	act, ok := raw["active"]
	if !ok {
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: errNoActive}
	}
	switch string(bytes.TrimSpace(act)) {
	case "true":
	case "false":
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive}
	default:
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: errBadActive}
	}
	c, err := accesstoken.ParseMembers(unmarshal, raw)
	if err != nil {
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive, Detail: err.Error()}
	}
	return c, nil
}
