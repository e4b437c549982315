package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
	"github.com/mcp-gateway/mcp-gateway/introspect"
)

// The servers under test run in child processes (this binary again),
// each confined to the CPUs the load generator does not use. A load
// generator that shares the server's cores measures itself: every request
// it makes takes CPU from the server it measures, and the two schedulers
// fight over the same cores, so that paired runs differ by ±20% for
// reasons that have nothing to do with the server. Splitting the machine
// is what a load test on separate hosts does, on one host.

// cpuPlan is how the machine's CPUs are shared out.
type cpuPlan struct {
	Driver []int // load generator and fake authorization server
	Server []int // the server under test (one at a time is measured)
	// Proxy is where a proxy in front of the server under test runs
	// (target 9): a CPU of its own when the machine has three or more,
	// as a proxy on its own host would have; with two, the load
	// generator's, whose time it then shares.
	Proxy  []int
	Pinned bool
	Why    string // why not pinned
}

// startAllCPUs starts cmd on every CPU of the plan, not only the load
// generator's it would inherit: for the go test benchmarks and the cold
// start, which are measured alone.
func (b *bench) startAllCPUs(cmd *exec.Cmd) error {
	if !b.plan.Pinned {
		return cmd.Start()
	}
	return startPinned(cmd, append(slices.Clone(b.plan.Driver), b.plan.Server...))
}

func planCPUs(pin bool) cpuPlan {
	cpus, err := allowedCPUs()
	switch {
	case !pin:
		return cpuPlan{Why: "-pin=false"}
	case err != nil:
		return cpuPlan{Why: err.Error()}
	case len(cpus) < 2:
		return cpuPlan{Why: fmt.Sprintf("only %d CPU", len(cpus))}
	}
	return splitCPUs(cpus)
}

// splitCPUs shares out cpus (at least two). The server gets the larger
// half: it is what is measured, and the load generator needs far less CPU
// per request than the MCP handler. From three CPUs on, the proxy gets
// one of its own, taken from the load generator's half.
func splitCPUs(cpus []int) cpuPlan {
	n := len(cpus) / 2
	p := cpuPlan{Driver: cpus[:n], Server: cpus[n:], Proxy: cpus[:n], Pinned: true}
	if len(cpus) >= 3 {
		d := max(1, (len(cpus)-1)/2)
		p.Driver, p.Proxy, p.Server = cpus[:d], cpus[d:d+1], cpus[d+1:]
	}
	return p
}

func (p cpuPlan) String() string {
	if !p.Pinned {
		return "not pinned (" + p.Why + "): load generator and servers share every CPU"
	}
	return fmt.Sprintf("load generator + fake AS on CPU %s (GOMAXPROCS %d); server under test on CPU %s (GOMAXPROCS %d); a proxy in front of it on CPU %s",
		cpuList(p.Driver), len(p.Driver), cpuList(p.Server), len(p.Server), cpuList(p.Proxy))
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// child is a server under test running in its own process.
type child struct {
	Name   string
	URL    string // MCP endpoint
	cmd    *exec.Cmd
	exited chan error
	stderr syncbuf.Buffer
}

// serveOptions say what a child serves and how. They travel in the
// environment, not in flags, so that a test binary (whose flags are the
// testing package's) can be a child too: see TestMain.
type serveOptions struct {
	Kind          string // "baseline", "gateway", "gatewayjwt", "jwtfloor", "gatewayproxy", "proxyfloor", "null", "light" or "sdkfloor"
	Addr          string // the address of Listener
	Issuer        string // gateway: AUTH_ISSUER_URL; null, sdkfloor: the fake AS; jwtfloor: the fake JWT issuer
	Resource      string // gateway: MCP_RESOURCE_URL
	Upstream      string // gatewayproxy: UPSTREAM_URL; proxyfloor: where it forwards
	Redis         string // gateway: REDIS_URL ("" none)
	CPUProfile    string
	PhaseProfiles string // a directory for profilePhases; "" none
	// Listener is the socket listening at Addr, which the child serves on
	// (its fd 4): the port stays taken from the moment it is chosen, so
	// that no connection's ephemeral port can take it before the child
	// listens. startChild opens one if nil, and closes this process's copy.
	Listener *os.File
}

const (
	envServe         = "BENCH_SERVE"
	envIssuer        = "BENCH_SERVE_ISSUER"
	envResource      = "BENCH_SERVE_RESOURCE"
	envUpstream      = "BENCH_SERVE_UPSTREAM"
	envRedis         = "BENCH_SERVE_REDIS"
	envCPUProfile    = "BENCH_SERVE_CPUPROFILE"
	envPhaseProfiles = "BENCH_SERVE_PHASEPROFILES"
)

// The collector settings fly.toml deploys with (see the comment there);
// TestGCSettingsMatchFlyToml keeps them equal. The servers under test get
// them unless the bench's own environment sets GOGC or GOMEMLIMIT, and the
// baseline gets the same as the gateway.
const (
	prodGOGC       = "400"
	prodGOMEMLIMIT = "200MiB"
)

// gcSettings are the GOGC and GOMEMLIMIT the children run with.
func gcSettings() (gogc, memlimit string) {
	gogc, memlimit = os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT")
	if gogc == "" && memlimit == "" {
		return prodGOGC, prodGOMEMLIMIT
	}
	return gogc, memlimit
}

func (s serveOptions) env() []string {
	gogc, memlimit := gcSettings()
	return append(os.Environ(), "GOGC="+gogc, "GOMEMLIMIT="+memlimit,
		envServe+"="+s.Kind, envIssuer+"="+s.Issuer,
		envResource+"="+s.Resource, envUpstream+"="+s.Upstream, envRedis+"="+s.Redis, envCPUProfile+"="+s.CPUProfile, envPhaseProfiles+"="+s.PhaseProfiles)
}

// serveChildIfAsked serves, and then exits the process, when this process
// is a child the bench started; otherwise it returns.
func serveChildIfAsked() {
	kind := os.Getenv(envServe)
	if kind == "" {
		return
	}
	so := serveOptions{Kind: kind, Issuer: os.Getenv(envIssuer),
		Resource: os.Getenv(envResource), Upstream: os.Getenv(envUpstream), Redis: os.Getenv(envRedis), CPUProfile: os.Getenv(envCPUProfile), PhaseProfiles: os.Getenv(envPhaseProfiles)}
	if err := serve(so); err != nil {
		fmt.Fprintf(os.Stderr, "bench child (%s): %v\n", kind, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startChild runs this binary as a child (serveOptions travel in BENCH_SERVE*
// variables) and waits until it has said it is ready on fd 3. It serves MCP
// at so.Addr, on so.Listener (a free loopback port if nil). The child's stdout (its
// request log) goes to /dev/null; its stderr is kept for error messages.
func startChild(ctx context.Context, name string, plan cpuPlan, so serveOptions) (*child, error) {
	if so.Listener == nil {
		addr, f, err := reserveLoopback()
		if err != nil {
			return nil, err
		}
		so.Addr, so.Listener = addr, f
	}
	defer so.Listener.Close() // the child has its own
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		pw.Close()
		return nil, err
	}
	defer devnull.Close()
	c := &child{Name: name, URL: "http://" + so.Addr + "/mcp", exited: make(chan error, 1)}
	c.cmd = exec.Command(self)
	c.cmd.Env = so.env()
	c.cmd.Stdout = devnull
	c.cmd.Stderr = &c.stderr
	c.cmd.ExtraFiles = []*os.File{pw, so.Listener} // fds 3 and 4
	if plan.Pinned {
		err = startPinned(c.cmd, plan.Server)
	} else {
		err = c.cmd.Start()
	}
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { c.exited <- c.cmd.Wait() }()

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(pr).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == "ready" {
			return c, nil
		}
		c.Close()
		return nil, fmt.Errorf("%s did not start: %s", name, oneLine(s+" "+c.stderr.String(), 400))
	case err := <-c.exited:
		c.exited <- err
		return nil, fmt.Errorf("%s exited: %v: %s", name, err, oneLine(c.stderr.String(), 400))
	case <-time.After(30 * time.Second):
		c.Close()
		return nil, fmt.Errorf("%s not ready after 30s: %s", name, oneLine(c.stderr.String(), 400))
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
}

// Close asks the child to shut down (SIGINT) and waits for it.
func (c *child) Close() error {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-c.exited:
		c.exited <- err
		if err != nil {
			return fmt.Errorf("%s: %v: %s", c.Name, err, oneLine(c.stderr.String(), 400))
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within 10s; killed", c.Name)
	}
}

// serve is the child's side: it serves until SIGINT or SIGTERM.
func serve(so serveOptions) error {
	ready := os.NewFile(3, "ready") // the bench's ready pipe
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lf := os.NewFile(4, "listener") // serveOptions.Listener
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fmt.Errorf("the listener the bench passed: %w", err)
	}
	var srv *http.Server
	switch so.Kind {
	case "baseline":
		srv, err = baselineServer(prodLogger())
	case "null":
		srv = nullServer(so.Issuer)
	case "light":
		srv = lightUpstream()
	case "sdkfloor":
		srv, err = sdkFloorServer(so.Issuer, prodLogger())
	case "jwtfloor":
		srv, err = jwtFloorServer(so.Issuer, prodLogger())
	case "proxyfloor":
		srv, err = proxyFloorServer(so.Upstream)
	case "gatewayproxy":
		var closeAll func()
		srv, closeAll, err = gatewayProxyServer(ctx, so.Resource, so.Issuer, so.Upstream, prodLogger())
		if closeAll != nil {
			defer closeAll()
		}
	case "gateway", "gatewayjwt":
		var v *introspect.Verifier
		var closeShared func()
		srv, v, closeShared, err = gatewayServer(ctx, so.Resource, so.Issuer, so.Redis, prodLogger(), so.Kind == "gateway")
		if closeShared != nil {
			defer closeShared() // after the verifier's Close
		}
		if v != nil {
			defer v.Close()
		}
	default:
		err = fmt.Errorf("%s=%q: want baseline, gateway, gatewayjwt, jwtfloor, gatewayproxy, proxyfloor, null, light or sdkfloor", envServe, so.Kind)
	}
	if err != nil {
		ln.Close()
		return err
	}
	if so.CPUProfile != "" {
		f, err := os.Create(so.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if so.PhaseProfiles != "" {
		profilePhases(so.PhaseProfiles, so.Kind)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(ready, "ready\n")
	ready.Close()
	fmt.Fprintf(os.Stderr, "serving %s on %s with GOMAXPROCS %d\n", so.Kind, ln.Addr(), runtime.GOMAXPROCS(0))
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// reserveLoopback opens a listening socket on a free loopback port, for a
// child to serve on (serveOptions.Listener).
func reserveLoopback() (addr string, f *os.File, err error) {
	ln, _, err := listenLoopback()
	if err != nil {
		return "", nil, err
	}
	defer ln.Close() // f is a duplicate, which keeps the socket open
	f, err = ln.(*net.TCPListener).File()
	if err != nil {
		return "", nil, err
	}
	return ln.Addr().String(), f, nil
}
