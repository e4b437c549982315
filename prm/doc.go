// Package prm implements the protected resource's side of OAuth 2.0 for the
// MCP gateway, as profiled by the MCP authorization specification:
//
//   - metadata.go: RFC 9728 protected resource metadata (the document, its
//     well-known URLs, and the HTTP handler that serves it);
//   - challenge.go: the RFC 6750 §3 WWW-Authenticate challenge, carrying the
//     RFC 9728 §5.1 resource_metadata parameter, and JSON error responses;
//   - bearer.go: RFC 6750 §2.1 bearer token extraction from the
//     Authorization request header field.
//
// The package has no mutable package-level state and makes no network calls.
package prm
