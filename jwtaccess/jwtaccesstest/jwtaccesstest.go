// Package jwtaccesstest is a test issuer of JWT access tokens (RFC 9068),
// in the spirit of go-oidc's oidctest: it serves RFC 8414 / OpenID Connect
// discovery metadata with a "jwks_uri", the JWKS itself, rotates keys on
// demand, and mints tokens with any header and claims, so tests can build
// both the tokens identity providers issue and the ones attackers forge.
// Signing is go-jose's.
package jwtaccesstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key pair with its key id and algorithm.
type Key struct {
	KID     string
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
}

// NewKey generates a key for alg (RS*/PS*: RSA 2048, ES256/384/512: the
// matching NIST curve, EdDSA: Ed25519) with key id kid.
func NewKey(tb testing.TB, alg jose.SignatureAlgorithm, kid string) *Key {
	tb.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		tb.Fatalf("jwtaccesstest: no key type for %s", alg)
	}
	if err != nil {
		tb.Fatalf("jwtaccesstest: generating a %s key: %v", alg, err)
	}
	return &Key{KID: kid, Alg: alg, Private: priv}
}

// JWK is the key's public half as published in a JWKS ("use": "sig",
// "alg" and "kid" set).
func (k *Key) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// SignOption changes how a token is signed.
type SignOption func(*signOptions)

type signOptions struct {
	noKID    bool
	typ      *string
	embedJWK bool
	headers  map[jose.HeaderKey]any
}

// NoKID leaves "kid" out of the header.
func NoKID() SignOption { return func(o *signOptions) { o.noKID = true } }

// Typ sets the header "typ" (default "at+jwt"); "" leaves it out.
func Typ(t string) SignOption { return func(o *signOptions) { o.typ = &t } }

// EmbedJWK puts the signing key itself in the header ("jwk").
func EmbedJWK() SignOption { return func(o *signOptions) { o.embedJWK = true } }

// Header adds a protected header parameter (e.g. "jku", "x5u", "crit",
// "cty").
func Header(name string, value any) SignOption {
	return func(o *signOptions) {
		if o.headers == nil {
			o.headers = map[jose.HeaderKey]any{}
		}
		o.headers[jose.HeaderKey(name)] = value
	}
}

// Sign returns claims (any JSON value; a []byte is used as the payload
// itself) as a JWS compact serialization signed with k.
func (k *Key) Sign(tb testing.TB, claims any, opts ...SignOption) string {
	tb.Helper()
	var o signOptions
	for _, f := range opts {
		f(&o)
	}
	so := &jose.SignerOptions{EmbedJWK: o.embedJWK}
	typ := "at+jwt"
	if o.typ != nil {
		typ = *o.typ
	}
	if typ != "" {
		so.WithType(jose.ContentType(typ))
	}
	for name, v := range o.headers {
		so.WithHeader(name, v)
	}
	var key any = jose.JSONWebKey{Key: k.Private, KeyID: k.KID}
	if o.noKID || o.embedJWK {
		// go-jose embeds the key with its kid; without one, the raw key.
		key = k.Private
		if o.embedJWK && !o.noKID {
			so.WithHeader("kid", k.KID)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: key}, so)
	if err != nil {
		tb.Fatalf("jwtaccesstest: signer: %v", err)
	}
	payload, ok := claims.([]byte)
	if !ok {
		if payload, err = json.Marshal(claims); err != nil {
			tb.Fatalf("jwtaccesstest: claims: %v", err)
		}
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatalf("jwtaccesstest: sign: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatalf("jwtaccesstest: serialize: %v", err)
	}
	return s
}

// Issuer is a test authorization server that issues JWT access tokens.
// All methods are safe for concurrent use.
type Issuer struct {
	// URL is the issuer identifier: the metadata's "issuer" and the "iss"
	// of minted tokens.
	URL string

	srv          *httptest.Server
	metadataHook func(map[string]any)

	mu           sync.Mutex
	signer       *Key
	published    []*Key
	cacheControl string
	failure      func(w http.ResponseWriter, r *http.Request) bool

	jwksCalls atomic.Int64
	tb        testing.TB
}

// Option configures an Issuer.
type Option func(*Issuer)

// WithIssuerURL makes tokens and metadata name u as the issuer instead of
// the server's own URL: for a test that serves the metadata elsewhere
// (e.g. an introspecttest server whose metadata points at JWKSURL).
func WithIssuerURL(u string) Option { return func(i *Issuer) { i.URL = u } }

// WithKey starts with k as the signing (and only published) key instead
// of a new RS256 key.
func WithKey(k *Key) Option {
	return func(i *Issuer) { i.signer, i.published = k, []*Key{k} }
}

// WithMetadata edits the metadata document before it is served.
func WithMetadata(f func(md map[string]any)) Option { return func(i *Issuer) { i.metadataHook = f } }

// WithCacheControl sets the Cache-Control header of the JWKS answers.
func WithCacheControl(v string) Option { return func(i *Issuer) { i.cacheControl = v } }

// New starts an issuer on 127.0.0.1 with one RS256 key (kid "key-1"); it is
// closed by tb.Cleanup.
func New(tb testing.TB, opts ...Option) *Issuer {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("jwtaccesstest: listen: %v", err)
	}
	i := &Issuer{URL: "http://" + l.Addr().String(), tb: tb}
	for _, o := range opts {
		o(i)
	}
	if i.signer == nil {
		k := NewKey(tb, jose.RS256, "key-1")
		i.signer, i.published = k, []*Key{k}
	}
	i.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(i.serveHTTP), ReadHeaderTimeout: 10 * time.Second}}
	i.srv.Start()
	tb.Cleanup(i.srv.Close)
	return i
}

// ServerURL is the base URL of the issuer's HTTP server (equal to URL
// unless WithIssuerURL was given).
func (i *Issuer) ServerURL() string { return i.srv.URL }

// JWKSURL is where the JWKS is served.
func (i *Issuer) JWKSURL() string { return i.srv.URL + "/jwks" }

// Key is the current signing key.
func (i *Issuer) Key() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.signer
}

// Rotate publishes a new key for alg and signs with it from now on; the
// previous keys stay published (as identity providers do during a
// rotation) until Unpublish.
func (i *Issuer) Rotate(alg jose.SignatureAlgorithm) *Key {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	k := NewKey(i.tb, alg, "key-"+hex.EncodeToString(b))
	i.mu.Lock()
	i.published = append(i.published, k)
	i.signer = k
	i.mu.Unlock()
	return k
}

// Publish adds k to the JWKS without signing with it.
func (i *Issuer) Publish(k *Key) {
	i.mu.Lock()
	i.published = append(i.published, k)
	i.mu.Unlock()
}

// Unpublish removes the key with kid from the JWKS.
func (i *Issuer) Unpublish(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := i.published[:0]
	for _, k := range i.published {
		if k.KID != kid {
			out = append(out, k)
		}
	}
	i.published = out
}

// SetJWKSFailure installs a hook run on every JWKS request before normal
// handling; if it returns true it has written the response. nil clears it.
func (i *Issuer) SetJWKSFailure(f func(w http.ResponseWriter, r *http.Request) bool) {
	i.mu.Lock()
	i.failure = f
	i.mu.Unlock()
}

// JWKSCalls is the number of JWKS requests received.
func (i *Issuer) JWKSCalls() int64 { return i.jwksCalls.Load() }

// Claims returns the claims of an RFC 9068 §2.2 access token: iss, sub,
// aud (left out when empty), exp, iat, jti, client_id "test-client" and
// scope, for a test to adjust before Token.
func (i *Issuer) Claims(sub string, scopes []string, aud string, ttl time.Duration) map[string]any {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	now := time.Now()
	c := map[string]any{
		"iss":       i.URL,
		"sub":       sub,
		"exp":       now.Add(ttl).Unix(),
		"iat":       now.Unix(),
		"jti":       hex.EncodeToString(b),
		"client_id": "test-client",
		"scope":     strings.Join(scopes, " "),
	}
	if aud != "" {
		c["aud"] = aud
	}
	return c
}

// AccessToken mints an RFC 9068 access token (Claims) signed with the
// current key, header typ "at+jwt".
func (i *Issuer) AccessToken(sub string, scopes []string, aud string, ttl time.Duration) string {
	return i.Token(i.Claims(sub, scopes, aud, ttl))
}

// Token signs claims with the current key.
func (i *Issuer) Token(claims map[string]any, opts ...SignOption) string {
	return i.Key().Sign(i.tb, maps.Clone(claims), opts...)
}

func (i *Issuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/jwks":
		i.jwks(w, r)
	case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
		md := map[string]any{
			"issuer":                           i.URL,
			"jwks_uri":                         i.JWKSURL(),
			"authorization_endpoint":           i.srv.URL + "/authorize",
			"token_endpoint":                   i.srv.URL + "/token",
			"response_types_supported":         []string{"code"},
			"code_challenge_methods_supported": []string{"S256"},
			"scopes_supported":                 []string{"op:add", "op:sub", "op:mult", "op:div"},
		}
		if i.metadataHook != nil {
			i.metadataHook(md)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(md)
	default:
		http.NotFound(w, r)
	}
}

func (i *Issuer) jwks(w http.ResponseWriter, r *http.Request) {
	i.jwksCalls.Add(1)
	i.mu.Lock()
	fail, cc := i.failure, i.cacheControl
	set := jose.JSONWebKeySet{}
	for _, k := range i.published {
		set.Keys = append(set.Keys, k.JWK())
	}
	i.mu.Unlock()
	if fail != nil && fail(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	_ = json.NewEncoder(w).Encode(set)
}
