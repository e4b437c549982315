// Package jwtaccess verifies JWT access tokens (RFC 9068) locally, against
// the issuer's JSON Web Key Set, following the JWT best current practices
// of RFC 8725: an allowlist of asymmetric algorithms, keys only from the
// issuer's own JWKS, the key's type bound to the algorithm, explicit
// typing, and every claim the resource server relies on checked with
// package accesstoken, the same vocabulary and checks as RFC 7662
// introspection.
//
// The issuer's JWKS (fetch, cache, refresh, which key fits which
// algorithm) is package jwks's KeySet, shared with the Shared Signals
// receiver; this package is the verification of one token (verify.go).
// Package jwtaccesstest is a test issuer (metadata, JWKS, key rotation,
// minting).
//
// Nothing here hand-writes a signature check or key parsing: keys are
// parsed by github.com/go-jose/go-jose/v4 (package jwks), and signatures
// checked by the JWA algorithms (RFC 7518 §3) of
// github.com/golang-jwt/jwt/v5, which, unlike go-jose, exposes them apart
// from its own token parser. The compact serialization is split and its
// header read here (compact.go): go-jose's parser reads every header
// parameter it knows, embedded keys and certificates included, and cost a
// quarter of a new token's verification.
package jwtaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	sjson "github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/jwks"
)

// DefaultAlgorithms is the default allowlist (JWT_ALGORITHMS): the
// asymmetric algorithms identity providers sign access tokens with.
var DefaultAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// SupportedAlgorithms lists the algorithms Config.Algorithms may name:
// asymmetric signatures only (jwks.Asymmetric), never "none" nor an HMAC
// algorithm.
func SupportedAlgorithms() []string { return jwks.AsymmetricNames() }

// Config configures a Verifier.
type Config struct {
	// Issuer is the authorization server's issuer identifier exactly as
	// its metadata declares it: "iss" must equal it (RFC 9068 §4).
	Issuer string
	// Audiences, AllowMissingAudience: as accesstoken.NewChecker (RFC 8707
	// normalisation, ACCEPTED_AUDIENCES).
	Audiences            []string
	AllowMissingAudience bool
	// Algorithms is the "alg" allowlist (JWT_ALGORITHMS). Empty:
	// DefaultAlgorithms. Only SupportedAlgorithms may be named.
	Algorithms []string
	// AllowGenericType accepts a header "typ" of "JWT" or none at all
	// (JWT_REQUIRE_AT_TYP=false), for identity providers that do not type
	// their access tokens "at+jwt" (RFC 9068 §2.1). Off, only "at+jwt"
	// (or "application/at+jwt") is accepted.
	AllowGenericType bool
	// ClockSkew is the tolerance on exp, nbf and iat.
	ClockSkew time.Duration
	// Keys is the issuer's key set. Required.
	Keys *jwks.KeySet
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// Logger receives debug logs of refusals (never a token). nil discards.
	Logger *slog.Logger
}

// Verifier verifies JWT access tokens of one issuer. It is safe for
// concurrent use.
type Verifier struct {
	cfg     Config
	algs    []jose.SignatureAlgorithm
	methods map[string]jwt.SigningMethod // by "alg", one per member of algs
	checker *accesstoken.Checker
}

// New validates cfg and returns a Verifier. Every problem is reported at
// once.
func New(cfg Config) (*Verifier, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("jwtaccess: Issuer is required"))
	}
	if len(cfg.Audiences) == 0 && !cfg.AllowMissingAudience {
		errs = append(errs, errors.New("jwtaccess: at least one audience is required"))
	}
	if cfg.Keys == nil {
		errs = append(errs, errors.New("jwtaccess: Keys is required"))
	}
	if cfg.ClockSkew < 0 {
		errs = append(errs, errors.New("jwtaccess: ClockSkew must not be negative"))
	}
	names := cfg.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	algs, err := ParseAlgorithms(names)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	methods := make(map[string]jwt.SigningMethod, len(algs))
	for _, a := range algs {
		m := jwt.GetSigningMethod(string(a))
		if m == nil || m.Alg() != string(a) {
			return nil, fmt.Errorf("jwtaccess: no signature check for %s", a) // SupportedAlgorithms and golang-jwt disagree
		}
		methods[string(a)] = m
	}
	return &Verifier{cfg: cfg, algs: algs, methods: methods,
		checker: accesstoken.NewChecker(cfg.Issuer, cfg.Audiences, cfg.AllowMissingAudience)}, nil
}

// ParseAlgorithms checks an allowlist of JWS algorithm names: each must be
// one of SupportedAlgorithms (so never "none" nor an HMAC algorithm).
func ParseAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	var out []jose.SignatureAlgorithm
	var bad []string
	for _, n := range names {
		a := jose.SignatureAlgorithm(n)
		if !slices.Contains(jwks.Asymmetric(), a) {
			bad = append(bad, n)
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("jwtaccess: algorithm(s) %q not allowed: use asymmetric ones among %s (never none or HS*)",
			bad, strings.Join(SupportedAlgorithms(), " "))
	}
	if len(out) == 0 {
		return nil, errors.New("jwtaccess: the algorithm allowlist is empty")
	}
	return out, nil
}

// Algorithms is the allowlist in effect.
func (v *Verifier) Algorithms() []jose.SignatureAlgorithm { return slices.Clone(v.algs) }

// Keys is the issuer's key set.
func (v *Verifier) Keys() *jwks.KeySet { return v.cfg.Keys }

// Issuer is the issuer tokens must name exactly.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// NotLocalError means the token is not one this Verifier can decide: it
// is not a JWS compact serialization, or its "alg" is not allowed, or no
// key of the issuer's JWKS matches its "kid" (and its algorithm), even
// after a refresh of the key set. A caller that can introspect tokens may
// ask the authorization server instead; one that cannot refuses it with
// Reason, or, when Unavailable is set (the key set could not be fetched),
// answers that it cannot verify the token now (503), not that the token is
// bad.
type NotLocalError struct {
	Reason      accesstoken.Reason // ReasonFormat or ReasonSignature
	Detail      string             // token-free
	Unavailable error              // the JWKS fetch failure, if that is why no key was found
}

func (e *NotLocalError) Error() string {
	return "not verifiable locally: " + e.Detail
}

// Invalid is the refusal a verifier that cannot introspect gives.
func (e *NotLocalError) Invalid() *accesstoken.InvalidError {
	return &accesstoken.InvalidError{Reason: e.Reason, Detail: e.Detail}
}

// Verify verifies token as a JWT access token of the issuer and returns its
// claims. It checks, failing closed at each step:
//
//  1. JWS compact serialization only (RFC 7515 §7.1): three base64url parts,
//     strictly encoded, and a header that is a JSON object (compact.go); a
//     JWE (five parts) or the JSON serialization is not one;
//  2. "alg" in the allowlist (RFC 8725 §3.1);
//  3. the key: "kid" looked up in the issuer's JWKS only, never taken from
//     the token ("jku", "x5u", "jwk", "x5c" are ignored: RFC 8725 §3.10),
//     or with no "kid" the only key of the algorithm's type; the key's type
//     must be the algorithm's;
//  4. no "crit" (RFC 7515 §4.1.11: the gateway understands no extension),
//     no "b64" (RFC 7797: an unencoded payload), no "cty" (a nested JWT,
//     RFC 7519 §5.2, is not an access token);
//  5. "typ" "at+jwt" (RFC 9068 §2.1, RFC 8725 §3.11), or also "JWT" or none
//     with Config.AllowGenericType;
//  6. the signature;
//  7. the payload, a JSON object, read by accesstoken.ReadMembers as
//     introspection answers are; a claim of the wrong type is a refusal;
//  8. not an ID token (see idTokenShape);
//  9. accesstoken.Checker.StaticJWT: "exp" and "iss" required, "iss" exactly
//     the issuer, token type claims, "aud" (RFC 8707);
//  10. "exp", "nbf" and "iat" against Config.Now with Config.ClockSkew.
//
// Errors: *NotLocalError for steps 1-3 (the token may still be valid for
// an authorization server that can introspect it), *accesstoken.InvalidError
// for every later step (the issuer's key was found: the verdict is final).
// A refusal after the signature verified returns the claims too, for
// diagnosis; they must not be used otherwise.
func (v *Verifier) Verify(ctx context.Context, token string) (*accesstoken.Claims, error) {
	cl, err := v.VerifyStatic(ctx, token)
	if err != nil {
		return cl, err
	}
	if err := v.CheckTime(cl); err != nil {
		return cl, err
	}
	return cl, nil
}

// CheckTime is step 10 of Verify: "exp" and "nbf" with accesstoken.CheckTime,
// and an "iat" in the future (beyond the skew) refused as not yet valid.
func (v *Verifier) CheckTime(cl *accesstoken.Claims) error {
	now := v.cfg.Now()
	if err := accesstoken.CheckTime(accesstoken.Time(cl.Exp, cl.HasExp), accesstoken.Time(cl.Nbf, cl.HasNbf), now, v.cfg.ClockSkew); err != nil {
		return err
	}
	if cl.HasIat && now.Add(v.cfg.ClockSkew).Before(time.Unix(cl.Iat, 0)) {
		return &accesstoken.InvalidError{Reason: accesstoken.ReasonNotYetValid, Detail: "iat is in the future"}
	}
	return nil
}

// VerifyStatic is Verify without step 10, for a caller that caches the
// verdict and re-checks the time on every use (the introspect verifier).
// On an *accesstoken.InvalidError after the signature verified, the claims
// are returned too, for diagnosis.
func (v *Verifier) VerifyStatic(ctx context.Context, token string) (*accesstoken.Claims, error) {
	if !compactJWS(token) {
		return nil, &NotLocalError{Reason: accesstoken.ReasonFormat, Detail: "not a JWS compact serialization"}
	}
	c, err := parseCompact(token)
	if err != nil {
		return nil, &NotLocalError{Reason: accesstoken.ReasonFormat, Detail: "not a well-formed JWS"}
	}
	method, ok := v.methods[c.header.Alg]
	if !ok {
		return nil, &NotLocalError{Reason: accesstoken.ReasonSignature, Detail: "alg is not in JWT_ALGORITHMS"}
	}
	keys, err := v.cfg.Keys.Lookup(ctx, c.header.Kid, jose.SignatureAlgorithm(c.header.Alg))
	if err != nil {
		var ke *jwks.KeyError
		nl := &NotLocalError{Reason: accesstoken.ReasonSignature, Detail: "no key of the issuer's JWKS matches kid and alg"}
		if errors.As(err, &ke) {
			nl.Unavailable = ke.Unavailable
		}
		return nil, nl
	}
	if err := v.checkHeader(&c.header); err != nil {
		return nil, err
	}
	verified := false
	for _, k := range keys {
		if method.Verify(c.signingInput, c.signature, k.Key) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonSignature, Detail: "signature does not verify"}
	}
	cl, members, err := parsePayload(c.payload)
	if err != nil {
		return nil, err
	}
	if ie := idTokenShape(cl, members.HasNonce()); ie != nil {
		return cl, ie
	}
	if ie := v.checker.StaticJWT(cl); ie != nil {
		return cl, ie
	}
	return cl, nil
}

// checkHeader applies steps 4 and 5 of Verify to the protected header.
func (v *Verifier) checkHeader(h *header) error {
	if h.Crit != nil {
		return &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: "crit header: no extension is understood"}
	}
	if h.B64 != nil {
		return &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: "b64 header: no unencoded payload (RFC 7797)"}
	}
	if h.Cty != nil {
		return &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: "cty header: nested or non-JWT content"}
	}
	present := h.Typ != nil
	var typ string
	if present && (h.Typ[0] != '"' || sjson.Unmarshal(h.Typ, &typ) != nil) {
		return &accesstoken.InvalidError{Reason: accesstoken.ReasonTokenType, Detail: "typ is not a string"}
	}
	// RFC 7515 §4.1.9: media types are case-insensitive and the
	// "application/" prefix may be omitted.
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	switch {
	case present && t == "at+jwt":
		return nil
	case v.cfg.AllowGenericType && (!present || t == "jwt"):
		return nil
	case !present || t == "jwt":
		return &accesstoken.InvalidError{Reason: accesstoken.ReasonTokenType, Detail: `typ is not "at+jwt" (set JWT_REQUIRE_AT_TYP=false if your identity provider does not type its access tokens)`}
	}
	return &accesstoken.InvalidError{Reason: accesstoken.ReasonTokenType, Detail: "typ is not an access token's"}
}

// parsePayload reads the claims of a verified payload. A payload that is
// not a JSON object, or a claim of the wrong type, is a refusal (the
// issuer signed something that is not an access token we can read).
func parsePayload(payload []byte) (*accesstoken.Claims, *accesstoken.Members, error) {
	m, err := accesstoken.ReadMembers(payload)
	if err != nil {
		return nil, nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: "payload is not a JSON object"}
	}
	cl, err := m.Claims()
	if err != nil {
		return nil, nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: err.Error()}
	}
	return cl, m, nil
}

// idTokenShape refuses an OpenID Connect ID token presented as an access
// token (RFC 9068 §4 and RFC 8725 §3.11 ask resource servers to tell them
// apart; an ID token is signed by the same key). An ID token is recognised
// by what access tokens do not carry:
//   - "nonce" (OpenID Connect Core §2: echoed from the authentication
//     request into the ID token; no access token profile defines it);
//   - an audience that is the token's own client ("azp" or "client_id"):
//     an ID token's "aud" is the client it was issued to (OpenID Connect
//     Core §2), an access token's is the resource. (Hence Microsoft Entra
//     ID apps that are their own API are refused: register the API as an
//     app of its own.)
//
// The header "typ" (step 5) and the token type claims ("token_use": "id"
// in AWS Cognito, "typ": "ID" in Keycloak; accesstoken.Checker) catch the
// others.
func idTokenShape(cl *accesstoken.Claims, hasNonce bool) *accesstoken.InvalidError {
	if hasNonce {
		return &accesstoken.InvalidError{Reason: accesstoken.ReasonTokenType, Detail: "nonce present: an ID token, not an access token"}
	}
	for _, a := range cl.Aud {
		if a != "" && (a == cl.Azp || a == cl.ClientID) {
			return &accesstoken.InvalidError{Reason: accesstoken.ReasonTokenType, Detail: "aud is the token's own client: an ID token, not an access token"}
		}
	}
	return nil
}
