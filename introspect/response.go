package introspect

import (
	"errors"

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
	// Every claim is type-checked on its own: IdPs disagree on shapes
	// ("aud" string or array, "scope" string or array) and one odd member
	// must not make the whole answer unreadable.
	m, err := accesstoken.ReadMembers(body)
	if err != nil {
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: errNotObject}
	}
	act := m.Active()
	if act == nil {
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: errNoActive}
	}
	switch string(act) {
	case "true":
	case "false":
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive}
	default:
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: errBadActive}
	}
	c, err := m.Claims()
	if err != nil {
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive, Detail: err.Error()}
	}
	return c, nil
}
