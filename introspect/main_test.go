package introspect

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"go.uber.org/goleak"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/jwks"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// Verifier's Close must stop everything it started (cache goroutines,
// shared introspections, connections).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingObserver records every Observer event.
type countingObserver struct {
	hits, misses, evictions, stale atomic.Int64

	mu          sync.Mutex
	outcomes    []string
	shed        map[string]int
	validations map[string]int // "validator/accepted|refused"
	jwks        []string
}

func newCountingObserver() *countingObserver {
	return &countingObserver{shed: map[string]int{}, validations: map[string]int{}}
}

func (o *countingObserver) JWKSFetch(outcome jwks.FetchOutcome, _ time.Duration) {
	o.mu.Lock()
	o.jwks = append(o.jwks, string(outcome))
	o.mu.Unlock()
}

// jwksOutcomes returns the JWKS fetch outcomes so far (the key set's
// background retries append to them concurrently).
func (o *countingObserver) jwksOutcomes() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.jwks...)
}

func (o *countingObserver) Validation(v Validator, accepted bool) {
	r := "refused"
	if accepted {
		r = "accepted"
	}
	o.mu.Lock()
	o.validations[string(v)+"/"+r]++
	o.mu.Unlock()
}

func (o *countingObserver) validated(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.validations[key]
}

func (o *countingObserver) IntrospectionCall(outcome Outcome, _ time.Duration) {
	o.mu.Lock()
	o.outcomes = append(o.outcomes, string(outcome))
	o.mu.Unlock()
}
func (o *countingObserver) CacheHit()      { o.hits.Add(1) }
func (o *countingObserver) CacheMiss()     { o.misses.Add(1) }
func (o *countingObserver) CacheEviction() { o.evictions.Add(1) }
func (o *countingObserver) StaleUse()      { o.stale.Add(1) }
func (o *countingObserver) Shed(reason ShedReason) {
	o.mu.Lock()
	o.shed[string(reason)]++
	o.mu.Unlock()
}

func (o *countingObserver) calls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.outcomes...)
}

func (o *countingObserver) shedCount(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.shed[reason]
}

// digestOf is the cache digest of a token.
func digestOf(tok string) *[32]byte {
	d := sha256.Sum256([]byte(tok))
	return &d
}

// infoOf is the TokenInfo a cache entry would hold for c.
func infoOf(c *accesstoken.Claims, known *interner) *auth.TokenInfo {
	e := &entry{}
	e.setInfo(c, known)
	return e.newInfo()
}

// insertAnswer caches a parsed introspection answer for tok directly, the
// way a successful introspection does, without any HTTP. For tests that
// need many entries.
func insertAnswer(v *Verifier, tok string, r *accesstoken.Claims, now time.Time) {
	e := &entry{digest: *digestOf(tok), exp: instantOf(accesstoken.Time(r.Exp, r.HasExp)), nbf: instantOf(accesstoken.Time(r.Nbf, r.HasNbf))}
	e.setInfo(r, v.known)
	v.store(e, now, activeTTL(now, e.exp.Time(), v.cfg.CacheMaxTTL))
}
