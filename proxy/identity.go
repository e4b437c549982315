package proxy

import (
	"context"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/net/http/httpguts"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// Identity is the caller the gateway authenticated, as the upstream learns
// it from the X-MCP-* request headers. The gateway has verified the bearer
// token and enforced the scope policy before the proxy runs; the proxy
// never sees the token.
type Identity struct {
	// Subject is the token's sub (or username): X-MCP-Subject. Sessions are
	// bound to it.
	Subject string
	// ClientID is the OAuth client the token was issued to: X-MCP-Client-ID.
	// Sessions are bound to it when the token names no subject.
	ClientID string
	// Email is sent as X-MCP-Email when known and safe to send.
	Email string
	// Scopes are the granted scopes, sent space-separated as X-MCP-Scopes.
	Scopes []string
}

// IdentityFromTokenInfo is the Identity the gateway's verifier describes:
// Subject from UserID (sub, or username), ClientID and Email from the
// "client_id" and "email" entries of Extra, Scopes as granted.
func IdentityFromTokenInfo(ti *auth.TokenInfo) Identity {
	if ti == nil {
		return Identity{}
	}
	str := func(k string) string { s, _ := ti.Extra[k].(string); return s }
	return Identity{Subject: ti.UserID, ClientID: str("client_id"), Email: str("email"), Scopes: ti.Scopes}
}

// Bounds on the identity header values. Node's HTTP parser refuses more
// than 16 KiB of headers in all; a subject, client id or email longer than
// this is not one an authorization server issues.
const (
	maxIdentityValue = 1024
	maxScopesValue   = 8192
)

// userKey is who sessions and streams are counted and bound by: the
// subject, or the client id of a token without one. The kind keeps a
// client id from ever equalling a subject.
type userKey struct {
	kind byte // 's' (subject) or 'c' (client id)
	id   string
}

// caller is an Identity prepared once for the request: the key sessions
// are bound to and the header values, or why they cannot be sent.
type caller struct {
	key      userKey
	subject  []string
	clientID []string
	email    []string // nil: not sent
	scopes   []string
	err      string // non-empty: refuse the request with 403 and this description
}

type identityKey struct{}

// WithIdentity returns a context that carries id to [Proxy.ServeHTTP]. The
// gateway calls it after authenticating the request; a request whose
// context has no identity is refused (fail closed).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, prepare(id))
}

// readBodyKey carries a POST body its caller has read whole and peeked.
type readBodyKey struct{}

type peekedBody struct {
	body []byte
	msgs []rpcpeek.Message
}

// WithBody returns a context that carries a POST body its caller has
// already read whole and read with rpcpeek.Peek without a syntax error
// (msgs are its messages), so that [Proxy.ServeHTTP] neither reads nor
// parses it again. The gateway reads every POST body before its policy
// check; the proxy still bounds it by MaxBodyBytes.
func WithBody(ctx context.Context, body []byte, msgs []rpcpeek.Message) context.Context {
	return context.WithValue(ctx, readBodyKey{}, &peekedBody{body: body, msgs: msgs})
}

func callerFrom(ctx context.Context) (*caller, bool) {
	c, ok := ctx.Value(identityKey{}).(*caller)
	return c, ok
}

// prepare checks and formats the identity headers. A value that is not a
// valid field value (RFC 9110 §5.5: no CR, LF, NUL or other controls), has
// surrounding whitespace (which parsers strip, so "alice " would arrive as
// "alice"), or is too long is not sent altered: altering it could make two
// callers look alike to the upstream. Subject, client id and scopes are
// what the upstream authorizes on, so such a value refuses the request;
// an unsafe email is left out. A scope must be an RFC 6749 §3.3
// scope-token: one with a space would forge a second scope in the list.
func prepare(id Identity) *caller {
	// One allocation holds the four header values.
	c := &caller{}
	vals := make([]string, 4)
	switch {
	case id.Subject != "":
		c.key = userKey{'s', id.Subject}
	case id.ClientID != "":
		c.key = userKey{'c', id.ClientID}
	default:
		c.err = "the token names neither a subject nor a client"
		return c
	}
	if id.Subject != "" {
		if !safeValue(id.Subject, maxIdentityValue) {
			c.err = "the token's subject cannot be sent to the upstream server"
			return c
		}
		vals[0] = id.Subject
		c.subject = vals[0:1:1]
	}
	if id.ClientID != "" {
		if !safeValue(id.ClientID, maxIdentityValue) {
			c.err = "the token's client id cannot be sent to the upstream server"
			return c
		}
		vals[1] = id.ClientID
		c.clientID = vals[1:2:2]
	}
	if id.Email != "" && safeValue(id.Email, maxIdentityValue) {
		vals[2] = id.Email
		c.email = vals[2:3:3]
	}
	n := 0
	for _, s := range id.Scopes {
		if !scopes.ValidToken(s) {
			c.err = "the token carries a scope that cannot be sent to the upstream server"
			return c
		}
		n += len(s) + 1
	}
	if n > maxScopesValue {
		c.err = "the token carries too many scopes to send to the upstream server"
		return c
	}
	vals[3] = strings.Join(id.Scopes, " ")
	c.scopes = vals[3:4:4]
	return c
}

func safeValue(v string, max int) bool {
	if v == "" || len(v) > max || !httpguts.ValidHeaderFieldValue(v) {
		return false
	}
	first, last := v[0], v[len(v)-1]
	return first != ' ' && first != '\t' && last != ' ' && last != '\t'
}
