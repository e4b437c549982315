package metrics

// Metrics of issue 15: the shared cache tier on Redis (call outcomes and
// latency, whether its circuit is open), answers taken from it, cached
// answers refused because of a revocation, revocations received and
// applied by source, and OpenID Shared Signals pushes by outcome. Every
// label set is given by the packages that own the vocabulary (through
// SharedLabels, as main builds them); anything else counts as Other.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-gateway/mcp-gateway/introspect"
)

// SSFAccepted is the outcome of an accepted Shared Signals push; a refused
// one is counted under its ssf.Reason.
const SSFAccepted = "accepted"

// SharedLabels are the label values of the shared tier's metrics.
type SharedLabels struct {
	// RedisOps and RedisOutcomes: redis_calls_total{op,outcome}
	// (sharedcache.AllOps, sharedcache.AllOutcomes).
	RedisOps, RedisOutcomes []string
	// RevocationSources and RevocationKinds: revocations_*_total{source,kind}
	// (revoke.AllSources, sharedcache.AllKinds).
	RevocationSources, RevocationKinds []string
	// SSFReasons: ssf_pushes_total{outcome} besides "accepted"
	// (ssf.AllReasons).
	SSFReasons []string
}

type sharedMetrics struct {
	redisCalls     *prometheus.CounterVec
	redisDuration  *prometheus.HistogramVec
	circuitOpen    prometheus.Gauge
	sharedAnswers  prometheus.Counter
	revokedAnswers *prometheus.CounterVec
	revReceived    *prometheus.CounterVec
	revApplied     *prometheus.CounterVec
	ssfPushes      *prometheus.CounterVec

	ops, outcomes, tiers, sources, kinds, ssfOutcomes []string
}

func newSharedMetrics(l SharedLabels) *sharedMetrics {
	s := &sharedMetrics{
		ops:         labelSet(l.RedisOps),
		outcomes:    labelSet(l.RedisOutcomes),
		tiers:       labelSet(introspect.AllCacheTiers()),
		sources:     labelSet(l.RevocationSources),
		kinds:       labelSet(l.RevocationKinds),
		ssfOutcomes: labelSet(append([]string{SSFAccepted}, l.SSFReasons...)),
		redisCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "redis_calls_total",
			Help: "Calls to the shared cache on Redis, by operation and outcome (skipped: the circuit is open).",
		}, []string{"op", "outcome"}),
		redisDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "redis_call_duration_seconds",
			Help:    "Duration of one call to the shared cache on Redis, by operation (skipped calls excluded).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		circuitOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "redis_circuit_open",
			Help: "1 while Redis is skipped after repeated failures (requests are then served by the in-process cache and the authorization server), else 0.",
		}),
		sharedAnswers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_shared_answers_total",
			Help: "In-process cache misses answered from the shared cache, without an introspection.",
		}),
		revokedAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_revoked_answers_total",
			Help: "Cached answers not used because a revocation applies to them, by cache tier.",
		}, []string{"tier"}),
		revReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "revocations_received_total",
			Help: "Revocations received, by source and kind (a machine also receives its own through Redis).",
		}, []string{"source", "kind"}),
		revApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "revocations_applied_total",
			Help: "Revocations newly applied on this machine, by source and kind.",
		}, []string{"source", "kind"}),
		ssfPushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "ssf_pushes_total",
			Help: "OpenID Shared Signals pushes (RFC 8935), by outcome: accepted, or why refused.",
		}, []string{"outcome"}),
	}
	presetSeries(s.revokedAnswers, s.tiers)
	presetSeries(s.revReceived, s.sources, s.kinds)
	presetSeries(s.revApplied, s.sources, s.kinds)
	presetSeries(s.ssfPushes, s.ssfOutcomes)
	return s
}

func (s *sharedMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.redisCalls, s.redisDuration, s.circuitOpen, s.sharedAnswers,
		s.revokedAnswers, s.revReceived, s.revApplied, s.ssfPushes}
}

// RedisCall records one call to Redis (a sharedcache.Observer's Call).
func (m *Metrics) RedisCall(op, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	s := m.shared
	op = clamp(op, s.ops)
	s.redisCalls.WithLabelValues(op, clamp(outcome, s.outcomes)).Inc()
	if d > 0 {
		s.redisDuration.WithLabelValues(op).Observe(d.Seconds())
	}
}

// RedisCircuit records the circuit in front of Redis opening or closing
// (a sharedcache.Observer's Circuit).
func (m *Metrics) RedisCircuit(open bool) {
	if m == nil {
		return
	}
	v := 0.0
	if open {
		v = 1
	}
	m.shared.circuitOpen.Set(v)
}

// SharedAnswer implements introspect.SharedObserver.
func (m *Metrics) SharedAnswer() {
	if m == nil {
		return
	}
	m.shared.sharedAnswers.Inc()
}

// RevokedAnswer implements introspect.SharedObserver.
func (m *Metrics) RevokedAnswer(tier introspect.CacheTier) {
	if m == nil {
		return
	}
	m.shared.revokedAnswers.WithLabelValues(clamp(string(tier), m.shared.tiers)).Inc()
}

// Revocation records one revocation received from source, of kind, and
// whether it was newly applied (a revoke.Observer's Revocation).
func (m *Metrics) Revocation(source, kind string, applied bool) {
	if m == nil {
		return
	}
	s := m.shared
	source, kind = clamp(source, s.sources), clamp(kind, s.kinds)
	s.revReceived.WithLabelValues(source, kind).Inc()
	if applied {
		s.revApplied.WithLabelValues(source, kind).Inc()
	}
}

// SSFPush records one Shared Signals push: "" (or SSFAccepted) for an
// accepted SET, else the ssf.Reason it was refused for.
func (m *Metrics) SSFPush(reason string) {
	if m == nil {
		return
	}
	if reason == "" {
		reason = SSFAccepted
	}
	m.shared.ssfPushes.WithLabelValues(clamp(reason, m.shared.ssfOutcomes)).Inc()
}

var _ introspect.SharedObserver = (*Metrics)(nil)
