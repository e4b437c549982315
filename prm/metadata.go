// This file implements the protected resource's half of OAuth 2.0 Protected
// Resource Metadata. See https://www.rfc-editor.org/rfc/rfc9728.html.

package prm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// WellKnownPath is the well-known URI path suffix registered by RFC 9728 §3,
// prefixed with "/.well-known/".
const WellKnownPath = "/.well-known/oauth-protected-resource"

// Config describes this protected resource. It is turned into a
// [oauthex.ProtectedResourceMetadata] by [NewMetadata].
type Config struct {
	// Resource becomes the "resource" metadata parameter (RFC 9728 §2): the
	// protected resource's resource identifier, an absolute https URL with no
	// query and no fragment (RFC 9728 §1.2, RFC 8707 §2); http is allowed only
	// for loopback hosts (localhost, 127.0.0.0/8, ::1).
	//
	// It is copied verbatim, never normalized: RFC 9728 §3.3 requires clients
	// to check that it is identical to the URL they used. The gateway reads it
	// from MCP_RESOURCE_URL, e.g. "https://calc.example.com/mcp".
	Resource string

	// AuthorizationServers becomes "authorization_servers" (RFC 9728 §2): the
	// RFC 8414 issuer identifiers of the authorization servers that issue
	// tokens for this resource. The MCP authorization specification requires
	// at least one. Each must be an absolute https URL (http only for
	// loopback hosts) without query or fragment (RFC 8414 §2).
	AuthorizationServers []string

	// ScopesSupported becomes "scopes_supported" (RFC 9728 §2). Each value
	// must be an RFC 6749 §3.3 scope-token.
	ScopesSupported []string

	// ResourceName becomes "resource_name" (RFC 9728 §2), a human-readable
	// name for display to the end user. Optional; recommended.
	ResourceName string

	// ResourceDocumentation becomes "resource_documentation" (RFC 9728 §2),
	// the absolute http(s) URL of developer documentation. Optional.
	ResourceDocumentation string
}

// NewMetadata validates cfg and returns the RFC 9728 §2 metadata document for
// it, with "bearer_methods_supported" set to ["header"] (RFC 6750 §2.1 only:
// MCP forbids tokens in the query string, and form bodies are not accepted).
//
// All problems found are reported together, joined with [errors.Join].
// The returned document does not share slices with cfg.
func NewMetadata(cfg Config) (*oauthex.ProtectedResourceMetadata, error) {
	var errs []error
	if err := checkResource(cfg.Resource); err != nil {
		errs = append(errs, fmt.Errorf("resource: %w", err))
	}
	if len(cfg.AuthorizationServers) == 0 {
		errs = append(errs, errors.New("authorization_servers: at least one authorization server is required"))
	}
	for i, as := range cfg.AuthorizationServers {
		if err := checkIssuer(as); err != nil {
			errs = append(errs, fmt.Errorf("authorization_servers[%d]: %w", i, err))
		}
	}
	for i, s := range cfg.ScopesSupported {
		if !scopes.ValidToken(s) {
			errs = append(errs, fmt.Errorf("scopes_supported[%d]: %q is not an RFC 6749 scope-token", i, s))
		}
	}
	if cfg.ResourceDocumentation != "" {
		if err := checkDocURL(cfg.ResourceDocumentation); err != nil {
			errs = append(errs, fmt.Errorf("resource_documentation: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &oauthex.ProtectedResourceMetadata{
		Resource:               cfg.Resource,
		AuthorizationServers:   append([]string(nil), cfg.AuthorizationServers...),
		ScopesSupported:        append([]string(nil), cfg.ScopesSupported...),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           cfg.ResourceName,
		ResourceDocumentation:  cfg.ResourceDocumentation,
	}, nil
}

// parseAbsolute parses s as an absolute URL with a host and no fragment.
func parseAbsolute(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("empty URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme == "" || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an absolute URL with a host", s)
	}
	if strings.Contains(s, "#") {
		return nil, fmt.Errorf("%q has a fragment", s)
	}
	return u, nil
}

// checkHTTPSOrLoopback requires https, or http to a loopback host.
func checkHTTPSOrLoopback(s string, u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback.Host(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q uses http; https is required except for loopback hosts", s)
	default:
		return fmt.Errorf("%q: scheme %q is not https", s, u.Scheme)
	}
}

// checkResource validates a resource identifier (RFC 9728 §1.2, RFC 8707 §2).
func checkResource(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	if err := checkHTTPSOrLoopback(s, u); err != nil {
		return err
	}
	if u.User != nil {
		return fmt.Errorf("%q has user information", s)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%q has a query", s)
	}
	return nil
}

// checkIssuer validates an authorization server issuer identifier
// (RFC 8414 §2: https, no query, no fragment; http allowed for loopback).
func checkIssuer(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	if err := checkHTTPSOrLoopback(s, u); err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%q has a query", s)
	}
	return nil
}

// checkDocURL validates a documentation URL: absolute http or https.
func checkDocURL(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: scheme %q is not http or https", s, u.Scheme)
	}
	return nil
}

// splitResource parses resource as an absolute URL without fragment and
// splits the original string, unmodified, after its authority component.
func splitResource(resource string) (prefix, rest string, u *url.URL, err error) {
	u, err = parseAbsolute(resource)
	if err != nil {
		return "", "", nil, err
	}
	i := strings.Index(resource, "://")
	if i < 0 {
		return "", "", nil, fmt.Errorf("%q is not an absolute URL with a host", resource)
	}
	start := i + len("://")
	end := strings.IndexAny(resource[start:], "/?")
	if end < 0 {
		return resource, "", u, nil
	}
	return resource[:start+end], resource[start+end:], u, nil
}

// MetadataURL returns the URL at which clients look up the metadata of
// resource (RFC 9728 §3.1): the well-known path is inserted between the host
// and the path (and query) components, after removing a terminating slash
// that directly follows the host.
//
//	https://h/mcp -> https://h/.well-known/oauth-protected-resource/mcp
//	https://h/    -> https://h/.well-known/oauth-protected-resource
//
// The scheme, authority and path are copied from resource byte for byte.
// resource must be an absolute URL with a host and no fragment.
func MetadataURL(resource string) (string, error) {
	prefix, rest, _, err := splitResource(resource)
	if err != nil {
		return "", err
	}
	if rest == "/" {
		rest = ""
	} else if strings.HasPrefix(rest, "/?") {
		rest = rest[1:]
	}
	return prefix + WellKnownPath + rest, nil
}

// MetadataPaths returns the request paths at which the metadata of resource
// must be served: always [WellKnownPath] (for clients that only try the root
// location), then the RFC 9728 §3.1 path-inserted one when resource has a
// path other than "/", e.g. "/.well-known/oauth-protected-resource/mcp".
// Paths are in escaped form (see [url.URL.EscapedPath]) and never repeat.
func MetadataPaths(resource string) ([]string, error) {
	_, _, u, err := splitResource(resource)
	if err != nil {
		return nil, err
	}
	paths := []string{WellKnownPath}
	if p := u.EscapedPath(); p != "" && p != "/" {
		paths = append(paths, WellKnownPath+p)
	}
	return paths, nil
}

// Handler serves md as the RFC 9728 §3.2 metadata response.
//
//   - GET: 200, Content-Type: application/json, the JSON document (encoded
//     once, here), Cache-Control: public, max-age=300.
//   - OPTIONS: 204 (CORS preflight).
//   - any other method: 405 with Allow: GET, OPTIONS and the JSON body
//     {"error":"method_not_allowed"}.
//
// Every response carries Access-Control-Allow-Origin: *, since metadata is
// public and browser-based MCP clients fetch it cross-origin, and allows the
// Content-Type and MCP-Protocol-Version request headers (the MCP Inspector
// sends the latter on discovery). A nil md is served as 500 server_error.
func Handler(md *oauthex.ProtectedResourceMetadata) http.Handler {
	var doc []byte
	var docErr error
	if md == nil {
		docErr = errors.New("nil metadata")
	} else {
		doc, docErr = json.Marshal(md)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, MCP-Protocol-Version")
		switch r.Method {
		case http.MethodGet:
			if docErr != nil {
				WriteError(w, http.StatusInternalServerError, nil, ErrorBody{Error: "server_error"})
				return
			}
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "public, max-age=300")
			h.Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(doc)
		case http.MethodOptions:
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
		default:
			h.Set("Allow", "GET, OPTIONS")
			WriteError(w, http.StatusMethodNotAllowed, nil, ErrorBody{Error: "method_not_allowed"})
		}
	})
}
