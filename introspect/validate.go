package introspect

// Which validator decides about a token (TOKEN_VALIDATION), and the local
// one: JWT access tokens (RFC 9068) verified against the issuer's JWKS by
// package jwtaccess, with the same cache, the same claim checks
// (accesstoken) and the same errors as introspection.
//
//   - ValidationIntrospection: every token is introspected (RFC 7662).
//   - ValidationJWT: only JWTs verified locally are accepted; anything
//     else is refused (401 invalid_token), or 503 when the issuer's keys
//     cannot be fetched.
//   - ValidationAuto (default): a JWS compact serialization whose header
//     names an allowed algorithm and a key of the issuer's JWKS is verified
//     locally, and that verdict is final; any other token is introspected.
//     Without introspection credentials auto means jwt.
//
// A local verification costs no call to the authorization server, so it
// takes no introspection slot and is not charged to the client's rate of
// unknown tokens; the one network call it may cause, a JWKS refresh for an
// unknown key, is bounded by the key set's own gate (JWKSMinRefresh).
// JWTIntrospect adds introspection after a successful local verification,
// for revocation within CacheMaxTTL.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
	"github.com/mcp-gateway/mcp-gateway/jwks"
	"github.com/mcp-gateway/mcp-gateway/jwtaccess"
)

// TokenValidation selects the validators (TOKEN_VALIDATION).
type TokenValidation string

// The validation modes.
const (
	ValidationAuto          TokenValidation = "auto"
	ValidationJWT           TokenValidation = "jwt"
	ValidationIntrospection TokenValidation = "introspection"
)

// local is the Verifier's JWT side.
type local struct {
	mode Mode // which validators run (ModeOf the Config)

	mu      sync.Mutex // serialises setup and Close
	closed  bool
	keys    *jwks.KeySet
	decided atomic.Bool // the JWT side is set up, or known to be absent
	jwt     atomic.Pointer[jwtaccess.Verifier]
}

// initLocal decides the validators from the (validated, defaulted) Config
// and, with a configured JWKSURL, sets up the JWT side at once.
func (v *Verifier) initLocal() error {
	c := &v.cfg
	l := &v.local
	l.mode = ModeOf(c)
	if l.mode.JWT && c.JWKSURL != "" {
		return v.setupJWT(c.JWKSURL, c.Issuer)
	}
	if !l.mode.JWT {
		l.decided.Store(true)
	}
	return nil
}

// setupJWT builds the key set and the JWT verifier for a JWKS URL and the
// exact issuer tokens must name, and starts the key set's background
// fetch. Idempotent.
func (v *Verifier) setupJWT(jwksURL, issuer string) error {
	l := &v.local
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.decided.Load() || l.closed {
		return nil
	}
	if _, err := urlrule.Server(jwksURL); err != nil {
		return fmt.Errorf("introspect: jwks_uri: %w", err)
	}
	ks, err := jwks.NewKeySet(jwks.KeySetConfig{
		URL:            jwksURL,
		HTTPClient:     v.client,
		MinRefresh:     v.cfg.JWKSMinRefresh,
		Timeout:        v.cfg.Timeout,
		Now:            v.cfg.Now,
		Logger:         v.log.With("validator", string(ValidatorJWT)),
		Observer:       v.obs,
		TracerProvider: v.cfg.TracerProvider,
	})
	if err != nil {
		return err
	}
	jv, err := jwtaccess.New(jwtaccess.Config{
		Issuer:               issuer,
		Audiences:            v.cfg.Audiences,
		AllowMissingAudience: v.cfg.AllowMissingAudience,
		Algorithms:           v.cfg.JWTAlgorithms,
		AllowGenericType:     v.cfg.JWTAllowGenericType,
		ClockSkew:            v.cfg.ClockSkew,
		Keys:                 ks,
		Now:                  v.cfg.Now,
	})
	if err != nil {
		ks.Close()
		return err
	}
	l.keys = ks
	l.jwt.Store(jv)
	l.decided.Store(true)
	v.log.Info("JWT access tokens verified locally", "jwks_uri", jwksURL, "issuer", issuer, "introspected_too", v.cfg.JWTIntrospect)
	return nil
}

// setupFromMetadata is the JWT side of a discovery: the metadata's
// jwks_uri and issuer. Without a jwks_uri, auto mode with credentials
// introspects every token; a mode that needs JWTs fails.
func (v *Verifier) setupFromMetadata(md *ServerMetadata) error {
	l := &v.local
	if l.decided.Load() {
		return nil
	}
	if md.JWKSURI == "" {
		if l.mode.JWTOnly {
			return fmt.Errorf("introspect: discovery: metadata for %q has no jwks_uri, so JWTs cannot be verified: set JWKS_URL, or introspection credentials", v.cfg.Issuer)
		}
		l.decided.Store(true)
		v.log.Info("the issuer publishes no jwks_uri: every token is introspected", "issuer", v.cfg.Issuer)
		return nil
	}
	return v.setupJWT(md.JWKSURI, md.Issuer)
}

// needsDiscovery says whether the issuer's metadata is still needed: for
// the introspection endpoint, or for the jwks_uri.
func (v *Verifier) needsDiscovery() bool {
	return (v.local.mode.Introspects && v.Endpoint() == "") || !v.local.decided.Load()
}

// closeLocal stops the key set's background fetch.
func (v *Verifier) closeLocal() {
	l := &v.local
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.keys != nil {
		l.keys.Close()
	}
}

// jwtVerifier returns the JWT verifier, discovering the jwks_uri first if
// needed; nil (with the discovery error, if any) when there is none.
func (v *Verifier) jwtVerifier(ctx context.Context) (*jwtaccess.Verifier, error) {
	if jv := v.local.jwt.Load(); jv != nil {
		jv.Keys().Start() // at once after the first time
		return jv, nil
	}
	if v.local.decided.Load() {
		return nil, nil
	}
	if err := v.Discover(ctx); err != nil {
		return nil, err
	}
	jv := v.local.jwt.Load()
	if jv != nil {
		jv.Keys().Start()
	}
	return jv, nil
}

// looksLikeJWS is the cheap test of a JWS compact serialization's shape:
// three dot-separated parts, the first a base64url JSON object ("eyJ" is
// `{"`). Tokens that fail it are never sent to the JWT verifier, so an
// opaque token costs no discovery of a jwks_uri.
func looksLikeJWS(token string) bool {
	return len(token) >= 5 && token[:3] == "eyJ" && strings.Count(token, ".") == 2
}

// verifyLocal is the JWT side of a cache miss. decided is false when the
// token is to be introspected instead (auto mode, or JWTIntrospect after
// a successful local verification).
func (v *Verifier) verifyLocal(ctx context.Context, token string, digest *[32]byte) (info *auth.TokenInfo, err error, decided bool) {
	if !looksLikeJWS(token) {
		if !v.local.mode.JWTOnly {
			return nil, nil, false
		}
		v.obs.Validation(ValidatorJWT, false)
		return nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: "not a JWT access token (TOKEN_VALIDATION=jwt)"}, true
	}
	jv, derr := v.jwtVerifier(ctx)
	if jv == nil {
		if !v.local.mode.JWTOnly {
			return nil, nil, false
		}
		if derr == nil {
			derr = errors.New("no JWKS")
		}
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: fmt.Errorf("the issuer's keys are unknown: %w", derr)}, true
	}
	cl, err := jv.VerifyStatic(ctx, token)
	var nl *jwtaccess.NotLocalError
	if errors.As(err, &nl) {
		if !v.local.mode.JWTOnly {
			return nil, nil, false
		}
		if nl.Unavailable != nil {
			return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: nl}, true
		}
		// Not cached: an unknown key may be published a moment later,
		// and recomputing this costs no network call (the key set's
		// refresh is gated).
		v.obs.Validation(ValidatorJWT, false)
		v.log.DebugContext(ctx, "token refused", "validator", string(ValidatorJWT), "reason", string(nl.Reason), "detail", nl.Detail)
		return nil, nl.Invalid(), true
	}
	now := v.cfg.Now()
	var invalid *accesstoken.InvalidError
	if errors.As(err, &invalid) {
		v.storeRefusal(&entry{digest: *digest, err: invalid}, now)
		v.obs.Validation(ValidatorJWT, false)
		v.log.DebugContext(ctx, "token refused", "validator", string(ValidatorJWT), "reason", string(invalid.Reason))
		return nil, invalid, true
	}
	if err != nil {
		return nil, &UnavailableError{RetryAfter: DefaultRetryAfter, Err: err}, true
	}
	if v.cfg.JWTIntrospect {
		// Signature and claims are good; whether the token has been
		// revoked only the authorization server knows.
		if terr := jv.CheckTime(cl); terr != nil {
			v.obs.Validation(ValidatorJWT, false)
			return nil, terr, true
		}
		v.obs.Validation(ValidatorJWT, true)
		return nil, nil, false
	}
	exp, nbf := accesstoken.Time(cl.Exp, cl.HasExp), accesstoken.Time(cl.Nbf, cl.HasNbf)
	// An "iat" in the future is a not-before too: the cached entry
	// re-checks it on every hit.
	if iat := accesstoken.Time(cl.Iat, cl.HasIat); iat.After(nbf) && iat.After(now) {
		nbf = iat
	}
	e := &entry{digest: *digest, exp: instantOf(exp), nbf: instantOf(nbf)}
	v.accept(e, cl, token)
	// Revocations (revocation.go): a JWT issued before one that applies
	// is asked about, or refused when nobody can be asked.
	if err, ask := v.jwtRevoked(e, cl, now); err != nil || ask {
		return nil, err, !ask
	}
	// A JWT's verdict is cached like an introspection answer (at most
	// CacheMaxTTL, never past exp), without waiting for ristretto to
	// apply the Set: a lost or late Set costs one more local verification,
	// not a call to the authorization server.
	if ttl := activeTTL(now, exp, v.cfg.CacheMaxTTL); ttl > 0 {
		v.storeAsync(e, now, ttl)
	}
	terr := accesstoken.CheckTime(exp, nbf, now, v.cfg.ClockSkew)
	v.obs.Validation(ValidatorJWT, terr == nil)
	if terr != nil {
		return nil, terr, true
	}
	return e.newInfo(), nil, true
}

// inspectLocal is Inspect's JWT side; ok is false when the token is to be
// introspected instead.
func (v *Verifier) inspectLocal(ctx context.Context, token string) (in *Inspection, ok bool) {
	if !v.local.mode.JWT {
		return nil, false
	}
	in = &Inspection{Validator: ValidatorJWT}
	if !looksLikeJWS(token) {
		if !v.local.mode.JWTOnly {
			return nil, false
		}
		in.Err = &accesstoken.InvalidError{Reason: accesstoken.ReasonFormat, Detail: "not a JWT access token (TOKEN_VALIDATION=jwt)"}
		return in, true
	}
	jv, err := v.jwtVerifier(ctx)
	if jv == nil {
		if !v.local.mode.JWTOnly {
			return nil, false
		}
		in.Err = &UnavailableError{RetryAfter: DefaultRetryAfter, Err: fmt.Errorf("the issuer's keys are unknown: %v", err)}
		return in, true
	}
	in.Claims, in.Err = jv.Verify(ctx, token)
	var nl *jwtaccess.NotLocalError
	if errors.As(in.Err, &nl) {
		if !v.local.mode.JWTOnly {
			return nil, false
		}
		in.NotLocal = nl
		in.Err = nl.Invalid()
		if nl.Unavailable != nil {
			in.Err = &UnavailableError{RetryAfter: DefaultRetryAfter, Err: nl}
		}
	}
	if in.Err == nil && v.cfg.JWTIntrospect {
		return nil, false
	}
	return in, true
}

// JWT is the JWT verifier (its key set and allowlist, for diagnosis), or
// nil when JWTs are not verified locally or the jwks_uri is not known yet.
func (v *Verifier) JWT() *jwtaccess.Verifier { return v.local.jwt.Load() }

// Mode describes the validation in effect: which validators run, and
// whether every token must be a JWT.
type Mode struct {
	Validation  TokenValidation // as configured
	JWT         bool            // JWTs are verified locally
	JWTOnly     bool            // and nothing else is accepted
	Introspects bool            // some tokens (or every JWT, with JWTIntrospect) are introspected
}

// ModeOf is the validation a Config puts in effect, decided from it alone
// (the configuration doctor asks it too, so that it cannot drift from the
// verifier it diagnoses). An empty Validation is ValidationAuto.
func ModeOf(c *Config) Mode {
	m := Mode{Validation: c.Validation}
	if m.Validation == "" {
		m.Validation = ValidationAuto
	}
	m.JWT = m.Validation != ValidationIntrospection && c.Issuer != ""
	m.JWTOnly = m.Validation == ValidationJWT || (m.Validation == ValidationAuto && c.ClientID == "")
	m.Introspects = !m.JWTOnly || c.JWTIntrospect
	return m
}

// Mode reports the validation in effect.
func (v *Verifier) Mode() Mode {
	return v.local.mode
}

// readyLocal is Ready's JWT side: in a mode where every token must be a
// JWT, the issuer's keys must have been fetched once.
func (v *Verifier) readyLocal(ctx context.Context) error {
	if !v.local.mode.JWTOnly {
		return nil
	}
	jv, err := v.jwtVerifier(ctx)
	if err != nil {
		return err
	}
	if jv == nil {
		return errors.New("introspect: no JWKS to verify JWTs with")
	}
	return jv.Keys().EnsureFetched(ctx)
}
