package introspect

import (
	"time"

	"github.com/mcp-gateway/mcp-gateway/jwks"
)

// Validator names what decided about a token: local verification of a
// JWT access token (RFC 9068), or RFC 7662 introspection.
type Validator string

// The validators.
const (
	ValidatorJWT           Validator = "jwt"
	ValidatorIntrospection Validator = "introspection"
)

// AllValidators lists every Validator in a stable order (a metric's label
// set).
func AllValidators() []Validator { return []Validator{ValidatorJWT, ValidatorIntrospection} }

// Outcome says how one HTTP exchange with the introspection endpoint ended.
type Outcome string

// The outcomes of an exchange.
const (
	OutcomeActive      Outcome = "active"       // 200, "active": true
	OutcomeInactive    Outcome = "inactive"     // 200, "active": false or an unparsable claim
	OutcomeRejected    Outcome = "rejected"     // 400 about the token
	OutcomeClientAuth  Outcome = "client_auth"  // 401/403 (or 400 invalid_client) to our credentials
	OutcomeTimeout     Outcome = "timeout"      // no answer in time
	OutcomeNetwork     Outcome = "network"      // connection refused, reset, DNS ...
	OutcomeStatus      Outcome = "status"       // 5xx, 429 or another unexpected status
	OutcomeBadResponse Outcome = "bad_response" // not JSON, no boolean "active", too large, a redirect
)

// AllOutcomes lists every Outcome in a stable order (a metric's label set).
func AllOutcomes() []Outcome {
	return []Outcome{OutcomeActive, OutcomeInactive, OutcomeRejected, OutcomeClientAuth,
		OutcomeTimeout, OutcomeNetwork, OutcomeStatus, OutcomeBadResponse}
}

// ShedReason says why an introspection was not attempted.
type ShedReason string

// The reasons for shedding.
const (
	// ShedConcurrency: no Config.MaxConcurrency slot came free in time.
	ShedConcurrency ShedReason = "concurrency"
	// ShedClientConcurrency: the client already had
	// Config.ClientConcurrency unknown tokens in flight.
	ShedClientConcurrency ShedReason = "client_concurrency"
	// ShedRate: the client's refused tokens emptied its bucket
	// (Config.RefusalRate).
	ShedRate ShedReason = "rate"
)

// AllShedReasons lists every ShedReason in a stable order.
func AllShedReasons() []ShedReason {
	return []ShedReason{ShedConcurrency, ShedClientConcurrency, ShedRate}
}

// Observer receives what the verifier does, for metrics. Implementations
// must be safe for concurrent use and cheap: CacheHit is on the hot path.
// Nothing passed to an Observer identifies a token or its owner.
type Observer interface {
	// JWKSFetch reports one fetch of the issuer's JWKS
	// (jwks.Observer).
	jwks.Observer
	// Validation reports a token validated (a cache miss decided) by
	// validator, accepted or refused. Under JWTIntrospect a JWT is
	// reported by both validators.
	Validation(validator Validator, accepted bool)
	// IntrospectionCall reports one HTTP exchange with the introspection
	// endpoint, how it ended and how long it took.
	IntrospectionCall(outcome Outcome, d time.Duration)
	// CacheHit and CacheMiss count lookups; CacheEviction counts entries
	// ristretto dropped before their TTL (capacity) or at it (expiry).
	CacheHit()
	CacheMiss()
	CacheEviction()
	// StaleUse counts an expired-in-cache active answer served because the
	// authorization server is failing (Config.StaleIfError).
	StaleUse()
	// Shed counts an introspection not attempted because of load shedding.
	Shed(reason ShedReason)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) JWKSFetch(jwks.FetchOutcome, time.Duration) {}
func (NopObserver) Validation(Validator, bool)                 {}
func (NopObserver) IntrospectionCall(Outcome, time.Duration)   {}
func (NopObserver) CacheHit()                                  {}
func (NopObserver) CacheMiss()                                 {}
func (NopObserver) CacheEviction()                             {}
func (NopObserver) StaleUse()                                  {}
func (NopObserver) Shed(ShedReason)                            {}
