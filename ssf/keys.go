package ssf

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
)

// Bounds on what the transmitter's metadata and JWKS endpoints may send.
const (
	maxDocumentBytes = 256 << 10 // a metadata document or a JWKS; real ones are a few KiB
	maxJWKSKeys      = 64        // keys read from one JWKS
	minRSABits       = 2048      // RFC 7518 §3.3: "a key of size 2048 bits or larger MUST be used"
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

// keySet holds the transmitter's signing keys. They are looked up only by
// the SET's "kid" (and "alg"), never from the SET itself: a SET's "jku",
// "x5u", "jwk" and "x5c" headers are ignored, since trusting a key the
// token carries or points to would let anyone sign (RFC 8725 §3.10).
// Unknown kids cause a refetch, at most once per refetch interval, so a
// stream of SETs with random kids cannot make the receiver hammer the
// transmitter.
type keySet struct {
	issuer     string
	jwksURL    string // explicit; empty means discover from the metadata
	client     *http.Client
	timeout    time.Duration
	interval   time.Duration // minimum time between two refetch attempts
	maxAge     time.Duration // keys older than this are refetched on the next use
	now        func() time.Time
	log        *slog.Logger
	fetchGroup singleflight.Group

	mu          sync.RWMutex
	keys        []jose.JSONWebKey
	critical    []string
	status      KeyStatus
	fetched     bool
	lastAttempt time.Time
}

// errTooSoon carries how long until the next refetch is allowed.
type errTooSoon struct{ wait time.Duration }

func (e *errTooSoon) Error() string {
	return fmt.Sprintf("keys were fetched less than the refetch interval ago; next attempt in %s", e.wait.Round(time.Second))
}

// keysFor returns the keys that may have signed a SET with this kid and
// alg. kid "" matches every key (RFC 7515 §4.1.4 makes kid optional). On a
// miss, or when the keys are older than maxAge, it refetches (joining a
// refetch already in flight). Errors:
//   - *RefusedError (invalid_key): the keys were fetched and none matches;
//   - *UnavailableError: the keys could not be fetched, or the refetch
//     interval has not passed since the last attempt; the transmitter
//     should deliver the SET again later.
func (k *keySet) keysFor(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	k.mu.RLock()
	cands := matchKeys(k.keys, kid, alg)
	fresh := k.fetched && k.now().Sub(k.status.FetchedAt) < k.maxAge
	k.mu.RUnlock()
	if len(cands) > 0 && fresh {
		return cands, nil
	}
	err := k.refresh(ctx, false)
	k.mu.RLock()
	cands = matchKeys(k.keys, kid, alg)
	k.mu.RUnlock()
	if len(cands) > 0 {
		if err != nil {
			var soon *errTooSoon
			if !errors.As(err, &soon) {
				// Old keys still verify; a transmitter briefly unreachable
				// must not stop revocations.
				k.log.Warn("ssf: refetching the transmitter's keys failed; using the keys fetched before", "err", err)
			}
		}
		return cands, nil
	}
	var soon *errTooSoon
	switch {
	case err == nil:
		return nil, refused(CodeInvalidKey, ReasonUnknownKey, "no key in the transmitter's JWKS matches the SET's kid and alg")
	case errors.As(err, &soon):
		return nil, &UnavailableError{Reason: ReasonKeysUnavail, RetryAfter: soon.wait, Err: err}
	default:
		return nil, &UnavailableError{Reason: ReasonKeysUnavail, RetryAfter: k.interval, Err: err}
	}
}

// refresh fetches the metadata (unless a JWKS URL was configured) and the
// JWKS, and replaces the keys. Concurrent callers share one fetch, which is
// not cancelled when the first caller goes away. Unless force is set, a
// fetch is attempted at most once per interval; a caller inside the
// interval gets *errTooSoon.
func (k *keySet) refresh(ctx context.Context, force bool) error {
	key := "refetch"
	if force {
		key = "force"
	}
	ch := k.fetchGroup.DoChan(key, func() (any, error) {
		k.mu.Lock()
		if !force && !k.lastAttempt.IsZero() {
			if wait := k.interval - k.now().Sub(k.lastAttempt); wait > 0 {
				k.mu.Unlock()
				return nil, &errTooSoon{wait: wait}
			}
		}
		k.lastAttempt = k.now()
		k.mu.Unlock()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.timeout)
		defer cancel()
		return nil, k.fetch(fctx)
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (k *keySet) fetch(ctx context.Context) error {
	st := KeyStatus{JWKSURL: k.jwksURL}
	var critical []string
	if st.JWKSURL == "" {
		md, mdURL, err := k.discover(ctx)
		if err != nil {
			return err
		}
		st.MetadataURL, st.SpecVersion, st.JWKSURL = mdURL, md.SpecVersion, md.JWKSURI
		critical = md.CriticalSubjectMembers
		if len(md.DeliveryMethodsSupported) > 0 && !slices.Contains(md.DeliveryMethodsSupported, deliveryPush) {
			st.Warnings = append(st.Warnings, "the transmitter's delivery_methods_supported does not list push delivery ("+deliveryPush+")")
		}
	}
	keys, skipped, err := k.fetchJWKS(ctx, st.JWKSURL)
	if err != nil {
		return err
	}
	if skipped > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%d key(s) in the JWKS are not usable to verify SETs (not public signing keys of an allowed type, or RSA under %d bits)", skipped, minRSABits))
	}
	if len(keys) == 0 {
		st.Warnings = append(st.Warnings, "the JWKS holds no usable signing key: every SET will be refused")
	}
	for _, key := range keys {
		st.KeyIDs = append(st.KeyIDs, key.KeyID)
	}
	st.FetchedAt = k.now()
	k.mu.Lock()
	k.keys, k.critical, k.status, k.fetched = keys, critical, st, true
	k.mu.Unlock()
	k.log.Info("ssf: transmitter keys fetched", "jwks_uri", st.JWKSURL, "keys", len(keys), "skipped", skipped)
	return nil
}

// discover reads the transmitter's configuration metadata (SSF 1.0 §7.2),
// trying the SSF location and then the RISC one (§7.2.2). The document's
// "issuer" must be identical to the configured issuer (§7.2.4: otherwise an
// attacker-controlled document could substitute its own keys), and its
// jwks_uri must be https (§7.1), or http to a loopback host for tests.
func (k *keySet) discover(ctx context.Context) (*transmitterMetadata, string, error) {
	urls, err := metadataURLs(k.issuer)
	if err != nil {
		return nil, "", err
	}
	var tried []error
	for _, u := range urls {
		body, status, err := k.get(ctx, u)
		if err != nil {
			return nil, "", fmt.Errorf("ssf: transmitter metadata: %w", err)
		}
		if status != http.StatusOK {
			tried = append(tried, fmt.Errorf("%s: HTTP %d", u, status))
			continue
		}
		md := new(transmitterMetadata)
		if err := json.Unmarshal(body, md); err != nil {
			return nil, "", fmt.Errorf("ssf: transmitter metadata at %s is not a valid document: %w", u, err)
		}
		if md.Issuer != k.issuer {
			return nil, "", fmt.Errorf("ssf: transmitter metadata at %s has issuer %q, want exactly %q (SSF 1.0 §7.2.4)", u, md.Issuer, k.issuer)
		}
		if md.JWKSURI == "" {
			return nil, "", fmt.Errorf("ssf: transmitter metadata at %s has no jwks_uri, so its SETs cannot be verified (SSF 1.0 §7.1)", u)
		}
		if err := checkURL(md.JWKSURI); err != nil {
			return nil, "", fmt.Errorf("ssf: transmitter metadata at %s: jwks_uri: %w", u, err)
		}
		return md, u, nil
	}
	return nil, "", fmt.Errorf("ssf: no transmitter metadata for issuer %q: %w", k.issuer, errors.Join(tried...))
}

// fetchJWKS reads an RFC 7517 §5 JWK Set and keeps the keys that can
// verify SETs: public (a private key's public half is used), "use" absent
// or "sig", and an RSA (at least 2048 bits), EC (P-256, P-384, P-521) or
// Ed25519 key. Symmetric keys are never kept: an HMAC secret published in
// a JWKS is no secret. A key this library cannot parse is skipped rather
// than failing the whole set, so one exotic key does not stop rotation.
func (k *keySet) fetchJWKS(ctx context.Context, u string) (keys []jose.JSONWebKey, skipped int, err error) {
	body, status, err := k.get(ctx, u)
	if err != nil {
		return nil, 0, fmt.Errorf("ssf: JWKS: %w", err)
	}
	if status != http.StatusOK {
		return nil, 0, fmt.Errorf("ssf: JWKS at %s: HTTP %d", u, status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || set.Keys == nil {
		return nil, 0, fmt.Errorf("ssf: JWKS at %s is not a JWK Set (RFC 7517 §5)", u)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, 0, fmt.Errorf("ssf: JWKS at %s holds %d keys, more than %d", u, len(set.Keys), maxJWKSKeys)
	}
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			skipped++
			continue
		}
		if !key.IsPublic() {
			key = key.Public()
		}
		if !key.Valid() || (key.Use != "" && key.Use != "sig") || !usableKey(key.Key) {
			skipped++
			continue
		}
		keys = append(keys, key)
	}
	return keys, skipped, nil
}

func usableKey(k any) bool {
	switch pk := k.(type) {
	case *rsa.PublicKey:
		return pk.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey:
		return pk.Curve == elliptic.P256() || pk.Curve == elliptic.P384() || pk.Curve == elliptic.P521()
	case ed25519.PublicKey:
		return len(pk) == ed25519.PublicKeySize
	}
	return false
}

// matchKeys returns the keys whose kid is kid (any key when kid is "") and
// that can produce a signature with alg: the key's own "alg", when it has
// one, must be alg (RFC 7517 §4.4), and its type must fit alg's family.
func matchKeys(keys []jose.JSONWebKey, kid, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if !keyFitsAlg(k.Key, alg) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func keyFitsAlg(k any, alg string) bool {
	switch pk := k.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case string(jose.ES256):
			return pk.Curve == elliptic.P256()
		case string(jose.ES384):
			return pk.Curve == elliptic.P384()
		case string(jose.ES512):
			return pk.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	}
	return false
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

// checkURL accepts an absolute https URL, or http to a loopback host (for
// tests and a transmitter on the same machine): keys fetched in clear from
// anywhere else could be replaced on the way.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q is not an absolute URL with a host", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback.Host(u.Hostname()) {
			return fmt.Errorf("%q: http is allowed only for loopback hosts; use https", s)
		}
	default:
		return fmt.Errorf("%q: scheme must be https", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%q must not have a fragment", s)
	}
	return nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
