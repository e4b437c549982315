package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// ServerMetadata is the subset of RFC 8414 §2 authorization server metadata
// (and the matching OpenID Connect Discovery 1.0 §3 fields) the gateway
// uses, with the whole document kept for diagnosis (see Claims).
type ServerMetadata struct {
	Issuer                                    string   `json:"issuer"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint,omitempty"` // RFC 8414 §2, from RFC 7662
	TokenEndpoint                             string   `json:"token_endpoint,omitempty"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint,omitempty"`
	RegistrationEndpoint                      string   `json:"registration_endpoint,omitempty"` // RFC 7591
	RevocationEndpoint                        string   `json:"revocation_endpoint,omitempty"`   // RFC 7009
	JWKSURI                                   string   `json:"jwks_uri,omitempty"`              // RFC 8414 §2: the issuer's signing keys
	ScopesSupported                           []string `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported,omitempty"` // RFC 8414 §2, from RFC 7636
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`

	// URL is where the document was found (one of MetadataURLs).
	URL string `json:"-"`
	raw []byte
}

// Claims decodes the whole metadata document into v, for the members the
// typed fields do not carry (as go-oidc's Provider.Claims does).
func (m *ServerMetadata) Claims(v any) error {
	if m == nil || m.raw == nil {
		return errors.New("introspect: no metadata document")
	}
	return json.Unmarshal(m.raw, v)
}

// ErrNoIntrospectionEndpoint is wrapped by Discover's error when the
// issuer's metadata was found but names no introspection endpoint the
// verifier may use.
var ErrNoIntrospectionEndpoint = errors.New("no usable introspection_endpoint")

// DiscoveryError says why no usable metadata was found for an issuer, with
// enough detail for the configuration doctor to suggest a fix.
type DiscoveryError struct {
	Issuer string
	// Tried lists the locations that answered something other than 200,
	// as "URL (HTTP status)".
	Tried []string
	// FoundAt and DeclaredIssuer are set when a document was found but
	// declares another issuer (RFC 8414 §3.3); DeclaredIssuer may be "".
	FoundAt, DeclaredIssuer string
	// Err is a transport failure, or a 200 that is not a metadata document.
	Err error
}

func (e *DiscoveryError) Error() string {
	switch {
	case e.FoundAt != "":
		return fmt.Sprintf("introspect: discovery: metadata at %s has issuer %q, want %q (RFC 8414 §3.3)", e.FoundAt, e.DeclaredIssuer, e.Issuer)
	case e.Err != nil:
		return "introspect: discovery: " + e.Err.Error()
	}
	return fmt.Sprintf("introspect: discovery: no metadata for issuer %q: tried %s", e.Issuer, strings.Join(e.Tried, ", "))
}

func (e *DiscoveryError) Unwrap() error { return e.Err }

// maxMetadataBytes bounds a metadata document; real ones are a few KiB.
const maxMetadataBytes = 1 << 20

// MetadataURLs lists, in the order DiscoverMetadata tries them, where an issuer's metadata may
// live:
//  1. RFC 8414 §3.1: /.well-known/oauth-authorization-server inserted
//     between the host and the issuer's path (terminating "/" removed);
//  2. the same insertion with /.well-known/openid-configuration, which
//     RFC 8414 §5 describes for OpenID providers;
//  3. OpenID Connect Discovery 1.0 §4: the issuer with
//     /.well-known/openid-configuration appended.
//
// For an issuer without a path, 2 and 3 are the same URL and it is listed once.
func MetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	urls := []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
	}
	if appended := origin + path + "/.well-known/openid-configuration"; !slices.Contains(urls, appended) {
		urls = append(urls, appended)
	}
	return urls, nil
}

// DiscoverMetadata fetches the authorization server metadata of issuer,
// trying the RFC 8414 and OpenID Connect Discovery locations in turn (see
// MetadataURLs). A document whose "issuer" differs from issuer is refused
// and ends the search (RFC 8414 §3.3: it prevents an attacker-controlled
// document from redirecting the gateway's credentials; one trailing slash
// difference is tolerated, see urlrule.SameIssuer). Failures are a
// *DiscoveryError. A nil client selects a default client that follows no
// redirects.
func DiscoverMetadata(ctx context.Context, client *http.Client, issuer string) (*ServerMetadata, error) {
	if client == nil {
		client = newHTTPClient()
		defer client.CloseIdleConnections()
	}
	urls, err := MetadataURLs(issuer)
	if err != nil {
		return nil, &DiscoveryError{Issuer: issuer, Err: err}
	}
	de := &DiscoveryError{Issuer: issuer}
	for _, u := range urls {
		md, status, err := fetchMetadata(ctx, client, u)
		if err != nil {
			de.Err = err
			return nil, de
		}
		if md == nil {
			de.Tried = append(de.Tried, fmt.Sprintf("%s (HTTP %d)", u, status))
			continue
		}
		if !urlrule.SameIssuer(md.Issuer, issuer) {
			de.FoundAt, de.DeclaredIssuer = u, md.Issuer
			return nil, de
		}
		return md, nil
	}
	return nil, de
}

// fetchMetadata GETs one metadata URL. md is nil for any non-200 answer
// (status says which), so the next location is tried; err is set for
// transport failures and for a 200 whose body is not a metadata document.
func fetchMetadata(ctx context.Context, client *http.Client, u string) (md *ServerMetadata, status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, tooBig, err := readLimited(resp.Body, maxMetadataBytes)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, nil
	}
	if tooBig {
		return nil, 0, fmt.Errorf("%s: metadata larger than %d bytes", u, maxMetadataBytes)
	}
	md = &ServerMetadata{URL: u, raw: body}
	if err := json.Unmarshal(body, md); err != nil {
		return nil, 0, fmt.Errorf("%s answered 200 but not with a JSON metadata document: %w", u, err)
	}
	return md, http.StatusOK, nil
}

// Discover fetches the issuer's metadata if it is still needed: for the
// introspection endpoint when introspection is used and no Endpoint was
// configured, and for the "jwks_uri" when JWTs are verified locally and no
// JWKSURL was configured (one discovery serves both). It is idempotent and
// safe for concurrent use: concurrent calls share one discovery, which is
// not cancelled when the first caller's ctx ends. A discovered endpoint
// must satisfy the same URL rules as a configured one (https, or http on
// loopback).
func (v *Verifier) Discover(ctx context.Context) error {
	if !v.needsDiscovery() {
		if jv := v.local.jwt.Load(); jv != nil {
			jv.Keys().Start()
		}
		return nil
	}
	ch := v.discover.DoChan("discover", func() (any, error) {
		if !v.needsDiscovery() {
			return nil, nil
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.cfg.Timeout)
		defer cancel()
		md, err := DiscoverMetadata(dctx, v.client, v.cfg.Issuer)
		if err != nil {
			v.log.Warn("authorization server discovery failed", "issuer", v.cfg.Issuer, "err", err)
			return nil, err
		}
		if v.local.mode.Introspects && v.Endpoint() == "" {
			if md.IntrospectionEndpoint == "" {
				return nil, fmt.Errorf("introspect: discovery: metadata for %q has no introspection_endpoint: %w", v.cfg.Issuer, ErrNoIntrospectionEndpoint)
			}
			if _, err := urlrule.Server(md.IntrospectionEndpoint); err != nil {
				return nil, fmt.Errorf("introspect: discovery: introspection_endpoint: %w (%w)", err, ErrNoIntrospectionEndpoint)
			}
			if m := md.IntrospectionEndpointAuthMethodsSupported; len(m) > 0 && !slices.Contains(m, v.cfg.AuthMethod) {
				v.log.Warn("authorization server does not list our introspection auth method",
					"auth_method", v.cfg.AuthMethod, "supported", m)
			}
		}
		if err := v.setupFromMetadata(md); err != nil {
			return nil, err
		}
		v.metadata.Store(md)
		if v.local.mode.Introspects && v.Endpoint() == "" {
			ep := md.IntrospectionEndpoint
			v.endpoint.Store(&ep)
			v.log.Info("introspection endpoint discovered", "issuer", v.cfg.Issuer, "endpoint", ep)
		}
		if jv := v.local.jwt.Load(); jv != nil {
			jv.Keys().Start()
		}
		return nil, nil
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Metadata returns the issuer's metadata as the last successful discovery
// found it, or nil (no discovery yet, or Config.Endpoint was given).
func (v *Verifier) Metadata() *ServerMetadata { return v.metadata.Load() }
