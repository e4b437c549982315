package main

// The doctor's checks of token validation (issue 14): which validators run
// and what that means for revocation, and the issuer's JWKS (reachable,
// parseable, algorithms and key types against JWT_ALGORITHMS), through the
// very key set the server would use.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/jwks"
)

// modeOf is what the configuration makes the verifier do: introspect's
// own decision.
func modeOf(cfg *config) introspect.Mode {
	ic := cfg.introspectConfig()
	return introspect.ModeOf(&ic)
}

// checkMode says which validation is in effect and what it means for
// revocation.
func checkMode(r *report, cfg *config) introspect.Mode {
	m := modeOf(cfg)
	ttl := cfg.CacheMaxTTL
	switch {
	case !m.JWT:
		r.ok("token validation: TOKEN_VALIDATION=introspection: every token is introspected (RFC 7662)")
		r.detail("revocation: a token revoked at the authorization server is refused within CACHE_MAX_TTL=%s", ttl)
		return m
	case cfg.TokenValidation == introspect.ValidationJWT:
		r.ok("token validation: TOKEN_VALIDATION=jwt: only JWT access tokens (RFC 9068) verified locally with the issuer's JWKS are accepted")
	case m.JWTOnly:
		r.ok("token validation: TOKEN_VALIDATION=auto without introspection credentials: every token must be a JWT verified locally with the issuer's JWKS; an opaque token gets 401 invalid_token")
	default:
		r.ok("token validation: TOKEN_VALIDATION=auto: JWTs signed with a key of the issuer's JWKS are verified locally, every other token is introspected")
	}
	if cfg.JWTIntrospect {
		r.detail("revocation: JWT_INTROSPECT=true: JWTs are introspected too after the local check, so a revoked token is refused within CACHE_MAX_TTL=%s", ttl)
	} else {
		r.detail("revocation: a JWT verified locally cannot be revoked before it expires (the gateway does not ask the authorization server); keep access tokens short-lived, or set JWT_INTROSPECT=true with introspection credentials to refuse revoked ones within CACHE_MAX_TTL=%s", ttl)
	}
	if !cfg.JWTRequireATTyp {
		r.detail("note: JWT_REQUIRE_AT_TYP=false: JWTs typed \"JWT\" or untyped are accepted too; ID tokens are still refused by their nonce, audience and token type claims")
	}
	return m
}

// checkJWKSURL reports where the JWKS is, or why there is none; "" when
// none is known.
func checkJWKSURL(r *report, cfg *config, md *introspect.ServerMetadata, m introspect.Mode) string {
	switch {
	case cfg.JWKSURL != "":
		if md != nil && md.JWKSURI != "" && md.JWKSURI != cfg.JWKSURL {
			r.warn("jwks_uri: JWKS_URL=%s is used; the metadata advertises %s", cfg.JWKSURL, md.JWKSURI)
		} else {
			r.ok("jwks_uri: JWKS_URL=%s", cfg.JWKSURL)
		}
		r.detail("note: with JWKS_URL set, a JWT's iss must be exactly AUTH_ISSUER_URL=%s", cfg.IssuerURL)
		return cfg.JWKSURL
	case md != nil && md.JWKSURI != "":
		r.ok("jwks_uri: %s (discovered)", md.JWKSURI)
		return md.JWKSURI
	case md == nil:
		if m.JWTOnly {
			r.fail("JWKS: not checked: the issuer metadata was not found, so its jwks_uri is unknown")
			r.fix("fix the issuer metadata (above), or set JWKS_URL to your IdP's JWKS")
		}
		return ""
	case m.JWTOnly:
		r.fail("jwks_uri: the metadata has none and JWKS_URL is unset: JWTs cannot be verified, and without introspection credentials nothing else can be")
		r.fix("set JWKS_URL to your IdP's JWKS, or set INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET to introspect tokens")
	default:
		r.detail("note: jwks_uri: the metadata has none, so every token is introspected (set JWKS_URL to verify JWTs locally)")
	}
	return ""
}

// checkJWKS fetches the JWKS with the verifier's own key set and compares
// its keys with JWT_ALGORITHMS.
func checkJWKS(ctx context.Context, r *report, v *introspect.Verifier, cfg *config) {
	jv := v.JWT()
	if jv == nil {
		r.fail("JWKS: the verifier has no key set")
		return
	}
	ks := jv.Keys()
	if err := ks.Refresh(ctx); err != nil {
		r.fail("JWKS: %s cannot be used: %v", ks.URL(), err)
		r.fix("check that %s is reachable from here, answers 200 with a JSON Web Key Set (RFC 7517) within INTROSPECTION_TIMEOUT=%s, and holds the IdP's public signing keys", ks.URL(), cfg.IntrospectionTimeout)
		for _, s := range ks.Status().Skipped {
			r.detail("- %s", s)
		}
		return
	}
	st := ks.Status()
	allowed := jv.Algorithms()
	var descs, usable, notAllowed []string
	for i := range st.Keys {
		k := &st.Keys[i]
		algs := keyAlgorithms(k)
		fit := false
		for _, a := range algs {
			if slices.Contains(allowed, a) {
				fit = true
			}
		}
		d := fmt.Sprintf("kid %q %s (%s)", k.KeyID, keyType(k), joinAlgs(algs))
		descs = append(descs, d)
		if fit {
			usable = append(usable, d)
		} else {
			notAllowed = append(notAllowed, d)
		}
	}
	r.ok("JWKS: %s answered: %d signing key(s): %s; cache lifetime %s", ks.URL(), len(st.Keys), strings.Join(descs, ", "), st.Expires.Sub(st.Fetched).Round(1e9))
	for _, s := range st.Skipped {
		r.warn("JWKS: key not used: %s", s)
	}
	allowedNames := joinAlgs(allowed)
	switch {
	case len(usable) == 0:
		r.fail("JWKS: no key can verify an algorithm of JWT_ALGORITHMS=%q: every JWT would be refused", allowedNames)
		var need []string
		for i := range st.Keys {
			for _, a := range keyAlgorithms(&st.Keys[i]) {
				if !slices.Contains(need, string(a)) {
					need = append(need, string(a))
				}
			}
		}
		r.fix("set JWT_ALGORITHMS to the algorithm your IdP signs with, among %s", strings.Join(need, " "))
	case len(notAllowed) > 0:
		r.warn("JWKS: %d key(s) cannot verify any algorithm of JWT_ALGORITHMS=%q, so tokens they sign are refused: %s", len(notAllowed), allowedNames, strings.Join(notAllowed, ", "))
	default:
		r.ok("JWT_ALGORITHMS=%q: every key of the JWKS can be used", allowedNames)
	}
}

// keyAlgorithms lists the algorithms a key can verify (its "alg" when
// set), as jwtaccess matches them.
func keyAlgorithms(k *jose.JSONWebKey) []jose.SignatureAlgorithm {
	var algs []jose.SignatureAlgorithm
	for _, a := range jwks.Asymmetric() {
		if jwks.Fits(k, a) {
			algs = append(algs, a)
		}
	}
	return algs
}

func keyType(k *jose.JSONWebKey) string {
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", pub.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + pub.Curve.Params().Name
	case ed25519.PublicKey:
		return "OKP Ed25519"
	}
	return "?"
}

func joinAlgs(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, " ")
}

// jwtHeaderSummary shows a JWT's header (alg, kid, typ), unverified, for
// the doctor's explanation; "" when the token is not a JWS.
func jwtHeaderSummary(token string) string {
	h, _, ok := strings.Cut(token, ".")
	if !ok || strings.Count(token, ".") != 2 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ any    `json:"typ"`
	}
	if json.Unmarshal(b, &hdr) != nil {
		return ""
	}
	typ := "absent"
	if hdr.Typ != nil {
		typ = fmt.Sprintf("%q", fmt.Sprint(hdr.Typ))
	}
	return fmt.Sprintf("alg=%q kid=%q typ=%s", hdr.Alg, hdr.Kid, typ)
}

// explainJWTRefusal adds the fixes of the refusals only a JWT can get.
func explainJWTRefusal(r *report, cfg *config, reason string, in *introspect.Inspection, token string) {
	switch reason {
	case "signature":
		if in.NotLocal != nil {
			r.fix("no key of the issuer's JWKS fits this token (%s): it was signed by another issuer or tenant, with an algorithm outside JWT_ALGORITHMS=%q, or with a key the JWKS does not publish", jwtHeaderSummary(token), strings.Join(cfg.JWTAlgorithms, " "))
			return
		}
		r.fix("the signature does not verify with the issuer's key: the token was altered, or signed by another party using the same kid")
	case "format":
		if in.NotLocal != nil || !strings.Contains(token, ".") {
			r.fix("this is not a JWT access token, and the gateway has no introspection credentials to ask about it: get a JWT from your IdP (for Auth0, request an audience), or set INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET")
			return
		}
		r.fix("the JWT lacks a required claim (exp) or has one of the wrong type, or uses a JOSE feature the gateway refuses (crit, cty, nested JWT)")
	case "token_type":
		r.fix("the JWT is not typed as an access token (%s): if your IdP does not set typ \"at+jwt\" (docs/identity-providers.md says which), set JWT_REQUIRE_AT_TYP=false; if this is an ID token (nonce, or aud = the client), paste the access token instead", jwtHeaderSummary(token))
	case "issuer":
		r.fix("a JWT's iss must be exactly the issuer the metadata declares (RFC 9068 §4), trailing slash included")
	}
}
