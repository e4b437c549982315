// Package metrics holds the gateway's Prometheus metrics: HTTP requests,
// authentication outcomes, introspection calls and cache behaviour (as an
// introspect.Observer), which validator decided (JWT or introspection),
// JWKS fetches, load shedding and MCP tool calls.
//
// Every label value is taken from a small fixed set, or clamped to one, so
// the number of series is bounded whatever clients send; nothing that
// identifies a token, a user or a client ever becomes a label. All methods
// are safe for concurrent use and do nothing on a nil *Metrics, so callers
// need no checks.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/jwks"
	"github.com/mcp-gateway/mcp-gateway/proxy"
)

const namespace = "mcp_gateway"

// Label values used when a caller passes something outside the known set.
const (
	// Unmatched is the route of a request no route matched (a 404).
	Unmatched = "unmatched"
	// Other replaces any label value outside its fixed set.
	Other = "other"
)

// maxRoutes bounds the distinct route label values. Routes are Echo route
// patterns, a handful per process; past this many, new ones count as Other.
const maxRoutes = 64

// Labels are the label values the metrics may carry, decided by the
// packages that own each vocabulary (the gateway's authentication outcomes,
// the tool policy's tool and operation names). Any other value a caller
// passes counts as Other, so the number of series is bounded.
type Labels struct {
	// AuthOutcomes are the values of auth_outcomes_total{reason}
	// (gateway.AllAuthOutcomes).
	AuthOutcomes []string
	// Tools and Operations are the values of tool_calls_total{tool} and
	// {operation}: the tools the policy names, and the values of the
	// argument a tool's scopes depend on (the calculator's operations).
	Tools, Operations []string
	// Shared are the label values of the shared tier's metrics (shared.go).
	Shared SharedLabels
}

// toolOutcomes are the values of tool_calls_total{outcome}: "forwarded"
// is a call proxy mode sent to the upstream, whose answer it does not
// read.
var toolOutcomes = []string{"ok", "tool_error", "protocol_error", "forwarded", Other}

// presetSeries creates every series of vec whose labels are one value of
// each set in order (all combinations), so that dashboards and alerts see
// zeros from the start rather than nothing.
func presetSeries(vec *prometheus.CounterVec, sets ...[]string) {
	var walk func(prefix []string)
	walk = func(prefix []string) {
		if len(prefix) == len(sets) {
			vec.WithLabelValues(prefix...)
			return
		}
		for _, v := range sets[len(prefix)] {
			walk(append(prefix, v))
		}
	}
	walk(make([]string, 0, len(sets)))
}

// labelSet is values plus Other, without duplicates.
func labelSet[S ~string](values []S) []string {
	out := make([]string, 0, len(values)+1)
	for _, v := range values {
		if !slices.Contains(out, string(v)) {
			out = append(out, string(v))
		}
	}
	if !slices.Contains(out, Other) {
		out = append(out, Other)
	}
	return out
}

// Metrics is the gateway's set of Prometheus metrics, on a registry of its
// own (never the global one).
type Metrics struct {
	registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	authOutcomes *prometheus.CounterVec
	introCalls   *prometheus.CounterVec
	introDur     prometheus.Histogram
	cacheLookups *prometheus.CounterVec
	cacheHit     prometheus.Counter
	cacheMiss    prometheus.Counter
	cacheEvicts  prometheus.Counter
	staleUses    prometheus.Counter
	shed         *prometheus.CounterVec
	toolCalls    *prometheus.CounterVec
	validations  *prometheus.CounterVec
	jwksFetches  *prometheus.CounterVec
	upstreamFail *prometheus.CounterVec // registered by ObserveUpstream
	upstreamOnce sync.Once

	authReasons, tools, operations []string
	introspectionOutcomes          []string
	shedReasons                    []string
	validators, jwksOutcomes       []string
	upstreamFailures               []string

	routesMu sync.RWMutex
	routes   map[string]struct{}

	shared *sharedMetrics // shared.go
}

var _ introspect.Observer = (*Metrics)(nil)

// New builds the metrics on a new registry, together with the Go runtime
// and process collectors, for the label values in labels.
func New(labels Labels) *Metrics {
	m := &Metrics{
		registry:              prometheus.NewRegistry(),
		routes:                make(map[string]struct{}),
		authReasons:           labelSet(labels.AuthOutcomes),
		tools:                 labelSet(labels.Tools),
		operations:            labelSet(append(slices.Clone(labels.Operations), none)),
		introspectionOutcomes: labelSet(introspect.AllOutcomes()),
		shedReasons:           labelSet(introspect.AllShedReasons()),
		validators:            labelSet(introspect.AllValidators()),
		jwksOutcomes:          labelSet(jwks.AllFetchOutcomes()),
		upstreamFailures:      labelSet(proxy.AllFailures()),
		upstreamFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "upstream_failures_total",
			Help: "Proxy mode: requests the upstream MCP server failed, by kind (the client got 502, 503 or 504).",
		}, []string{"kind"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by Echo route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by Echo route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		authOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "auth_outcomes_total",
			Help: "Authentication decisions on the MCP endpoint, by reason.",
		}, []string{"reason"}),
		introCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "introspection_calls_total",
			Help: "HTTP exchanges with the introspection endpoint, by outcome.",
		}, []string{"outcome"}),
		introDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "introspection_duration_seconds",
			Help:    "Duration of one exchange with the introspection endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_lookups_total",
			Help: "Introspection cache lookups, by result.",
		}, []string{"result"}),
		cacheEvicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_evictions_total",
			Help: "Introspection cache entries dropped for capacity or at their TTL.",
		}),
		staleUses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_stale_uses_total",
			Help: "Expired cached answers served because the authorization server was failing.",
		}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "introspection_shed_total",
			Help: "Introspections not attempted because of load shedding, by reason.",
		}, []string{"reason"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "token_validations_total",
			Help: "Tokens validated (cache misses decided), by validator (jwt: verified locally; introspection) and result (accepted, refused).",
		}, []string{"validator", "result"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jwks_fetches_total",
			Help: "Fetches of the issuer's JWKS, by outcome.",
		}, []string{"outcome"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tool_calls_total",
			Help: "MCP tools/call requests, by tool, the value of the argument the policy reads (operation) and outcome (forwarded: sent to the upstream in proxy mode).",
		}, []string{"tool", "operation", "outcome"}),
	}
	m.cacheHit = m.cacheLookups.WithLabelValues("hit")
	m.cacheMiss = m.cacheLookups.WithLabelValues("miss")
	presetSeries(m.authOutcomes, m.authReasons)
	presetSeries(m.introCalls, m.introspectionOutcomes)
	presetSeries(m.shed, m.shedReasons)
	presetSeries(m.validations, m.validators, []string{"accepted", "refused"})
	presetSeries(m.jwksFetches, m.jwksOutcomes)
	m.shared = newSharedMetrics(labels.Shared)
	m.registry.MustRegister(m.shared.collectors()...)
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.authOutcomes, m.introCalls, m.introDur,
		m.cacheLookups, m.cacheEvicts, m.staleUses, m.shed, m.toolCalls,
		m.validations, m.jwksFetches,
	)
	return m
}

// Registry is the registry the metrics are on, for tests and for adding
// collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.registry
}

// Handler serves the metrics in the Prometheus exposition format. On a nil
// *Metrics it answers 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// HTTPRequest records one served request. route is the router's route
// pattern, never the raw path; "" (no route matched) counts as
// "unmatched", and past a bounded number of distinct routes new ones count
// as "other".
func (m *Metrics) HTTPRequest(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	route = m.clampRoute(route)
	m.httpRequests.WithLabelValues(route, statusCode(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *Metrics) clampRoute(route string) string {
	if route == "" || route[0] != '/' {
		return Unmatched
	}
	m.routesMu.RLock()
	_, known := m.routes[route]
	n := len(m.routes)
	m.routesMu.RUnlock()
	if known {
		return route
	}
	if n >= maxRoutes {
		return Other
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	if _, known := m.routes[route]; known {
		return route
	}
	if len(m.routes) >= maxRoutes {
		return Other
	}
	m.routes[route] = struct{}{}
	return route
}

// statusCodes holds the decimal text of every valid status code, so the
// hot path does not format one.
var statusCodes = func() (s [600]string) {
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusCode(status int) string {
	if status < 100 || status >= len(statusCodes) {
		return Other
	}
	return statusCodes[status]
}

// AuthOutcome records one authentication decision: one of
// Labels.AuthOutcomes, anything else counts as "other".
func (m *Metrics) AuthOutcome(reason string) {
	if m == nil {
		return
	}
	m.authOutcomes.WithLabelValues(clamp(reason, m.authReasons)).Inc()
}

// none is the operation label of a tool call without an operation.
const none = "none"

// ToolCall records one MCP tools/call. tool is one of Labels.Tools;
// operation one of Labels.Operations, or "" / "none" for none; outcome is
// "ok", "tool_error" (an isError result) or "protocol_error" (a JSON-RPC
// error). Anything else counts as "other".
func (m *Metrics) ToolCall(tool, operation, outcome string) {
	if m == nil {
		return
	}
	if operation == "" {
		operation = none
	}
	m.toolCalls.WithLabelValues(clamp(tool, m.tools), clamp(operation, m.operations), clamp(outcome, toolOutcomes)).Inc()
}

// IntrospectionCall implements introspect.Observer.
func (m *Metrics) IntrospectionCall(outcome introspect.Outcome, d time.Duration) {
	if m == nil {
		return
	}
	m.introCalls.WithLabelValues(clamp(string(outcome), m.introspectionOutcomes)).Inc()
	m.introDur.Observe(d.Seconds())
}

// CacheHit implements introspect.Observer.
func (m *Metrics) CacheHit() {
	if m == nil {
		return
	}
	m.cacheHit.Inc()
}

// CacheMiss implements introspect.Observer.
func (m *Metrics) CacheMiss() {
	if m == nil {
		return
	}
	m.cacheMiss.Inc()
}

// CacheEviction implements introspect.Observer.
func (m *Metrics) CacheEviction() {
	if m == nil {
		return
	}
	m.cacheEvicts.Inc()
}

// StaleUse implements introspect.Observer.
func (m *Metrics) StaleUse() {
	if m == nil {
		return
	}
	m.staleUses.Inc()
}

// Shed implements introspect.Observer.
func (m *Metrics) Shed(reason introspect.ShedReason) {
	if m == nil {
		return
	}
	m.shed.WithLabelValues(clamp(string(reason), m.shedReasons)).Inc()
}

// Validation implements introspect.Observer.
func (m *Metrics) Validation(validator introspect.Validator, accepted bool) {
	if m == nil {
		return
	}
	result := "refused"
	if accepted {
		result = "accepted"
	}
	m.validations.WithLabelValues(clamp(string(validator), m.validators), result).Inc()
}

// JWKSFetch implements introspect.Observer (jwks.Observer).
func (m *Metrics) JWKSFetch(outcome jwks.FetchOutcome, _ time.Duration) {
	if m == nil {
		return
	}
	m.jwksFetches.WithLabelValues(clamp(string(outcome), m.jwksOutcomes)).Inc()
}

// clamp returns v when it is one of allowed, else Other.
func clamp(v string, allowed []string) string {
	for _, a := range allowed {
		if a == v {
			return v
		}
	}
	return Other
}

// UpstreamFailure implements proxy.Observer: one request the upstream MCP
// server failed, by kind.
func (m *Metrics) UpstreamFailure(kind proxy.Failure) {
	if m == nil {
		return
	}
	m.upstreamFail.WithLabelValues(clamp(string(kind), m.upstreamFailures)).Inc()
}

// ObserveUpstream registers the proxy-mode metrics: upstream failures by
// kind (every kind from zero), and the upstream sessions and streams in
// use, read from stats at each scrape. The built-in server's metrics have
// none of them. Calls after the first do nothing.
func (m *Metrics) ObserveUpstream(stats func() proxy.Stats) {
	if m == nil {
		return
	}
	m.upstreamOnce.Do(func() {
		presetSeries(m.upstreamFail, m.upstreamFailures)
		m.registry.MustRegister(m.upstreamFail,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: namespace, Name: "upstream_sessions",
				Help: "Proxy mode: upstream sessions bound to callers (and initializations in flight).",
			}, func() float64 { return float64(stats().Sessions) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: namespace, Name: "upstream_streams",
				Help: "Proxy mode: event streams open to the upstream.",
			}, func() float64 { return float64(stats().Streams) }),
		)
	})
}
