// Package ssftest is a test OpenID Shared Signals transmitter, in the
// spirit of go-oidc's oidctest: an HTTP server that publishes its SSF 1.0
// §7 configuration metadata and its JWKS, and signs Security Event Tokens
// (RFC 8417) with its keys, for the gateway's unit and end-to-end tests.
//
// It does not import package ssf, so ssf's own tests can use it; the event
// type URIs and subject formats are plain strings here.
//
// It is for tests only: its keys are generated in memory and its server
// speaks plain http on loopback.
package ssftest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Paths the transmitter serves.
const (
	MetadataPath = "/.well-known/ssf-configuration" // SSF 1.0 §7.2
	JWKSPath     = "/jwks.json"
)

// Key is a signing key of the transmitter.
type Key struct {
	ID     string        // "kid"
	Alg    string        // JWS algorithm: RS256, PS256, ES256, EdDSA ...
	Signer crypto.Signer // the private key
}

// NewKey generates a key for alg: RSA 2048 for RS*/PS*, the matching NIST
// curve for ES256/ES384/ES512, Ed25519 for EdDSA.
func NewKey(alg, kid string) (Key, error) {
	var (
		s   crypto.Signer
		err error
	)
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case alg == "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case alg == "ES384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case alg == "ES512":
		s, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case alg == "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("ssftest: no key type for alg %q", alg)
	}
	if err != nil {
		return Key{}, err
	}
	return Key{ID: kid, Alg: alg, Signer: s}, nil
}

// MustKey is NewKey for tests: it fails tb on error.
func MustKey(tb testing.TB, alg, kid string) Key {
	tb.Helper()
	k, err := NewKey(alg, kid)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// JWK is the key's public half as a JWK, as the transmitter publishes it.
func (k Key) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"}
}

// Transmitter is a running test transmitter. Its issuer is its server's
// URL.
type Transmitter struct {
	srv *httptest.Server

	mu        sync.Mutex
	keys      []Key          // signing keys; keys[0] signs by default
	published []Key          // what the JWKS serves (default: keys)
	override  map[string]any // merged into the metadata document
	failing   int            // when non-zero, both endpoints answer this status

	metadataHits atomic.Int64
	jwksHits     atomic.Int64

	// Now is the clock for "iat" in Claims (default time.Now). Set it
	// before use.
	Now func() time.Time
}

// NewTransmitter starts a transmitter that signs with keys (at least one)
// and publishes them all. Close it when done.
func NewTransmitter(keys ...Key) (*Transmitter, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("ssftest: a transmitter needs at least one key")
	}
	t := &Transmitter{keys: keys, published: keys, Now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+MetadataPath, t.serveMetadata)
	mux.HandleFunc("GET "+JWKSPath, t.serveJWKS)
	t.srv = httptest.NewServer(mux)
	return t, nil
}

// Start is NewTransmitter for tests: it generates one RS256 key with kid
// "key-1" when none is given, fails tb on error and closes the transmitter
// when the test ends.
func Start(tb testing.TB, keys ...Key) *Transmitter {
	tb.Helper()
	if len(keys) == 0 {
		keys = []Key{MustKey(tb, "RS256", "key-1")}
	}
	t, err := NewTransmitter(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(t.Close)
	return t
}

// Close stops the server.
func (t *Transmitter) Close() {
	t.srv.Close()
}

// Issuer is the transmitter's issuer identifier: the "iss" of its SETs and
// the base of its metadata URL.
func (t *Transmitter) Issuer() string { return t.srv.URL }

// JWKSURL is where the transmitter's JWKS is served.
func (t *Transmitter) JWKSURL() string { return t.srv.URL + JWKSPath }

// MetadataURL is where the transmitter's SSF configuration metadata is
// served.
func (t *Transmitter) MetadataURL() string { return t.srv.URL + MetadataPath }

// Client is an HTTP client for the transmitter's server.
func (t *Transmitter) Client() *http.Client { return t.srv.Client() }

// Requests says how many times the metadata and the JWKS were fetched.
func (t *Transmitter) Requests() (metadata, jwks int64) {
	return t.metadataHits.Load(), t.jwksHits.Load()
}

// Publish replaces the keys the JWKS serves (to rotate, or to withdraw a
// key). The signing keys do not change; use SignWith to sign with one of
// the new keys.
func (t *Transmitter) Publish(keys ...Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.published = keys
}

// SetMetadata merges fields into the metadata document (a nil value
// removes the field), e.g. {"issuer": "https://other.example"}.
func (t *Transmitter) SetMetadata(fields map[string]any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.override == nil {
		t.override = map[string]any{}
	}
	maps.Copy(t.override, fields)
}

// Fail makes both endpoints answer status (0 restores them).
func (t *Transmitter) Fail(status int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing = status
}

func (t *Transmitter) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	t.metadataHits.Add(1)
	t.mu.Lock()
	failing := t.failing
	doc := map[string]any{
		"spec_version":               "1_0",
		"issuer":                     t.Issuer(),
		"jwks_uri":                   t.JWKSURL(),
		"delivery_methods_supported": []string{"urn:ietf:rfc:8935"},
	}
	for k, v := range t.override {
		if v == nil {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	t.mu.Unlock()
	if failing != 0 {
		http.Error(w, "failing", failing)
		return
	}
	writeJSON(w, "application/json", doc)
}

func (t *Transmitter) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	t.jwksHits.Add(1)
	t.mu.Lock()
	failing := t.failing
	var set jose.JSONWebKeySet
	for _, k := range t.published {
		set.Keys = append(set.Keys, k.JWK())
	}
	t.mu.Unlock()
	if failing != 0 {
		http.Error(w, "failing", failing)
		return
	}
	writeJSON(w, "application/jwk-set+json", set)
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(b)
}

// Subject identifiers (RFC 9493 §3.2), for Claims.

// IssSub is an RFC 9493 §3.2.3 iss_sub subject identifier.
func IssSub(iss, sub string) map[string]any {
	return map[string]any{"format": "iss_sub", "iss": iss, "sub": sub}
}

// Email is an RFC 9493 §3.2.2 email subject identifier.
func Email(email string) map[string]any { return map[string]any{"format": "email", "email": email} }

// Opaque is an RFC 9493 §3.2.4 opaque subject identifier.
func Opaque(id string) map[string]any { return map[string]any{"format": "opaque", "id": id} }

// Claims returns the claims of a SET from this transmitter for aud about
// subject, carrying one event of eventType with an empty payload, the way
// SSF 1.0 §3.1 and §4 shape it: iss, aud, iat (now), a random jti, sub_id,
// events. Change the map to build variants.
func (t *Transmitter) Claims(aud, eventType string, subject map[string]any) map[string]any {
	return map[string]any{
		"iss":    t.Issuer(),
		"aud":    aud,
		"iat":    t.Now().Unix(),
		"jti":    NewJTI(),
		"sub_id": subject,
		"events": map[string]any{eventType: map[string]any{}},
	}
}

// NewJTI returns a random SET identifier.
func NewJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SignOption changes how Sign builds the JWS.
type SignOption func(*signOptions)

type signOptions struct {
	key      *Key
	noType   bool
	embedJWK bool
	headers  map[jose.HeaderKey]any
}

// WithKey signs with k instead of the transmitter's first key.
func WithKey(k Key) SignOption { return func(o *signOptions) { o.key = &k } }

// WithHeader adds a protected header parameter ("jku", "x5u", "crit", or
// "typ" to replace secevent+jwt).
func WithHeader(name string, value any) SignOption {
	return func(o *signOptions) {
		if o.headers == nil {
			o.headers = map[jose.HeaderKey]any{}
		}
		o.headers[jose.HeaderKey(name)] = value
	}
}

// WithoutType leaves "typ" out of the header.
func WithoutType() SignOption { return func(o *signOptions) { o.noType = true } }

// WithEmbeddedJWK puts the signing key's public JWK in the "jwk" header.
func WithEmbeddedJWK() SignOption { return func(o *signOptions) { o.embedJWK = true } }

// Sign signs claims as a SET: a JWS in compact serialization with "typ"
// secevent+jwt (RFC 8417 §2.3) and the key's "kid" and "alg".
func (t *Transmitter) Sign(claims map[string]any, opts ...SignOption) (string, error) {
	var o signOptions
	for _, opt := range opts {
		opt(&o)
	}
	key := t.keys[0]
	if o.key != nil {
		key = *o.key
	}
	return SignWith(key, claims, opts...)
}

// SignWith is Sign with an explicit key, without a transmitter (to sign
// with a key nobody published).
func SignWith(key Key, claims map[string]any, opts ...SignOption) (string, error) {
	var o signOptions
	for _, opt := range opts {
		opt(&o)
	}
	so := &jose.SignerOptions{EmbedJWK: o.embedJWK}
	if !o.noType {
		so = so.WithType("secevent+jwt")
	}
	for k, v := range o.headers {
		so = so.WithHeader(k, v)
	}
	jwk := jose.JSONWebKey{Key: key.Signer, KeyID: key.ID, Algorithm: key.Alg}
	if o.embedJWK {
		// go-jose puts the JWK in the header instead of the kid when
		// embedding; keep the kid too, as an attacker would.
		so = so.WithHeader("kid", key.ID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Alg), Key: jwk}, so)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// MustSign is Sign for tests: it fails tb on error.
func (t *Transmitter) MustSign(tb testing.TB, claims map[string]any, opts ...SignOption) string {
	tb.Helper()
	s, err := t.Sign(claims, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Compact assembles a JWS compact serialization from a header and claims
// of the caller's choosing, signed by sign over the JWS signing input (nil
// for an empty signature). It builds what no honest transmitter would:
// "alg": "none", an HMAC keyed with a public key, a forged header.
func Compact(header, claims map[string]any, sign func(signingInput []byte) []byte) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Push delivers set to endpoint as RFC 8935 §2.1 describes (POST,
// Content-Type application/secevent+jwt, Accept application/json), with
// the optional authorization header value. The caller closes the response
// body.
func Push(ctx context.Context, client *http.Client, endpoint, set, authorization string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(set))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return client.Do(req)
}
