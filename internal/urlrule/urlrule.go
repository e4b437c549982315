// Package urlrule holds the URL rules that several parts of the gateway
// apply, each defined once: which servers the gateway may send a secret or a
// token to (https, or plain http only to this machine), what an issuer
// identifier may look like (RFC 8414 §2), and when two issuer identifiers
// name the same issuer.
package urlrule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
)

// Server checks that s is an absolute URL the gateway may send a secret or
// a token to: https, or http only to a loopback host (127.0.0.0/8, ::1,
// localhost), because over plain http to anywhere else the client secret and
// every token cross the network in clear. A fragment is refused (it is never
// sent, so a URL carrying one is a mistake); a query is allowed (RFC 6749
// §3.1 lets an endpoint URI have one).
func Server(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an absolute URL with a host", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback.Host(u.Hostname()) {
			return nil, fmt.Errorf("%q must use https (http is accepted only for localhost and loopback addresses)", s)
		}
	default:
		return nil, fmt.Errorf("%q: the scheme must be https (or http on loopback)", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return nil, fmt.Errorf("%q must not have a fragment", s)
	}
	return u, nil
}

// Identifier checks a URL that identifies something rather than being
// called with parameters: an issuer (RFC 8414 §2: "https scheme and host,
// and optionally port and path components and no query or fragment
// components") or a protected resource (RFC 9728 §1.2, RFC 8707 §2). It is
// Server plus "no query".
func Identifier(s string) (*url.URL, error) {
	u, err := Server(s)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("%q must not have a query (RFC 8414 §2)", s)
	}
	return u, nil
}

// SameIssuer reports whether two issuer identifiers name the same issuer:
// exactly equal except for one trailing slash, which identity providers add
// or omit inconsistently between their metadata and their tokens. (RFC 8414
// §3.3 and OpenID Connect Core §3.1.3.7 compare exactly; the gateway
// tolerates this one difference on what it receives, while the doctor warns
// about it, because clients may not.)
func SameIssuer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// NoRedirects is the CheckRedirect of every client the gateway uses to
// reach a server it was configured with: a redirect is never followed, as
// it could take a secret, a token or a request to a URL that no rule above
// has checked (and a 307 would re-post the body). The 3xx answer is
// returned as it is, for the caller to treat as a failure.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
