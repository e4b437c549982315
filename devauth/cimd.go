package devauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"code.dny.dev/ssrf"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// "CIMD"; the MCP authorization specification 2025-11-25, "Client ID
// Metadata Documents"): a client names itself with an https URL as its
// client_id, and this server fetches the JSON client metadata published at
// that URL instead of asking the client to register. Fetching a URL an
// outsider chose is a server-side request forgery risk (draft §6.5 "SSRF
// Attacks") and a resource-exhaustion risk (§6.6), so every fetch is bounded
// in size, time and rate, never follows a redirect, and never connects to a
// special-use address (RFC 6890), checked on the address actually dialled.
const (
	// maxMetadataBytes is the largest document read: the draft's
	// recommended 5 kilobytes (§6.6 "Maximum Response Size").
	maxMetadataBytes = 5 << 10
	// maxClientIDURLLen bounds a client_id URL.
	maxClientIDURLLen = 2000
	// Cache lifetimes: the draft lets the server bound what Cache-Control
	// asks for (§4.4 "Metadata Caching"). The lower bound covers one whole
	// authorization (consent page, then the code at the token endpoint
	// within CodeTTL), so one flow costs one fetch even when the document
	// says no-store; the upper bound makes a changed document count
	// within the hour.
	minMetadataTTL     = time.Minute
	defaultMetadataTTL = 5 * time.Minute
	maxMetadataTTL     = time.Hour
	// maxMetadataFetches bounds the fetches in flight at once.
	maxMetadataFetches = 4
)

// errUnknownClient is a client_id that is neither registered nor a URL.
var errUnknownClient = errors.New("devauth: unknown client_id")

// ClientMetadataError says why a client_id URL was not accepted: the URL
// itself, fetching its document, or the document's contents. Its message
// is shown to the developer as the error_description.
type ClientMetadataError struct {
	// Status is the HTTP status to answer with: 400, or 429 when the
	// fetch was rate limited, 503 when too many fetches are in flight.
	Status int
	Reason string
}

func (e *ClientMetadataError) Error() string { return e.Reason }

func metadataError(format string, args ...any) *ClientMetadataError {
	return &ClientMetadataError{Status: http.StatusBadRequest, Reason: fmt.Sprintf(format, args...)}
}

// isURLClientID reports whether a client_id is to be resolved as a Client
// ID Metadata Document URL rather than looked up among registered clients.
func isURLClientID(id string) bool {
	return strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://")
}

// cachedClient is a validated document's client, until expires.
type cachedClient struct {
	client  *client
	expires time.Time
}

// metadataFetcher fetches Client ID Metadata Documents.
type metadataFetcher struct {
	http  *http.Client
	group singleflight.Group
	slots chan struct{}
}

// newMetadataFetcher returns a fetcher whose dialer refuses every
// special-use address (code.dny.dev/ssrf, generated from the IANA special-
// purpose address registries), on any port; allowLoopback exempts
// 127.0.0.0/8 and ::1, which the draft §6.5 permits only for a server that
// itself runs on loopback for development. The check runs in the dialer's
// Control hook, on the resolved address being connected to, so a name
// that resolves to a private address (DNS rebinding included) is refused
// as surely as an address literal. No proxy from the environment is used:
// a proxy would be what is dialled, and the check would see its address.
func newMetadataFetcher(allowLoopback bool, timeout time.Duration) *metadataFetcher {
	dialer := &net.Dialer{Timeout: timeout, Control: dialGuard(allowLoopback).Safe}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 16 << 10,
		// Fetches are rare; idle connections would only be goroutines
		// and sockets to a host the client chose.
		DisableKeepAlives: true,
		ForceAttemptHTTP2: true,
	}
	return &metadataFetcher{
		http: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// Draft §4 "Client Information Discovery": the server MUST NOT
			// follow redirects; the 3xx itself is the answer, and refused.
			CheckRedirect: urlrule.NoRedirects,
		},
		slots: make(chan struct{}, maxMetadataFetches),
	}
}

// dialGuard is the check the fetcher's dialer runs on every address it
// connects to: TCP only, any port, no special-use address except, with
// allowLoopback, 127.0.0.0/8 and ::1.
func dialGuard(allowLoopback bool) *ssrf.Guardian {
	opts := []ssrf.Option{ssrf.WithAnyPort()}
	if allowLoopback {
		opts = append(opts,
			ssrf.WithAllowedV4Prefixes(netip.MustParsePrefix("127.0.0.0/8")),
			ssrf.WithAllowedV6Prefixes(netip.MustParsePrefix("::1/128")))
	}
	return ssrf.New(opts...)
}

// checkClientIDURL applies the draft's §3 "Client Identifier URL" rules:
// https, no userinfo, a path without dot segments, no fragment. A query is
// allowed (the draft says SHOULD NOT, not MUST NOT). http is accepted only
// when allowLoopback is set and the host is a loopback name or address,
// for clients under development on this machine.
func checkClientIDURL(raw string, allowLoopback bool) (*url.URL, error) {
	if len(raw) > maxClientIDURLLen {
		return nil, metadataError("the client_id URL is longer than %d bytes", maxClientIDURLLen)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r >= 0x80 }) {
		return nil, metadataError("the client_id URL contains spaces, control or non-ASCII characters")
	}
	if strings.Contains(raw, "#") {
		return nil, metadataError("the client_id URL must not contain a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, metadataError("the client_id is not a valid URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowLoopback && loopback.Host(u.Hostname()):
	case u.Scheme == "http" && loopback.Host(u.Hostname()):
		return nil, metadataError("the client_id URL %s uses http: this server accepts loopback http client_id URLs only with loopback fetching enabled; use https", quoted(raw))
	default:
		return nil, metadataError("the client_id URL %s must use https", quoted(raw))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, metadataError("the client_id URL %s has no host", quoted(raw))
	}
	if u.User != nil {
		return nil, metadataError("the client_id URL must not contain a user name or password")
	}
	if u.Opaque != "" || u.EscapedPath() == "" {
		return nil, metadataError("the client_id URL %s must have a path, such as https://app.example/client.json", quoted(raw))
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg == "." || seg == ".." {
			return nil, metadataError("the client_id URL %s must not contain . or .. path segments", quoted(raw))
		}
	}
	return u, nil
}

// lookupClient finds the client a request names: a registered client, or
// for a URL client_id the client its metadata document describes (from
// the cache, or fetched). The error is errUnknownClient or a
// *ClientMetadataError.
func (s *Server) lookupClient(ctx context.Context, r *http.Request, id string) (*client, error) {
	if !isURLClientID(id) {
		s.mu.Lock()
		c, ok := s.clients.Get(id)
		if ok {
			s.clients.Touch(id)
		}
		s.mu.Unlock()
		if !ok {
			return nil, errUnknownClient
		}
		return c, nil
	}
	if _, err := checkClientIDURL(id, s.cfg.AllowLoopbackClientIDs); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	cc, ok := s.documents.Get(id)
	if ok && now.Before(cc.expires) {
		s.documents.Touch(id)
		s.mu.Unlock()
		return cc.client, nil
	}
	s.mu.Unlock()

	// A fetch is paid for by the address that asked for it, from the same
	// bucket as registrations: both make this server do work for a stranger.
	if ip := s.clientIP(r); !s.allowRegistration(ip) {
		return nil, &ClientMetadataError{Status: http.StatusTooManyRequests,
			Reason: "too many client metadata fetches and registrations from this address; try again later"}
	}
	v, err, _ := s.fetcher.group.Do(id, func() (any, error) {
		// Detached from the request: a caller that gives up must not fail
		// the others waiting for the same document.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ClientMetadataTimeout)
		defer cancel()
		return s.fetchClient(fctx, id)
	})
	if err != nil {
		return nil, err
	}
	c := v.(*client)
	return c, nil
}

// fetchClient fetches, validates and caches the document at id.
func (s *Server) fetchClient(ctx context.Context, id string) (*client, error) {
	select {
	case s.fetcher.slots <- struct{}{}:
		defer func() { <-s.fetcher.slots }()
	default:
		return nil, &ClientMetadataError{Status: http.StatusServiceUnavailable,
			Reason: "too many client metadata documents are being fetched at once; try again"}
	}
	body, header, err := s.fetcher.get(ctx, id, s.cfg.ClientMetadataTimeout)
	if err != nil {
		return nil, err
	}
	c, err := parseClientMetadata(body, id)
	if err != nil {
		return nil, err // invalid documents are never cached (draft §4.4)
	}
	now := s.now()
	c.issuedAt = now
	ttl := metadataTTL(header)
	s.mu.Lock()
	evicted := s.documents.Put(id, &cachedClient{client: c, expires: now.Add(ttl)})
	s.mu.Unlock()
	if evicted > 0 {
		s.log.Warn("devauth: client metadata cache full; evicted the least recently used document", "max_clients", s.cfg.MaxClients)
	}
	s.log.Info("devauth: fetched a client ID metadata document", "client_id", id, "client_name", c.name, "redirect_uris", c.redirectURIs, "cache_ttl", ttl.String())
	return c, nil
}

// get fetches raw with the fetcher's limits and returns the body of a 200
// JSON answer of at most maxMetadataBytes.
func (f *metadataFetcher) get(ctx context.Context, raw string, timeout time.Duration) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, nil, metadataError("the client_id URL cannot be fetched: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, ssrf.ErrProhibitedIP):
			return nil, nil, metadataError("the client_id URL's host resolves to a private, loopback, link-local, multicast or other special-use address, which this server never fetches (draft-ietf-oauth-client-id-metadata-document §6.5); publish the document on a public https host")
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return nil, nil, metadataError("fetching the client metadata document at %s took longer than %s", quoted(raw), timeout)
		default:
			return nil, nil, metadataError("the client metadata document at %s could not be fetched: %s", quoted(raw), truncate(unwrapURLError(err).Error(), 200))
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, nil, metadataError("the client metadata document URL %s answered %d with a redirect; the document must be served at the client_id URL itself, redirects are not followed", quoted(raw), resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, metadataError("the client metadata document URL %s answered HTTP %d, not 200", quoted(raw), resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !isJSONMediaType(ct) {
		return nil, nil, metadataError("the client metadata document at %s has Content-Type %s; it must be application/json", quoted(raw), quoted(ct))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, nil, metadataError("fetching the client metadata document at %s took longer than %s", quoted(raw), timeout)
		}
		return nil, nil, metadataError("reading the client metadata document at %s failed: %s", quoted(raw), truncate(err.Error(), 200))
	}
	if len(body) > maxMetadataBytes {
		return nil, nil, metadataError("the client metadata document at %s is larger than %d bytes", quoted(raw), maxMetadataBytes)
	}
	return body, resp.Header, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the
// method and the URL the description already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// clientMetadataDocument is the part of a Client ID Metadata Document this
// server reads; its members are RFC 7591 client metadata. client_secret
// and client_secret_expires_at are read only to refuse them.
type clientMetadataDocument struct {
	ClientID                string          `json:"client_id"`
	ClientName              string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod *string         `json:"token_endpoint_auth_method"`
	Scope                   string          `json:"scope"`
	ClientSecret            json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt   json.RawMessage `json:"client_secret_expires_at"`
}

// parseClientMetadata validates a Client ID Metadata Document fetched from
// id and returns the client it describes. The rules, and why:
//   - a JSON object whose client_id equals id by simple string comparison
//     (draft §4.1, RFC 3986 §6.2.1): otherwise any document could claim to
//     be any client;
//   - client_name and redirect_uris present (MCP 2025-11-25, "Client ID
//     Metadata Documents": the minimum a client publishes); the redirect
//     URIs are what an authorization request is checked against (draft
//     §4.5);
//   - a public client: no client_secret or client_secret_expires_at, and
//     token_endpoint_auth_method absent or "none" (draft §4.1 forbids
//     shared secrets; this development server has no private_key_jwt);
//   - the same limits on names, URIs, grants and scope as registration.
func parseClientMetadata(body []byte, id string) (*client, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return nil, metadataError("the client metadata document at %s is not a JSON object", quoted(id))
	}
	var doc clientMetadataDocument
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, metadataError("the client metadata document at %s is not a JSON object of client metadata: %s", quoted(id), truncate(err.Error(), 150))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, metadataError("the client metadata document at %s has data after its JSON object", quoted(id))
	}
	if doc.ClientID != id {
		return nil, metadataError("the client metadata document's client_id %s does not equal the URL it was fetched from, %s", quoted(doc.ClientID), quoted(id))
	}
	if doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil {
		return nil, metadataError("the client metadata document must not contain client_secret or client_secret_expires_at: a client identified by a URL has no shared secret")
	}
	if m := doc.TokenEndpointAuthMethod; m != nil && *m != "none" {
		return nil, metadataError("token_endpoint_auth_method %s is not supported: this development server accepts public clients only (\"none\", with PKCE)", quoted(*m))
	}
	if strings.TrimSpace(doc.ClientName) == "" {
		return nil, metadataError("the client metadata document has no client_name")
	}
	c, err := validateClientMetadata(&registrationRequest{
		RedirectURIs:  doc.RedirectURIs,
		GrantTypes:    doc.GrantTypes,
		ResponseTypes: doc.ResponseTypes,
		ClientName:    doc.ClientName,
		Scope:         doc.Scope,
	})
	if err != nil {
		return nil, metadataError("the client metadata document is not valid: %s", errDescription(err))
	}
	c.id = id
	return c, nil
}

// metadataTTL is how long a document may be reused: its Cache-Control
// max-age (RFC 9111 §5.2.2.1), clamped to [minMetadataTTL,
// maxMetadataTTL]; no-store and no-cache give the lower bound; without a
// max-age, defaultMetadataTTL. Other directives and Expires are ignored.
func metadataTTL(h http.Header) time.Duration {
	maxAge, found := -1, false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return minMetadataTTL
			case "max-age":
				n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(value), `"`))
				if err == nil && n >= 0 && !found {
					maxAge, found = n, true
				}
			}
		}
	}
	if !found {
		return defaultMetadataTTL
	}
	// Compare in seconds first: a huge max-age must not overflow Duration.
	if maxAge >= int(maxMetadataTTL/time.Second) {
		return maxMetadataTTL
	}
	return max(time.Duration(maxAge)*time.Second, minMetadataTTL)
}
