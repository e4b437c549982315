package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mcp-gateway/mcp-gateway/bench/loadgen"
)

const (
	met    = "MET"
	notMet = "NOT MET"
	info   = "info"
)

type row struct {
	ID       string
	Target   string
	Measured string
	Goal     string
	Verdict  string
	// Enforced rows make the run fail when NOT MET.
	Enforced bool
}

type bench struct {
	o    options
	out  io.Writer
	plan cpuPlan

	as       *fakeAS
	baseline *child
	gw       *child
	null     *child // the cache-hostile floor
	sdkFloor *child // the cache-hostile floor of a gateway on the SDK
	jwtAS    *fakeJWTIssuer
	gwJWT    *child // the gateway with AUTH_ISSUER_URL alone: JWTs verified locally
	jwtFloor *child // target 7's floor: the baseline behind one crypto/rsa check per new token
	gwProxy  *child // the gateway in proxy mode, in front of the baseline, on cpuPlan.Proxy
	sidecar  *child // the same on the server CPUs, beside its upstream
	rpFloor  *child // the proxy floor: httputil.ReverseProxy alone, where gwProxy runs
	// Row 9d, on a machine whose proxy CPUs are the load generator's: a
	// light upstream on those, and a gateway in proxy mode and a proxy
	// floor in front of it on the server CPUs. nil otherwise.
	light, gwProxyOwn, rpFloorOwn *child

	ns   string       // per-run token namespace: tokens are never seen before
	next atomic.Int64 // token counter

	rows   []row
	steals []float64 // per timed phase, the most stolen CPU's steal %
}

func newBench(ctx context.Context, o options, out io.Writer) (_ *bench, err error) {
	var nsb [4]byte
	_, _ = rand.Read(nsb[:])
	b := &bench{o: o, out: out, ns: hex.EncodeToString(nsb[:]), plan: planCPUs(o.Pin)}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if b.plan.Pinned {
		if err := pinSelf(b.plan.Driver); err != nil {
			return nil, err
		}
		runtime.GOMAXPROCS(len(b.plan.Driver))
	}

	// The gateways' addresses are their resources, which the fake
	// authorization servers need first; their sockets stay open until the
	// gateways serve on them (serveOptions.Listener).
	gwAddr, gwLn, err := reserveLoopback()
	if err != nil {
		return nil, err
	}
	defer gwLn.Close() // startChild's copy, or nobody's if it was not reached
	resource := "http://" + gwAddr + "/mcp"
	if b.as, err = newFakeAS(resource); err != nil {
		return nil, err
	}
	jwtAddr, jwtLn, err := reserveLoopback()
	if err != nil {
		return nil, err
	}
	defer jwtLn.Close()
	if b.jwtAS, err = newFakeJWTIssuer("http://" + jwtAddr + "/mcp"); err != nil {
		return nil, err
	}
	if o.PhaseProfilesJWT != "" {
		if err := os.MkdirAll(o.PhaseProfilesJWT, 0o755); err != nil {
			return nil, err
		}
	}
	for _, s := range []struct {
		c    **child
		name string
		so   serveOptions
	}{
		{&b.baseline, "baseline", serveOptions{Kind: "baseline", CPUProfile: o.CPUProfileBaseline}},
		{&b.gw, "gateway", serveOptions{Kind: "gateway", Addr: gwAddr, Listener: gwLn, Issuer: b.as.URL, Resource: resource, CPUProfile: o.CPUProfile}},
		{&b.null, "null server", serveOptions{Kind: "null", Issuer: b.as.URL}},
		{&b.sdkFloor, "SDK floor", serveOptions{Kind: "sdkfloor", Issuer: b.as.URL}},
		{&b.gwJWT, "gateway (JWT)", serveOptions{Kind: "gatewayjwt", Addr: jwtAddr, Listener: jwtLn, Issuer: b.jwtAS.URL, Resource: b.jwtAS.audience, CPUProfile: o.CPUProfileJWT, PhaseProfiles: o.PhaseProfilesJWT}},
		{&b.jwtFloor, "JWT floor", serveOptions{Kind: "jwtfloor", Issuer: b.jwtAS.URL}},
	} {
		if *s.c, err = startChild(ctx, s.name, b.plan, s.so); err != nil {
			return nil, err
		}
	}
	// Proxy mode in front of the baseline, which is a Go SDK server child
	// called directly in the same run. They serve the gateway's resource
	// (so that the fake AS's tokens are for it) on addresses of their own.
	// One runs on CPUs other than its upstream's (cpuPlan.Proxy), as a
	// proxy on a machine of its own; the other beside its upstream, as a
	// sidecar sharing its CPU.
	proxySO := serveOptions{Kind: "gatewayproxy", Issuer: b.as.URL, Resource: resource, Upstream: b.baseline.URL}
	apart := b.plan
	apart.Server = b.plan.Proxy
	profiled := proxySO
	profiled.CPUProfile = o.CPUProfileProxy
	if b.gwProxy, err = startChild(ctx, "gateway (proxy mode)", apart, profiled); err != nil {
		return nil, err
	}
	if b.sidecar, err = startChild(ctx, "gateway (proxy mode, sidecar)", b.plan, proxySO); err != nil {
		return nil, err
	}
	if b.rpFloor, err = startChild(ctx, "proxy floor", apart, serveOptions{Kind: "proxyfloor", Upstream: b.baseline.URL}); err != nil {
		return nil, err
	}
	if b.plan.Pinned && slices.Equal(b.plan.Proxy, b.plan.Driver) {
		// Too few CPUs for a proxy of its own beside the load generator
		// and an SDK upstream (row 9d): the proxies get the server CPUs,
		// and their upstream is light enough to share the load
		// generator's.
		beside := b.plan
		beside.Server = b.plan.Driver
		if b.light, err = startChild(ctx, "light upstream", beside, serveOptions{Kind: "light"}); err != nil {
			return nil, err
		}
		if b.gwProxyOwn, err = startChild(ctx, "gateway (proxy mode, own CPU)", b.plan, serveOptions{Kind: "gatewayproxy", Issuer: b.as.URL, Resource: resource, Upstream: b.light.URL}); err != nil {
			return nil, err
		}
		if b.rpFloorOwn, err = startChild(ctx, "proxy floor (own CPU)", b.plan, serveOptions{Kind: "proxyfloor", Upstream: b.light.URL}); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *bench) Close() {
	for _, c := range []*child{b.gwProxy, b.sidecar, b.rpFloor, b.gwProxyOwn, b.rpFloorOwn, b.light, b.gw, b.baseline, b.null, b.sdkFloor, b.gwJWT, b.jwtFloor} {
		if c != nil {
			if err := c.Close(); err != nil {
				fmt.Fprintln(b.out, "bench:", err)
			}
		}
	}
	if b.as != nil {
		b.as.Close()
	}
	if b.jwtAS != nil {
		b.jwtAS.Close()
	}
}

// token returns a valid token nobody has presented before. Its shape is a
// typical opaque access token's: 46 characters.
func (b *bench) token() string { return tokenAt(b.ns, b.next.Add(1)) }

func tokenAt(ns string, i int64) string {
	s := strconv.FormatInt(i, 10)
	return validPrefix + ns + "-" + strings.Repeat("0", max(0, 31-len(s))) + s
}

func (b *bench) add(r row) { b.rows = append(b.rows, r) }

// enforce says whether throughput- and timing-based targets fail the run.
func (b *bench) enforceTiming() bool { return !b.o.Quick }

func verdict(ok bool) string {
	if ok {
		return met
	}
	return notMet
}

func (b *bench) logf(format string, args ...any) {
	if b.o.Verbose {
		fmt.Fprintf(b.out, "  "+format+"\n", args...)
	}
}

func (b *bench) printTable() bool {
	if len(b.steals) > 0 {
		b.add(row{ID: "0", Target: "machine noise: CPU steal in the timed phases",
			Measured: fmt.Sprintf("median %.0f%%, max %.0f%% over %d phases", medianF(b.steals), slices.Max(b.steals), len(b.steals)),
			Goal:     "(report: time the hypervisor gave the CPUs to other guests)", Verdict: info})
	}
	allOK := true
	fmt.Fprintln(b.out)
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\ttarget\tmeasured\tgoal\tverdict")
	fmt.Fprintln(tw, "-\t------\t--------\t----\t-------")
	for _, r := range b.rows {
		v := r.Verdict
		if v == notMet && !r.Enforced {
			v += " (not enforced)"
		}
		if r.Verdict == notMet && r.Enforced {
			allOK = false
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Target, r.Measured, r.Goal, v)
	}
	tw.Flush()
	if allOK {
		fmt.Fprintln(b.out, "\nbench: all enforced targets met")
	} else {
		fmt.Fprintln(b.out, "\nbench: some enforced targets NOT MET")
	}
	return allOK
}

func rpsOf(rs []*loadgen.Result) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.RPS()
	}
	return v
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

// listF formats every value of v with format, space-separated.
func listF(v []float64, format string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// gcNow starts a phase from a collected heap, so that one phase's garbage
// is not collected on the next one's time.
func gcNow() { runtime.GC() }

// endpoint is one server a phase measures, with a client of its own so
// that no connection is shared between servers.
type endpoint struct {
	name   string
	url    string
	client *http.Client
}

// phase measures one endpoint for Duration: closed loop when rate is 0
// (after a warm-up for connections, the token's cache entry and GC
// pacing), else open loop at rate.
func (b *bench) phase(ctx context.Context, e endpoint, src loadgen.TokenSource, rate float64) (*loadgen.Result, error) {
	if rate == 0 {
		warm := min(time.Second, max(b.o.Duration/5, 100*time.Millisecond))
		if _, err := loadgen.Run(ctx, loadgen.Config{URL: e.url, Connections: b.o.Conns, Duration: warm, Token: src, Client: e.client}); err != nil {
			return nil, err
		}
	}
	gcNow()
	cpu0 := readCPUTimes()
	res, err := loadgen.Run(ctx, loadgen.Config{URL: e.url, Connections: b.o.Conns, Duration: b.o.Duration, Rate: rate, Token: src, Client: e.client})
	if err != nil {
		return nil, err
	}
	b.logf("%-14s %s; %s", e.name, res, b.phaseCPU(cpu0))
	b.logErrors(res)
	return res, nil
}

// logErrors logs the samples of wrong answers a phase kept.
func (b *bench) logErrors(r *loadgen.Result) {
	for _, s := range r.ErrorSamples {
		b.logf("         error: %s", s)
	}
}

// abRounds alternates phases of a and z, Rounds times (ABAB...): on a
// shared machine, noise drifts over seconds, and neighbouring phases see
// the same drift, so each phase of z is judged against the phase of a
// just before it.
func (b *bench) abRounds(ctx context.Context, a, z endpoint, src loadgen.TokenSource, rate float64) (as, zs []*loadgen.Result, errs int, err error) {
	res, errs, err := b.rotate(ctx, []endpoint{a, z}, src, rate)
	if err != nil {
		return nil, nil, 0, err
	}
	return res[0], res[1], errs, nil
}

// rotate measures each endpoint in turn, Rounds times (ABCABC...), and
// returns each endpoint's results by round: res[i][r] is endpoint i in
// round r, measured in the same few seconds as the others of round r.
func (b *bench) rotate(ctx context.Context, es []endpoint, src loadgen.TokenSource, rate float64) (res [][]*loadgen.Result, errs int, err error) {
	res = make([][]*loadgen.Result, len(es))
	for range b.o.Rounds {
		for i, e := range es {
			r, err := b.phase(ctx, e, src, rate)
			if err != nil {
				return nil, 0, err
			}
			res[i] = append(res[i], r)
			errs += r.Errors
		}
	}
	return res, errs, nil
}

// --- target 1: hot path -------------------------------------------------

func (b *bench) hotPath(ctx context.Context) error {
	fmt.Fprintf(b.out, "[1] hot path: tools/call calculator add, one cached token, %d conns, %v per phase, %d round(s) ABAB\n", b.o.Conns, b.o.Duration, b.o.Rounds)
	src := loadgen.Static(b.token())
	baseClient := loadgen.NewClient(b.o.Conns)
	gwClient := loadgen.NewClient(b.o.Conns)
	defer baseClient.CloseIdleConnections()
	defer gwClient.CloseIdleConnections()
	baseline := endpoint{"baseline", b.baseline.URL, baseClient}
	gateway := endpoint{"gateway", b.gw.URL, gwClient}
	rounds := func(rate float64) (base, gw []*loadgen.Result, errs int, err error) {
		return b.abRounds(ctx, baseline, gateway, src, rate)
	}

	callsBefore, hotStart := b.as.Calls(), time.Now()
	base, gw, errs, err := rounds(0)
	if err != nil {
		return err
	}
	ratios := perRound(base, gw, throughputRatio)
	ratio := medianF(ratios)
	b.add(row{ID: "1a", Target: "hot path throughput (gateway / baseline)",
		Measured: fmt.Sprintf("median %.3f of rounds [%s]; best %.0f / %.0f req/s; errors %d",
			ratio, listF(ratios, "%.2f"), slices.Max(rpsOf(gw)), slices.Max(rpsOf(base)), errs),
		Goal: ">= 0.95", Verdict: verdict(ratio >= 0.95 && errs == 0), Enforced: b.enforceTiming()})
	closed99 := perRound(base, gw, pDiff(99))
	b.add(row{ID: "1b'", Target: "  p99 in that closed loop (gateway - baseline)",
		Measured: fmt.Sprintf("median %+.3fms of rounds [%s]", medianF(closed99), listF(closed99, "%+.2f")),
		Goal:     "(report: at saturation latency is queue / throughput)", Verdict: info})

	// Latency is judged at a fixed offered load that both servers carry:
	// half the baseline's measured throughput, over the same connections,
	// open-loop (requests sent when due, latency counted from then).
	rate := math.Round(medianF(rpsOf(base)) / 2)
	if rate < 1 {
		return fmt.Errorf("baseline throughput too low to set a rate: %v", rpsOf(base))
	}
	fmt.Fprintf(b.out, "[1b] hot path latency at a fixed load: %.0f req/s (half the baseline's median throughput), %d conns, open loop, %d round(s)\n", rate, b.o.Conns, b.o.Rounds)
	base, gw, errs, err = rounds(rate)
	if err != nil {
		return err
	}
	d99 := perRound(base, gw, pDiff(99))
	b.add(row{ID: "1b", Target: fmt.Sprintf("hot path p99 at %.0f req/s (gateway - baseline)", rate),
		Measured: fmt.Sprintf("median %+.3fms of rounds [%s]; p50 %+.3fms; errors %d", medianF(d99), listF(d99, "%+.2f"), medianF(perRound(base, gw, pDiff(50))), errs),
		Goal:     "<= +0.2ms", Verdict: verdict(medianF(d99) <= 0.2 && errs == 0), Enforced: b.enforceTiming()})

	// The token's answer is reused for CACHE_MAX_TTL, then asked again:
	// one call at first use, and at most one more per CACHE_MAX_TTL since.
	introspections, elapsed := b.as.Calls()-callsBefore, time.Since(hotStart)
	wantCalls := 1 + int64(elapsed/defCacheMaxTTL)
	b.add(row{ID: "1c", Target: "hot path introspection calls",
		Measured: fmt.Sprintf("%d in %v", introspections, elapsed.Round(time.Second)),
		Goal:     fmt.Sprintf("1, plus at most 1 per CACHE_MAX_TTL (%v): <= %d", defCacheMaxTTL, wantCalls),
		Verdict:  verdict(introspections >= 1 && introspections <= wantCalls), Enforced: true})
	return nil
}

// perRound compares each round of the measured server with the same round
// of its reference (the baseline, or the upstream called directly).
func perRound(ref, got []*loadgen.Result, cmp func(ref, got *loadgen.Result) float64) []float64 {
	out := make([]float64, len(ref))
	for i := range ref {
		out[i] = cmp(ref[i], got[i])
	}
	return out
}

// throughputRatio is the measured server's requests per second over its
// reference's.
func throughputRatio(ref, got *loadgen.Result) float64 {
	if ref.RPS() == 0 {
		return 0
	}
	return got.RPS() / ref.RPS()
}

// pDiff is the measured server's q-th percentile latency minus its
// reference's, in ms.
func pDiff(q float64) func(ref, got *loadgen.Result) float64 {
	return func(ref, got *loadgen.Result) float64 { return float64(got.Percentile(q)-ref.Percentile(q)) / 1e6 }
}
