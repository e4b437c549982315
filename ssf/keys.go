package ssf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
	"github.com/mcp-gateway/mcp-gateway/jwks"
)

// Bounds on what the transmitter's metadata and JWKS endpoints may send.
const (
	maxDocumentBytes = 256 << 10 // a metadata document or a JWKS; real ones are a few KiB
	maxJWKSKeys      = 64        // entries of one JWKS; more fails the fetch
)

// Well-known paths of the transmitter's configuration metadata.
const (
	// wellKnownSSF: SSF 1.0 §7.2, inserted between the issuer's host and
	// its path.
	wellKnownSSF = "/.well-known/ssf-configuration"
	// wellKnownRISC: SSF 1.0 §7.2.2, where RISC transmitters that predate
	// SSF (Google's) publish the same document.
	wellKnownRISC = "/.well-known/risc-configuration"
)

// deliveryPush is the SSF 1.0 §6.1.1 delivery method URI for RFC 8935.
const deliveryPush = "urn:ietf:rfc:8935"

// transmitterMetadata is the part of the SSF 1.0 §7.1 Transmitter
// Configuration Metadata this receiver reads.
type transmitterMetadata struct {
	SpecVersion              string   `json:"spec_version"`
	Issuer                   string   `json:"issuer"`
	JWKSURI                  string   `json:"jwks_uri"`
	DeliveryMethodsSupported []string `json:"delivery_methods_supported"`
	CriticalSubjectMembers   []string `json:"critical_subject_members"`
}

// KeyStatus describes the transmitter's keys as last fetched, for the
// configuration doctor and logs.
type KeyStatus struct {
	MetadataURL string    // where the metadata was read; empty with an explicit JWKSURL
	SpecVersion string    // SSF 1.0 §7.1 spec_version, if the metadata had one
	JWKSURL     string    // where the keys were read
	KeyIDs      []string  // "kid" of each usable signing key ("" for a key without one)
	FetchedAt   time.Time // when they were read
	Warnings    []string  // things that work but deserve a look
}

// keySet is the transmitter's signing keys: a jwks.KeySet (fetch, cache
// for the answer's lifetime bounded by KeyMaxAge, refetch for an unknown
// kid at most once per RefetchInterval, which key fits which alg; a SET's
// "jku", "x5u", "jwk" and "x5c" are never trusted, RFC 8725 §3.10) whose
// URL, unless configured, is the jwks_uri of the transmitter's metadata,
// read again on each fetch. What is SSF's stays here: the metadata, and
// turning a missing key into a refusal or a request to retry.
type keySet struct {
	issuer string
	client *http.Client // for the metadata; the jwks.KeySet uses a copy
	keys   *jwks.KeySet

	mu sync.Mutex
	md discovered // the metadata last read (zero with an explicit JWKSURL)
}

// discovered is what one read of the transmitter's metadata says.
type discovered struct {
	url      string // where it was read
	spec     string
	critical []string
	warnings []string
}

func newKeySet(cfg Config, client *http.Client) (*keySet, error) {
	k := &keySet{issuer: cfg.Issuer, client: client}
	kc := jwks.KeySetConfig{
		URL:        cfg.JWKSURL,
		HTTPClient: client,
		MinRefresh: cfg.RefetchInterval,
		// A transmitter's Cache-Control may shorten KeyMaxAge, not
		// lengthen it, nor ask for fetches more often than SETs may cause.
		MinLifetime:             min(cfg.RefetchInterval, cfg.KeyMaxAge),
		MaxLifetime:             cfg.KeyMaxAge,
		DefaultLifetime:         cfg.KeyMaxAge,
		Timeout:                 cfg.Timeout,
		MaxBytes:                maxDocumentBytes,
		MaxKeys:                 maxJWKSKeys,
		RefuseAboveMaxKeys:      true,
		PublicHalfOfPrivateKeys: true,
		KeylessCandidates:       maxKeysTried,
		Now:                     cfg.Now,
		Logger:                  cfg.Logger,
	}
	if cfg.JWKSURL == "" {
		kc.ResolveURL = k.discover
	}
	ks, err := jwks.NewKeySet(kc)
	if err != nil {
		return nil, fmt.Errorf("ssf: %w", err)
	}
	k.keys = ks
	return k, nil
}

// keysFor returns the keys that may have signed a SET with this kid and
// alg (kid "" matches up to maxKeysTried keys: RFC 7515 §4.1.4 makes kid
// optional). Errors:
//   - *RefusedError (invalid_key): the keys were fetched for this SET, or
//     are fresh, and none matches;
//   - *UnavailableError: the keys could not be fetched, or the refetch
//     interval has not passed since the last fetch; the transmitter should
//     deliver the SET again later (RFC 8935 §2.4 lets it retry a 5xx).
func (k *keySet) keysFor(ctx context.Context, kid, alg string) ([]*jose.JSONWebKey, error) {
	keys, err := k.keys.Lookup(ctx, kid, jose.SignatureAlgorithm(alg))
	if err == nil {
		return keys, nil
	}
	var ke *jwks.KeyError
	if errors.As(err, &ke) && ke.Unavailable == nil && !ke.Deferred {
		if kid == "" {
			return nil, refused(CodeInvalidKey, ReasonUnknownKey, "the SET names no kid, and the transmitter's JWKS holds no key, or too many keys, for its alg")
		}
		return nil, refused(CodeInvalidKey, ReasonUnknownKey, "no key in the transmitter's JWKS matches the SET's kid and alg")
	}
	wait := time.Second
	if ke != nil {
		wait = max(ke.RetryAfter, wait)
		if ke.Unavailable != nil {
			err = ke.Unavailable
		}
	}
	return nil, &UnavailableError{Reason: ReasonKeysUnavail, RetryAfter: wait, Err: err}
}

// critical lists the complex-subject members the transmitter's metadata
// says must be processed (SSF 1.0 §3.6).
func (k *keySet) critical() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.md.critical
}

// status describes the keys held and the metadata last read.
func (k *keySet) status() KeyStatus {
	k.mu.Lock()
	md := k.md
	k.mu.Unlock()
	held := k.keys.Status()
	st := KeyStatus{MetadataURL: md.url, SpecVersion: md.spec, JWKSURL: k.keys.URL(),
		FetchedAt: held.Fetched, Warnings: slices.Clone(md.warnings)}
	for _, key := range held.Keys {
		st.KeyIDs = append(st.KeyIDs, key.KeyID)
	}
	if n := len(held.Skipped); n > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%d key(s) in the JWKS are not usable to verify SETs: %s", n, strings.Join(held.Skipped, "; ")))
	}
	if n := len(held.Exposed); n > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("the JWKS publishes %d private key(s) (%s): only their public halves are used, but anyone who read it can sign SETs; ask the transmitter to rotate them", n, strings.Join(held.Exposed, "; ")))
	}
	return st
}

// discover reads the transmitter's configuration metadata (SSF 1.0 §7.2),
// trying the SSF location and then the RISC one (§7.2.2), and returns its
// jwks_uri (the jwks.KeySet's ResolveURL). The document's "issuer" must be
// identical to the configured issuer (§7.2.4: otherwise an
// attacker-controlled document could substitute its own keys), and its
// jwks_uri must be https (§7.1), or http to a loopback host for tests.
func (k *keySet) discover(ctx context.Context) (string, error) {
	urls, err := metadataURLs(k.issuer)
	if err != nil {
		return "", err
	}
	var tried []error
	for _, u := range urls {
		body, status, err := k.get(ctx, u)
		if err != nil {
			return "", fmt.Errorf("ssf: transmitter metadata: %w", err)
		}
		if status != http.StatusOK {
			tried = append(tried, fmt.Errorf("%s: HTTP %d", u, status))
			continue
		}
		md := new(transmitterMetadata)
		if err := json.Unmarshal(body, md); err != nil {
			return "", fmt.Errorf("ssf: transmitter metadata at %s is not a valid document: %w", u, err)
		}
		if md.Issuer != k.issuer {
			return "", fmt.Errorf("ssf: transmitter metadata at %s has issuer %q, want exactly %q (SSF 1.0 §7.2.4)", u, md.Issuer, k.issuer)
		}
		if md.JWKSURI == "" {
			return "", fmt.Errorf("ssf: transmitter metadata at %s has no jwks_uri, so its SETs cannot be verified (SSF 1.0 §7.1)", u)
		}
		if _, err := urlrule.Server(md.JWKSURI); err != nil {
			return "", fmt.Errorf("ssf: transmitter metadata at %s: jwks_uri: %w", u, err)
		}
		d := discovered{url: u, spec: md.SpecVersion, critical: md.CriticalSubjectMembers}
		if len(md.DeliveryMethodsSupported) > 0 && !slices.Contains(md.DeliveryMethodsSupported, deliveryPush) {
			d.warnings = append(d.warnings, "the transmitter's delivery_methods_supported does not list push delivery ("+deliveryPush+")")
		}
		k.mu.Lock()
		k.md = d
		k.mu.Unlock()
		return md.JWKSURI, nil
	}
	return "", fmt.Errorf("ssf: no transmitter metadata for issuer %q: %w", k.issuer, errors.Join(tried...))
}

// get fetches u with the receiver's client: no redirects (the client's
// CheckRedirect refuses them, so a 3xx arrives here as a non-200 status), a
// bounded body, and the caller's deadline.
func (k *keySet) get(ctx context.Context, u string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, 0, fmt.Errorf("%s: document larger than %d bytes", u, maxDocumentBytes)
	}
	return body, resp.StatusCode, nil
}

// metadataURLs lists where the transmitter's metadata may be: SSF 1.0 §7.2
// inserts the well-known path between the host and the issuer's path, with
// any terminating "/" of the path removed.
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("ssf: issuer %q is not an absolute URL", issuer)
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return []string{origin + wellKnownSSF + path, origin + wellKnownRISC + path}, nil
}
