package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// TestMain lets this test binary be the bench's child servers as well: the
// bench starts os.Executable(), which under go test is this binary.
func TestMain(m *testing.M) {
	serveChildIfAsked()
	os.Exit(m.Run())
}

// TestQuickRun runs the whole benchmark in quick mode with tiny phases, so
// that the harness keeps compiling and working with the packages it
// measures. It checks that every target produced a row without a harness
// error, and that the exact-count targets (coalescing, one introspection
// per token) are met. Timing targets mean nothing in a few hundred
// milliseconds on a shared machine and are only logged, as is the memory
// target unless BENCH_STRICT=1, which makes every enforced target count.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and sends a few thousand requests")
	}
	o := options{
		Duration:      300 * time.Millisecond,
		Conns:         8,
		Rounds:        1,
		Quick:         true,
		SkipGoTest:    true,
		SkipCold:      true,
		BurstSize:     100,
		BurstLatency:  20 * time.Millisecond,
		HostileLat:    20 * time.Millisecond,
		HostileRounds: 2,
		LowConns:      2,
		MemTokens:     2000,
		BoundMaxBytes: 512 << 10,
		ColdRuns:      1,
		Pin:           true,
		Verbose:       true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	ok, rows, err := run(ctx, o, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]row{}
	for _, r := range rows {
		got[r.ID] = r
		if strings.HasPrefix(r.Measured, "error:") {
			t.Errorf("target %q: %s", r.Target, r.Measured)
		}
	}
	for _, id := range []string{"1a", "1b", "1b'", "1c", "2", "3a", "3b", "4a", "4b", "4c", "4f", "4s", "4h", "4'a", "4'f", "4's", "5a", "5b", "6", "7a", "7f", "9a", "9f", "9b", "9g", "9c"} {
		if _, ok := got[id]; !ok {
			t.Errorf("no row %s in the table", id)
		}
	}
	// 1c (introspections of the hot token) is only logged here: in a
	// tiny quick run its count says little; the full run enforces it.
	if r := got["1c"]; r.Verdict != met {
		t.Logf("1c %s: %s", r.Target, r.Measured)
	}
	// Target 8 needs redis-server. Its count (8c) is only logged here: it
	// is exact only while Redis answers within REDIS_TIMEOUT (50 ms),
	// which a race-instrumented run on a busy machine does not promise
	// (a late Redis call is skipped and the machine introspects alone, by
	// design); the full run enforces it.
	if r, ok := got["8c"]; ok && r.Verdict != met {
		t.Logf("8c %s: %s", r.Target, r.Measured)
	}
	if r, ok := got["8"]; ok {
		t.Logf("8 %s: %s", r.Target, r.Measured)
	} else {
		for _, id := range []string{"8a", "8b", "8c"} {
			if _, ok := got[id]; !ok {
				t.Errorf("no row %s in the table", id)
			}
		}
	}
	// Every answer of target 7 must be a correct result, from the gateway
	// and from its floor (which checks each new token's signature itself),
	// and so must every answer through the proxies of row 9d (present on
	// two-CPU machines only).
	for _, id := range []string{"7a", "7f", "9d"} {
		if r, ok := got[id]; ok && !strings.Contains(r.Measured, "errors 0;") {
			t.Errorf("%s %s: %s, want no errors", id, r.Target, r.Measured)
		}
	}
	for _, id := range []string{"3a", "3b", "4c", "4'c"} {
		if r, ok := got[id]; ok && r.Verdict != met {
			t.Errorf("%s %s: %s, want %s", id, r.Target, r.Measured, r.Goal)
		}
	}
	if os.Getenv("BENCH_STRICT") != "" && !ok {
		t.Error("some enforced targets are not met (BENCH_STRICT)")
	}
}

// The bench measures the collector settings production deploys with.
func TestGCSettingsMatchFlyToml(t *testing.T) {
	b, err := os.ReadFile("../fly.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`GOGC = "` + prodGOGC + `"`, `GOMEMLIMIT = "` + prodGOMEMLIMIT + `"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("fly.toml has no %s: the bench would not measure what is deployed", want)
		}
	}
}

// The bench wires its servers by hand from constants (it cannot import
// package main); they must be the defaults .env.example documents.
func TestDefaultsMatchEnvExample(t *testing.T) {
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	for key, want := range map[string]string{
		"CLOCK_SKEW":                    defClockSkew.String(),
		"INTROSPECTION_TIMEOUT":         defIntrospectTO.String(),
		"CACHE_MAX_TTL":                 defCacheMaxTTL.String(),
		"CACHE_NEGATIVE_TTL":            defCacheNegativeTTL.String(),
		"MCP_SESSION_TIMEOUT":           defSessionTimeout.String(),
		"CACHE_MAX_BYTES":               strconv.FormatInt(defCacheMaxBytes, 10),
		"MAX_BODY_BYTES":                strconv.FormatInt(defMaxBodyBytes, 10),
		"INTROSPECTION_MAX_CONCURRENCY": strconv.Itoa(introspect.DefaultMaxConcurrency),
		"REDIS_TIMEOUT":                 sharedcache.DefaultTimeout.String(),
	} {
		got, ok := env[key]
		if !ok {
			t.Errorf(".env.example has no %s", key)
			continue
		}
		if gd, err1 := time.ParseDuration(got); err1 == nil {
			if wd, err2 := time.ParseDuration(want); err2 == nil && gd == wd {
				continue
			}
		}
		if got != want {
			t.Errorf(".env.example %s=%s, the bench uses %s", key, got, want)
		}
	}
}

// TestLatenessLearnsTimerDelay checks the fake AS's timer-lateness
// estimate, which makes it answer after its configured latency on average:
// it converges to a steady lateness, ignores early wake-ups, and one
// hypervisor-sized delay moves it by at most maxLateSample/16.
func TestLatenessLearnsTimerDelay(t *testing.T) {
	var l lateness
	for range 200 {
		l.observe(600 * time.Microsecond)
	}
	if got := l.estimate(); got < 590*time.Microsecond || got > 600*time.Microsecond {
		t.Fatalf("after 200 samples of 600µs the estimate is %v, want ~600µs", got)
	}
	before := l.estimate()
	l.observe(50 * time.Millisecond) // CPU steal, not timer lateness
	if got, limit := l.estimate(), before+(maxLateSample-before)/16+time.Nanosecond; got > limit {
		t.Errorf("one 50ms sample moved the estimate from %v to %v, want at most %v", before, got, limit)
	}
	var early lateness
	for range 100 {
		early.observe(-time.Millisecond)
	}
	if got := early.estimate(); got != 0 {
		t.Errorf("early wake-ups gave an estimate of %v, want 0", got)
	}
}

// TestSplitCPUs: the server gets the larger half, and from three CPUs on
// a proxy gets one no other process of the bench runs on.
func TestSplitCPUs(t *testing.T) {
	for _, tt := range []struct {
		cpus                  []int
		driver, proxy, server []int
	}{
		{[]int{0, 1}, []int{0}, []int{0}, []int{1}},
		{[]int{0, 1, 2}, []int{0}, []int{1}, []int{2}},
		{[]int{0, 1, 2, 3}, []int{0}, []int{1}, []int{2, 3}},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, []int{0, 1, 2}, []int{3}, []int{4, 5, 6, 7}},
	} {
		p := splitCPUs(tt.cpus)
		if !slices.Equal(p.Driver, tt.driver) || !slices.Equal(p.Proxy, tt.proxy) || !slices.Equal(p.Server, tt.server) || !p.Pinned {
			t.Errorf("%v: driver %v proxy %v server %v, want %v %v %v", tt.cpus, p.Driver, p.Proxy, p.Server, tt.driver, tt.proxy, tt.server)
		}
	}
}

func TestJWTRatiosBracketEachNewPhase(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hot, new []float64
		want     []float64
	}{
		{"steady", []float64{100, 100, 100}, []float64{80, 80}, []float64{0.8, 0.8}},
		// A hot throughput that falls as the cache grows must not count
		// against the new phase between two hot ones.
		{"drift", []float64{110, 90, 70}, []float64{80, 64}, []float64{0.8, 0.8}},
		{"no hot phase after the last new one", []float64{100}, []float64{80}, []float64{}},
		{"a hot phase that answered nothing", []float64{0, 0}, []float64{80}, []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := jwtPhases{hot: tc.hot, new: tc.new}
			checkRatios(t, "ratios()", p.ratios(), tc.want)
		})
	}
}

func TestJWTCPURatiosAreHotCostOverNewCost(t *testing.T) {
	for _, tc := range []struct {
		name           string
		hotCPU, newCPU []float64
		want           []float64
	}{
		{"steady", []float64{400, 400}, []float64{500}, []float64{0.8}},
		{"drift", []float64{380, 420, 460}, []float64{500, 550}, []float64{0.8, 0.8}},
		{"unknown", []float64{0, 400}, []float64{500}, []float64{}},
		{"new unknown", []float64{400, 400}, []float64{0}, []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := jwtPhases{hotCPU: tc.hotCPU, newCPU: tc.newCPU}
			checkRatios(t, "cpuRatios()", p.cpuRatios(), tc.want)
		})
	}
}

func checkRatios(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}
