package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
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
	o   options
	out io.Writer

	as       *fakeAS
	baseline *server
	gw       *gatewayServer

	ns   string       // per-run token namespace: tokens are never seen before
	next atomic.Int64 // token counter

	rows []row
}

func newBench(ctx context.Context, o options, out io.Writer) (*bench, error) {
	var nsb [4]byte
	_, _ = rand.Read(nsb[:])
	b := &bench{o: o, out: out, ns: hex.EncodeToString(nsb[:])}

	gwLn, gwPort, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	resource := "http://127.0.0.1:" + strconv.Itoa(gwPort) + "/mcp"
	b.as, err = newFakeAS(resource)
	if err != nil {
		gwLn.Close()
		return nil, err
	}
	baseLn, _, err := listenLoopback()
	if err != nil {
		gwLn.Close()
		b.as.Close()
		return nil, err
	}
	b.baseline, err = startBaseline(baseLn)
	if err != nil {
		gwLn.Close()
		b.as.Close()
		return nil, err
	}
	b.gw, err = startGateway(ctx, gwLn, resource, b.as.URL)
	if err != nil {
		b.baseline.Close()
		b.as.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return b, nil
}

func (b *bench) Close() {
	b.gw.Close()
	b.baseline.Close()
	b.as.Close()
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

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// gcNow starts a phase from a collected heap, so that one phase's garbage
// is not collected on the next one's time.
func gcNow() { runtime.GC() }

// --- target 1: hot path -------------------------------------------------

func (b *bench) hotPath(ctx context.Context) error {
	fmt.Fprintf(b.out, "[1] hot path: tools/call calculator add, one cached token, %d conns, %v per phase, %d round(s) ABAB\n", b.o.Conns, b.o.Duration, b.o.Rounds)
	tok := b.token()
	src := loadgen.Static(tok)
	baseClient := loadgen.NewClient(b.o.Conns)
	gwClient := loadgen.NewClient(b.o.Conns)
	defer baseClient.CloseIdleConnections()
	defer gwClient.CloseIdleConnections()
	warm := min(time.Second, max(b.o.Duration/5, 100*time.Millisecond))

	phase := func(name, url string, c *http.Client, profile string) (*loadgen.Result, error) {
		// Warm-up: connections, the token's cache entry, GC pacing.
		if _, err := loadgen.Run(ctx, loadgen.Config{URL: url, Connections: b.o.Conns, Duration: warm, Token: src, Client: c}); err != nil {
			return nil, err
		}
		gcNow()
		if profile != "" {
			f, err := os.Create(profile)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return nil, err
			}
			defer pprof.StopCPUProfile()
		}
		res, err := loadgen.Run(ctx, loadgen.Config{URL: url, Connections: b.o.Conns, Duration: b.o.Duration, Token: src, Client: c})
		if err != nil {
			return nil, err
		}
		b.logf("%-8s %s", name, res)
		for _, s := range res.ErrorSamples {
			b.logf("         error: %s", s)
		}
		return res, nil
	}

	callsBefore := b.as.Calls()
	var base, gw []*loadgen.Result
	for r := 0; r < b.o.Rounds; r++ {
		bp, gp := "", ""
		if r == 0 {
			bp, gp = b.o.CPUProfileBaseline, b.o.CPUProfile
		}
		res, err := phase("baseline", b.baseline.URL, baseClient, bp)
		if err != nil {
			return err
		}
		base = append(base, res)
		res, err = phase("gateway", b.gw.URL, gwClient, gp)
		if err != nil {
			return err
		}
		gw = append(gw, res)
	}
	introspections := b.as.Calls() - callsBefore

	bestRPS := func(rs []*loadgen.Result) (best float64, errs int) {
		for _, r := range rs {
			best = max(best, r.RPS())
			errs += r.Errors
		}
		return
	}
	bestP := func(rs []*loadgen.Result, p float64) time.Duration {
		var best time.Duration
		for i, r := range rs {
			if v := r.Percentile(p); i == 0 || v < best {
				best = v
			}
		}
		return best
	}
	bRPS, bErr := bestRPS(base)
	gRPS, gErr := bestRPS(gw)
	// The verdict uses the median over rounds of the paired ratio (each
	// gateway phase against the baseline phase just before it): on a
	// shared machine, noise drifts over seconds, and neighbouring phases
	// see the same drift. Best-of figures are printed for reference.
	var ratios []float64
	var dp99 []time.Duration
	for i := range base {
		if base[i].RPS() > 0 {
			ratios = append(ratios, gw[i].RPS()/base[i].RPS())
		}
		dp99 = append(dp99, gw[i].Percentile(99)-base[i].Percentile(99))
	}
	ratio := medianF(ratios)
	slices.Sort(dp99)
	medDP99 := dp99[len(dp99)/2]
	if len(dp99)%2 == 0 {
		medDP99 = (dp99[len(dp99)/2-1] + dp99[len(dp99)/2]) / 2
	}
	var rs []string
	for _, r := range ratios {
		rs = append(rs, fmt.Sprintf("%.2f", r))
	}
	b.add(row{ID: "1a", Target: "hot path throughput (gateway / baseline)",
		Measured: fmt.Sprintf("median %.3f of rounds [%s]; best %.0f / %.0f req/s; errors %d / %d", ratio, strings.Join(rs, " "), gRPS, bRPS, gErr, bErr),
		Goal:     ">= 0.95", Verdict: verdict(ratio >= 0.95 && gErr == 0 && bErr == 0), Enforced: b.enforceTiming()})
	bp99, gp99 := bestP(base, 99), bestP(gw, 99)
	b.add(row{ID: "1b", Target: "hot path p99 (gateway - baseline)",
		Measured: fmt.Sprintf("median %+.3fms of rounds; best p99 %s vs %s, best p50 %s vs %s", float64(medDP99)/1e6, ms(gp99), ms(bp99), ms(bestP(gw, 50)), ms(bestP(base, 50))),
		Goal:     "<= +0.2ms", Verdict: verdict(medDP99 <= 200*time.Microsecond), Enforced: b.enforceTiming()})
	b.add(row{ID: "1c", Target: "hot path introspection calls",
		Measured: strconv.FormatInt(introspections, 10), Goal: "1 (the token's first use)", Verdict: verdict(introspections == 1), Enforced: true})
	return nil
}
