package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-gateway/mcp-gateway/introspect"
)

var sharedTestLabels = func() Labels {
	l := testLabels
	l.Shared = SharedLabels{
		RedisOps:          []string{"get", "set", "lock"},
		RedisOutcomes:     []string{"hit", "miss", "ok", "timeout", "skipped"},
		RevocationSources: []string{"admin", "ssf", "redis"},
		RevocationKinds:   []string{"token", "sub", "client_id", "email"},
		SSFReasons:        []string{"signature", "audience"},
	}
	return l
}()

func TestSharedMetrics(t *testing.T) {
	m := New(sharedTestLabels)
	m.RedisCall("get", "hit", 300*time.Microsecond)
	m.RedisCall("get", "skipped", 0)
	m.RedisCircuit(true)
	m.SharedAnswer()
	m.RevokedAnswer(introspect.TierShared)
	m.Revocation("admin", "sub", true)
	m.Revocation("redis", "sub", false)
	m.SSFPush("")
	m.SSFPush("signature")
	for name, want := range map[string]string{
		"mcp_gateway_redis_calls_total": `
# HELP mcp_gateway_redis_calls_total Calls to the shared cache on Redis, by operation and outcome (skipped: the circuit is open).
# TYPE mcp_gateway_redis_calls_total counter
mcp_gateway_redis_calls_total{op="get",outcome="hit"} 1
mcp_gateway_redis_calls_total{op="get",outcome="skipped"} 1
`,
		"mcp_gateway_redis_circuit_open": `
# HELP mcp_gateway_redis_circuit_open 1 while Redis is skipped after repeated failures (requests are then served by the in-process cache and the authorization server), else 0.
# TYPE mcp_gateway_redis_circuit_open gauge
mcp_gateway_redis_circuit_open 1
`,
		"mcp_gateway_cache_shared_answers_total": `
# HELP mcp_gateway_cache_shared_answers_total In-process cache misses answered from the shared cache, without an introspection.
# TYPE mcp_gateway_cache_shared_answers_total counter
mcp_gateway_cache_shared_answers_total 1
`,
	} {
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), name); err != nil {
			t.Error(err)
		}
	}
	s := m.shared
	if n := testutil.CollectAndCount(s.redisDuration); n != 1 {
		t.Errorf("a skipped call was timed: %d duration series", n)
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"revoked shared", testutil.ToFloat64(s.revokedAnswers.WithLabelValues("shared")), 1},
		{"received admin/sub", testutil.ToFloat64(s.revReceived.WithLabelValues("admin", "sub")), 1},
		{"applied admin/sub", testutil.ToFloat64(s.revApplied.WithLabelValues("admin", "sub")), 1},
		{"received redis/sub", testutil.ToFloat64(s.revReceived.WithLabelValues("redis", "sub")), 1},
		{"applied redis/sub", testutil.ToFloat64(s.revApplied.WithLabelValues("redis", "sub")), 0},
		{"ssf accepted", testutil.ToFloat64(s.ssfPushes.WithLabelValues("accepted")), 1},
		{"ssf signature", testutil.ToFloat64(s.ssfPushes.WithLabelValues("signature")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	m.RedisCircuit(false)
	if got := testutil.ToFloat64(s.circuitOpen); got != 0 {
		t.Errorf("circuit gauge = %v after closing", got)
	}
}

// Whatever a caller passes, the shared tier's series stay within their
// label sets.
func TestSharedMetricsBounded(t *testing.T) {
	m := New(sharedTestLabels)
	for i := range 500 {
		v := fmt.Sprint("user-SUBJECT-", i)
		m.RedisCall(v, v, time.Millisecond)
		m.RevokedAnswer(introspect.CacheTier(v))
		m.Revocation(v, v, true)
		m.SSFPush(v)
	}
	s := m.shared
	for _, c := range []struct {
		name     string
		got, max int
	}{
		{"redis_calls_total", testutil.CollectAndCount(s.redisCalls), 1},
		{"revoked_answers", testutil.CollectAndCount(s.revokedAnswers), len(s.tiers)},
		{"revocations_received", testutil.CollectAndCount(s.revReceived), len(s.sources) * len(s.kinds)},
		{"ssf_pushes", testutil.CollectAndCount(s.ssfPushes), len(s.ssfOutcomes)},
	} {
		if c.got > c.max {
			t.Errorf("%s has %d series, want at most %d", c.name, c.got, c.max)
		}
	}
	if strings.Contains(scrape(t, m), "SUBJECT") {
		t.Error("a caller's string reached the exposition")
	}
	var nilM *Metrics
	nilM.RedisCall("get", "hit", time.Millisecond)
	nilM.RedisCircuit(true)
	nilM.SharedAnswer()
	nilM.RevokedAnswer(introspect.TierLocal)
	nilM.Revocation("admin", "sub", true)
	nilM.SSFPush("")
}
