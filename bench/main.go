// Command bench measures the gateway's authentication layer against a
// baseline without it, in one run on one machine, and prints a table of the
// performance targets (issue 4) with MET / NOT MET.
//
//	go run ./bench                 # full run (5s per throughput phase)
//	go run ./bench -quick          # short run (CI runs TestQuickRun instead)
//	go run ./bench -cpuprofile gw.prof -cpuprofile-baseline base.prof
//
// Everything talks over loopback. The load generator and a fake
// authorization server run in this process; the servers under test (the
// baseline, which is the Go SDK handler alone, the gateway wired as main.go
// wires it, a null server and the SDK floor) run in child processes started from this
// binary, on CPUs of their own (see proc.go). The cold-start target builds
// and executes the real binary, and the cost-of-a-hit target runs the
// introspect and gateway packages' own Go benchmarks in `go test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"
)

type options struct {
	Duration   time.Duration
	Conns      int
	Rounds     int
	Quick      bool
	ReportOnly bool
	SkipGoTest bool
	SkipCold   bool

	BurstSize     int
	BurstLatency  time.Duration
	HostileLat    time.Duration
	HostileRounds int
	LowConns      int
	MemTokens     int
	BoundMaxBytes int64
	ColdRuns      int
	BenchTime     string

	Only string
	Pin  bool

	CPUProfile         string
	CPUProfileBaseline string
	CPUProfileProxy    string
	CPUProfileJWT      string
	PhaseProfilesJWT   string
	Verbose            bool
}

func main() {
	var o options
	flag.DurationVar(&o.Duration, "duration", 5*time.Second, "length of each measured throughput phase")
	flag.IntVar(&o.Conns, "conns", 32, "concurrent connections for the throughput phases")
	flag.IntVar(&o.Rounds, "rounds", 4, "baseline/gateway alternations (ABAB...) of the hot-path phase; the median paired ratio is judged")
	flag.BoolVar(&o.Quick, "quick", false, "short run (1s phases, fewer tokens); only exact-count and memory targets can fail")
	flag.BoolVar(&o.ReportOnly, "report-only", false, "exit 0 even when a target is not met")
	flag.BoolVar(&o.SkipGoTest, "skip-gotest", false, "do not run the introspect/gateway Go benchmarks (target 2)")
	flag.BoolVar(&o.SkipCold, "skip-coldstart", false, "do not build and start the real binary (target 6)")
	flag.IntVar(&o.BurstSize, "burst", 500, "requests in each coalescing burst (target 3)")
	flag.DurationVar(&o.BurstLatency, "burst-latency", 20*time.Millisecond, "authorization server latency during the bursts")
	flag.IntVar(&o.HostileRounds, "hostile-rounds", 3, "rounds of the cache-hostile phases (null server, SDK floor, gateway); the medians are judged")
	flag.DurationVar(&o.HostileLat, "hostile-latency", 20*time.Millisecond, "authorization server latency in the cache-hostile phase (target 4)")
	flag.IntVar(&o.LowConns, "hostile-low-conns", 4, "connections of the second, CPU-unsaturated cache-hostile phase (0 skips it)")
	flag.IntVar(&o.MemTokens, "mem-tokens", 100_000, "tokens cached for the memory target (target 5)")
	flag.Int64Var(&o.BoundMaxBytes, "bound-max-bytes", 8<<20, "CACHE_MAX_BYTES of the cache-bound check (target 5)")
	flag.IntVar(&o.ColdRuns, "cold-runs", 5, "cold starts measured (target 6); the median is judged")
	flag.StringVar(&o.BenchTime, "benchtime", "1s", "go test -benchtime for target 2")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the gateway child, from its start to its end")
	flag.StringVar(&o.CPUProfileBaseline, "cpuprofile-baseline", "", "write a CPU profile of the baseline child, from its start to its end")
	flag.StringVar(&o.CPUProfileJWT, "cpuprofile-jwt", "", "write a CPU profile of the JWT gateway child of target 7, from its start to its end")
	flag.StringVar(&o.PhaseProfilesJWT, "cpuprofile-jwt-phases", "", "write a CPU profile of the JWT gateway child for each phase of target 7 into this directory, in order: gatewayjwt-1.prof is the first hot-JWT phase (an empty cache), gatewayjwt-2.prof the first new-JWT phase, and so on")
	flag.StringVar(&o.CPUProfileProxy, "cpuprofile-proxy", "", "write a CPU profile of the proxy-mode gateway child of target 9 (9a, 9b), from its start to its end")
	flag.StringVar(&o.Only, "only", "", "comma-separated target numbers to run (e.g. 1,4); default all")
	flag.BoolVar(&o.Pin, "pin", true, "split the CPUs between the load generator and the server under test (Linux)")
	flag.BoolVar(&o.Verbose, "v", true, "print each phase's result as it finishes")
	serveChildIfAsked()
	flag.Parse()
	if o.Quick {
		setIfDefault := func(name string, f func()) {
			set := false
			flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
			if !set {
				f()
			}
		}
		setIfDefault("duration", func() { o.Duration = time.Second })
		setIfDefault("rounds", func() { o.Rounds = 1 })
		setIfDefault("hostile-rounds", func() { o.HostileRounds = 1 })
		setIfDefault("mem-tokens", func() { o.MemTokens = 10_000 })
		setIfDefault("bound-max-bytes", func() { o.BoundMaxBytes = 2 << 20 })
		setIfDefault("cold-runs", func() { o.ColdRuns = 2 })
		setIfDefault("benchtime", func() { o.BenchTime = "200ms" })
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ok, _, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if !ok && !o.ReportOnly {
		os.Exit(1)
	}
}

// run performs every phase and prints the table. ok is false when a target
// that is enforced in this mode is not met.
func run(ctx context.Context, o options, out io.Writer) (ok bool, rows []row, err error) {
	b, err := newBench(ctx, o, out)
	if err != nil {
		return false, nil, err
	}
	defer b.Close()

	gogc, memlimit := gcSettings()
	fmt.Fprintf(out, "bench: %s/%s %s, NumCPU=%d, conns=%d, duration=%v, rounds=%d, quick=%v\nbench: %s\nbench: servers run with GOGC=%s GOMEMLIMIT=%s\n",
		runtime.GOOS, runtime.GOARCH, runtime.Version(), runtime.NumCPU(), o.Conns, o.Duration, o.Rounds, o.Quick, b.plan, gogc, memlimit)

	steps := []struct {
		id   string
		name string
		f    func(context.Context) error
	}{
		{"1", "hot path", b.hotPath},
		{"2", "cost of a hit", b.goBench},
		{"3", "coalescing", b.coalescing},
		{"4", "cache-hostile", b.hostile},
		{"5", "memory", b.memory},
		{"6", "cold start", b.coldStart},
		{"8", "several machines", b.sharedTier},
		{"7", "JWT cache-hostile", b.jwtHostile},
		{"9", "proxy overhead", b.proxyOverhead},
	}
	only := map[string]bool{}
	for _, id := range strings.Split(o.Only, ",") {
		if id = strings.TrimSpace(id); id != "" {
			only[id] = true
		}
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return false, b.rows, err
		}
		if len(only) > 0 && !only[s.id] {
			continue
		}
		if err := s.f(ctx); err != nil {
			b.add(row{Target: s.name, Measured: "error: " + err.Error(), Goal: "-", Verdict: notMet, Enforced: true})
		}
	}
	ok = b.printTable()
	return ok, b.rows, nil
}
