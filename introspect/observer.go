package introspect

import "time"

// Observer receives what the verifier does, for metrics. Implementations
// must be safe for concurrent use and cheap: CacheHit is on the hot path.
// Nothing passed to an Observer identifies a token or its owner.
type Observer interface {
	// IntrospectionCall reports one HTTP exchange with the introspection
	// endpoint and how it ended: "active", "inactive", "rejected" (a 400
	// about the token), "client_auth" (401/403 to our credentials),
	// "timeout", "network", "status" (5xx, 429 or another unexpected
	// status), "bad_response" (not JSON, no boolean "active", too large, a
	// redirect).
	IntrospectionCall(outcome string, d time.Duration)
	// CacheHit and CacheMiss count lookups; CacheEviction counts entries
	// ristretto dropped before their TTL (capacity) or at it (expiry).
	CacheHit()
	CacheMiss()
	CacheEviction()
	// StaleUse counts an expired-in-cache active answer served because the
	// authorization server is failing (STALE_IF_ERROR).
	StaleUse()
	// Shed counts an introspection not attempted because of load shedding:
	// reason is "concurrency" or "rate".
	Shed(reason string)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) IntrospectionCall(string, time.Duration) {}
func (NopObserver) CacheHit()                               {}
func (NopObserver) CacheMiss()                              {}
func (NopObserver) CacheEviction()                          {}
func (NopObserver) StaleUse()                               {}
func (NopObserver) Shed(string)                             {}
