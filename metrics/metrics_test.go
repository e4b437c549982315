package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-gateway/mcp-gateway/proxy"

	"github.com/mcp-gateway/mcp-gateway/introspect"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape = %d", rec.Code)
	}
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// TestNamesAndLabels checks every metric's name, type and label set
// against the exposition format.
func TestNamesAndLabels(t *testing.T) {
	m := New(testLabels)
	m.HTTPRequest("/mcp", 200, 3*time.Millisecond)
	m.AuthOutcome("ok")
	m.IntrospectionCall("active", 20*time.Millisecond)
	m.CacheHit()
	m.CacheMiss()
	m.CacheEviction()
	m.StaleUse()
	m.Shed("rate")
	m.ToolCall("calculator", "add", "ok")

	tests := []struct {
		name string
		want string
	}{
		{"mcp_gateway_http_requests_total", `
# HELP mcp_gateway_http_requests_total HTTP requests served, by Echo route pattern and status code.
# TYPE mcp_gateway_http_requests_total counter
mcp_gateway_http_requests_total{code="200",route="/mcp"} 1
`},
		{"mcp_gateway_cache_lookups_total", `
# HELP mcp_gateway_cache_lookups_total Introspection cache lookups, by result.
# TYPE mcp_gateway_cache_lookups_total counter
mcp_gateway_cache_lookups_total{result="hit"} 1
mcp_gateway_cache_lookups_total{result="miss"} 1
`},
		{"mcp_gateway_cache_evictions_total", `
# HELP mcp_gateway_cache_evictions_total Introspection cache entries dropped for capacity or at their TTL.
# TYPE mcp_gateway_cache_evictions_total counter
mcp_gateway_cache_evictions_total 1
`},
		{"mcp_gateway_cache_stale_uses_total", `
# HELP mcp_gateway_cache_stale_uses_total Expired cached answers served because the authorization server was failing.
# TYPE mcp_gateway_cache_stale_uses_total counter
mcp_gateway_cache_stale_uses_total 1
`},
		{"mcp_gateway_tool_calls_total", `
# HELP mcp_gateway_tool_calls_total MCP tools/call requests, by tool, the value of the argument the policy reads (operation) and outcome (forwarded: sent to the upstream in proxy mode).
# TYPE mcp_gateway_tool_calls_total counter
mcp_gateway_tool_calls_total{operation="add",outcome="ok",tool="calculator"} 1
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(tt.want), tt.name); err != nil {
				t.Error(err)
			}
		})
	}

	// Every family exists with the expected type and label names.
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		typ    string
		labels string
	}
	want := map[string]shape{
		"mcp_gateway_http_requests_total":            {"COUNTER", "code,route"},
		"mcp_gateway_http_request_duration_seconds":  {"HISTOGRAM", "route"},
		"mcp_gateway_auth_outcomes_total":            {"COUNTER", "reason"},
		"mcp_gateway_introspection_calls_total":      {"COUNTER", "outcome"},
		"mcp_gateway_introspection_duration_seconds": {"HISTOGRAM", ""},
		"mcp_gateway_cache_lookups_total":            {"COUNTER", "result"},
		"mcp_gateway_cache_evictions_total":          {"COUNTER", ""},
		"mcp_gateway_cache_stale_uses_total":         {"COUNTER", ""},
		"mcp_gateway_introspection_shed_total":       {"COUNTER", "reason"},
		"mcp_gateway_tool_calls_total":               {"COUNTER", "operation,outcome,tool"},
		"go_goroutines":                              {"GAUGE", ""},
		"process_start_time_seconds":                 {"GAUGE", ""},
	}
	seen := map[string]bool{}
	for _, f := range families {
		w, ok := want[f.GetName()]
		if !ok {
			continue
		}
		seen[f.GetName()] = true
		if got := f.GetType().String(); got != w.typ {
			t.Errorf("%s: type %s, want %s", f.GetName(), got, w.typ)
		}
		for _, metric := range f.GetMetric() {
			var names []string
			for _, lp := range metric.GetLabel() {
				names = append(names, lp.GetName())
			}
			if got := strings.Join(names, ","); got != w.labels {
				t.Errorf("%s: labels %q, want %q", f.GetName(), got, w.labels)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			// process collector is unavailable on some platforms.
			if strings.HasPrefix(name, "process_") {
				continue
			}
			t.Errorf("family %s missing", name)
		}
	}
}

func TestClamping(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *Metrics)
		metric string // family name
		labels []string
	}{
		{"auth known", func(m *Metrics) { m.AuthOutcome("insufficient_scope") }, "auth", []string{"insufficient_scope"}},
		{"auth unknown", func(m *Metrics) { m.AuthOutcome("not_yet_valid") }, "auth", []string{"other"}},
		{"auth token-like", func(m *Metrics) { m.AuthOutcome("eyJhbGciOi") }, "auth", []string{"other"}},
		{"auth empty", func(m *Metrics) { m.AuthOutcome("") }, "auth", []string{"other"}},
		{"tool known", func(m *Metrics) { m.ToolCall("calculator", "divide", "tool_error") }, "tool", []string{"calculator", "divide", "tool_error"}},
		{"tool unknown name", func(m *Metrics) { m.ToolCall("eval", "divide", "ok") }, "tool", []string{"other", "divide", "ok"}},
		{"tool no operation", func(m *Metrics) { m.ToolCall("whoami", "", "ok") }, "tool", []string{"whoami", "none", "ok"}},
		{"tool none operation", func(m *Metrics) { m.ToolCall("whoami", "none", "ok") }, "tool", []string{"whoami", "none", "ok"}},
		{"tool unknown op", func(m *Metrics) { m.ToolCall("calculator", "modulo", "protocol_error") }, "tool", []string{"calculator", "other", "protocol_error"}},
		{"tool unknown outcome", func(m *Metrics) { m.ToolCall("calculator", "add", "weird") }, "tool", []string{"calculator", "add", "other"}},
		{"intro unknown", func(m *Metrics) { m.IntrospectionCall("teapot", time.Second) }, "intro", []string{"other"}},
		{"intro known", func(m *Metrics) { m.IntrospectionCall("timeout", time.Second) }, "intro", []string{"timeout"}},
		{"shed unknown", func(m *Metrics) { m.Shed("cpu") }, "shed", []string{"other"}},
		{"shed known", func(m *Metrics) { m.Shed("concurrency") }, "shed", []string{"concurrency"}},
		{"route empty", func(m *Metrics) { m.HTTPRequest("", 404, 0) }, "http", []string{"unmatched", "404"}},
		{"route raw-looking", func(m *Metrics) { m.HTTPRequest("nope?x=1", 404, 0) }, "http", []string{"unmatched", "404"}},
		{"status out of range", func(m *Metrics) { m.HTTPRequest("/mcp", 999, 0) }, "http", []string{"/mcp", "other"}},
		{"status zero", func(m *Metrics) { m.HTTPRequest("/mcp", 0, 0) }, "http", []string{"/mcp", "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(testLabels)
			tt.record(m)
			var got float64
			switch tt.metric {
			case "auth":
				got = testutil.ToFloat64(m.authOutcomes.WithLabelValues(tt.labels...))
			case "tool":
				got = testutil.ToFloat64(m.toolCalls.WithLabelValues(tt.labels...))
			case "intro":
				got = testutil.ToFloat64(m.introCalls.WithLabelValues(tt.labels...))
			case "shed":
				got = testutil.ToFloat64(m.shed.WithLabelValues(tt.labels...))
			case "http":
				got = testutil.ToFloat64(m.httpRequests.WithLabelValues(tt.labels...))
			}
			if got != 1 {
				t.Errorf("%s%q = %v, want 1", tt.metric, tt.labels, got)
			}
		})
	}
}

func TestSeriesAreBounded(t *testing.T) {
	m := New(testLabels)
	for i := range 1000 {
		m.HTTPRequest(fmt.Sprintf("/r%d", i), 200, 0)
		m.AuthOutcome(fmt.Sprintf("reason-%d", i))
		m.ToolCall(fmt.Sprintf("t%d", i), fmt.Sprintf("o%d", i), fmt.Sprintf("x%d", i))
		m.Shed(introspect.ShedReason(fmt.Sprintf("s%d", i)))
		m.IntrospectionCall(introspect.Outcome(fmt.Sprintf("i%d", i)), 0)
	}
	checks := []struct {
		name string
		got  int
		max  int
	}{
		{"http_requests_total", testutil.CollectAndCount(m.httpRequests), maxRoutes + 1},
		{"http_request_duration_seconds", testutil.CollectAndCount(m.httpDuration), maxRoutes + 1},
		{"auth_outcomes_total", testutil.CollectAndCount(m.authOutcomes), len(m.authReasons)},
		{"tool_calls_total", testutil.CollectAndCount(m.toolCalls), 1},
		{"introspection_shed_total", testutil.CollectAndCount(m.shed), len(m.shedReasons)},
		{"introspection_calls_total", testutil.CollectAndCount(m.introCalls), len(m.introspectionOutcomes)},
	}
	for _, c := range checks {
		if c.got > c.max {
			t.Errorf("%s has %d series, want at most %d", c.name, c.got, c.max)
		}
	}
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues(Other, "200")); got != 1000-maxRoutes {
		t.Errorf("overflow routes counted as other = %v, want %d", got, 1000-maxRoutes)
	}
}

// TestNilSafe: a nil *Metrics does nothing and does not panic.
func TestNilSafe(t *testing.T) {
	var m *Metrics
	m.HTTPRequest("/mcp", 200, time.Second)
	m.AuthOutcome("ok")
	m.ToolCall("calculator", "add", "ok")
	m.IntrospectionCall("active", time.Second)
	m.CacheHit()
	m.CacheMiss()
	m.CacheEviction()
	m.StaleUse()
	m.Shed("rate")
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics handler = %d, want 404", rec.Code)
	}
}

// TestIndependentRegistries: two instances do not share state (no global
// registry), so tests and multiple gateways in one process work.
func TestIndependentRegistries(t *testing.T) {
	a, b := New(testLabels), New(testLabels)
	a.CacheHit()
	if got := testutil.ToFloat64(b.cacheHit); got != 0 {
		t.Errorf("second instance saw the first's hit: %v", got)
	}
	if got := testutil.ToFloat64(a.cacheHit); got != 1 {
		t.Errorf("hit = %v, want 1", got)
	}
}

// TestScrapeNeverContainsSecrets records every kind of event with token,
// subject and client-id strings passed wherever a caller could pass a
// string, and checks none of them reaches the exposition.
func TestScrapeNeverContainsSecrets(t *testing.T) {
	secrets := []string{"eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN", "user-SUBJECT-42", "client-ID-abc"}
	m := New(testLabels)
	for _, s := range secrets {
		m.HTTPRequest(s, 200, time.Millisecond)
		m.HTTPRequest("/"+s, 200, time.Millisecond) // a raw path mistaken for a route: still bounded, but…
		m.AuthOutcome(s)
		m.ToolCall(s, s, s)
		m.IntrospectionCall(introspect.Outcome(s), time.Millisecond)
		m.Shed(introspect.ShedReason(s))
	}
	out := scrape(t, m)
	for _, s := range secrets {
		// "/"+s is a syntactically valid route the caller chose to pass;
		// only the gateway's use of route patterns keeps raw paths out.
		// Everything else must be clamped.
		if strings.Contains(strings.ReplaceAll(out, `route="/`+s+`"`, ""), s) {
			t.Errorf("scrape contains %q outside a route label:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "mcp_gateway_auth_outcomes_total{reason=\"other\"} 3") {
		t.Errorf("secrets were not clamped to other:\n%s", grep(out, "auth_outcomes"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestConcurrentUse is for -race.
func TestConcurrentUse(t *testing.T) {
	m := New(testLabels)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				m.HTTPRequest(fmt.Sprintf("/r%d", (i*200+j)%100), 200, time.Millisecond)
				m.CacheHit()
				m.AuthOutcome("ok")
			}
		}()
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.cacheHit); got != 1600 {
		t.Errorf("hits = %v, want 1600", got)
	}
	if n := testutil.CollectAndCount(m.httpRequests); n > maxRoutes+1 {
		t.Errorf("%d route series, want at most %d", n, maxRoutes+1)
	}
}

func BenchmarkHTTPRequest(b *testing.B) {
	m := New(testLabels)
	b.ReportAllocs()
	for b.Loop() {
		m.HTTPRequest("/mcp", 200, time.Millisecond)
	}
}

// testLabels stands for the vocabularies the gateway passes (the gateway
// package cannot be imported here: it imports this one). The gateway's own
// tests check that its real label sets reach the metrics.
var testLabels = Labels{
	AuthOutcomes: []string{"ok", "missing", "malformed", "inactive", "expired", "insufficient_scope", "unavailable", "rate_limited"},
	Tools:        []string{"calculator", "whoami"},
	Operations:   []string{"add", "subtract", "multiply", "divide"},
}

// TestUpstreamMetrics: the proxy-mode metrics exist only once
// ObserveUpstream registers them (from zero for every failure kind), the
// gauges read the proxy's stats at scrape time, and a failure outside the
// known kinds counts as "other".
func TestUpstreamMetrics(t *testing.T) {
	m := New(testLabels)
	if strings.Contains(scrape(t, m), "upstream_") {
		t.Fatal("upstream metrics before ObserveUpstream")
	}
	stats := proxy.Stats{Sessions: 3, Streams: 2}
	m.ObserveUpstream(func() proxy.Stats { return stats })
	m.ObserveUpstream(func() proxy.Stats { return proxy.Stats{} }) // a second call does nothing
	m.UpstreamFailure(proxy.FailureTimeout)
	m.UpstreamFailure(proxy.FailureTimeout)
	m.UpstreamFailure("made-up")
	want := `
# HELP mcp_gateway_upstream_sessions Proxy mode: upstream sessions bound to callers (and initializations in flight).
# TYPE mcp_gateway_upstream_sessions gauge
mcp_gateway_upstream_sessions 3
# HELP mcp_gateway_upstream_streams Proxy mode: event streams open to the upstream.
# TYPE mcp_gateway_upstream_streams gauge
mcp_gateway_upstream_streams 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "mcp_gateway_upstream_sessions", "mcp_gateway_upstream_streams"); err != nil {
		t.Error(err)
	}
	text := scrape(t, m)
	for _, k := range proxy.AllFailures() {
		n := "0"
		if k == proxy.FailureTimeout {
			n = "2"
		}
		if line := `mcp_gateway_upstream_failures_total{kind="` + string(k) + `"} ` + n; !strings.Contains(text, line) {
			t.Errorf("lacks %s", line)
		}
	}
	if !strings.Contains(text, `mcp_gateway_upstream_failures_total{kind="other"} 1`) {
		t.Error("an unknown kind is not counted as other")
	}
	stats.Sessions = 5
	if !strings.Contains(scrape(t, m), "mcp_gateway_upstream_sessions 5") {
		t.Error("the gauge is not read at scrape time")
	}
	var nilM *Metrics
	nilM.ObserveUpstream(func() proxy.Stats { return stats })
	nilM.UpstreamFailure(proxy.FailureTimeout)
}
