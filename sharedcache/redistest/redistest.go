// Package redistest starts real redis-server processes for tests (Debian's
// redis-server package; .ci/run installs it), and a loopback TCP proxy that
// can delay or cut the traffic to one, so that tests can make Redis slow,
// partitioned, killed or restarted.
//
// Every server runs on a free loopback port without persistence (--save ""
// --appendonly no): a restart is an empty Redis, as after a crash of a
// cache-only deployment.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Require returns the path of redis-server. Outside CI a missing binary
// skips the test with instructions; in CI (CI=true, where .ci/run installs
// it) it fails the test.
func Require(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server is required in CI (.ci/run installs it): %v", err)
		}
		tb.Skip("redis-server is not installed (apt-get install -y redis-server); skipping tests against a real Redis")
	}
	return path
}

// Server is one redis-server process.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	tls  bool

	bin  string
	args []string
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	gen  int           // incremented by each start, names the log file
}

// Start starts a server with extra redis-server arguments (such as
// "--requirepass", "pw") and stops it when the test ends.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return start(tb, false, extra)
}

// StartTLS starts a server that accepts only TLS, with the given PEM
// certificate (chain) and key files, and does not ask clients for
// certificates.
func StartTLS(tb testing.TB, certFile, keyFile string, extra ...string) *Server {
	tb.Helper()
	args := append([]string{"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"}, extra...)
	return start(tb, true, args)
}

func start(tb testing.TB, tls bool, extra []string) *Server {
	tb.Helper()
	s := &Server{bin: Require(tb), tls: tls, dir: tb.TempDir()}
	var err error
	for range 5 { // a free port can be taken between choosing and binding it
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = s.baseArgs(port, extra)
		if err = s.Start(); err == nil {
			tb.Cleanup(s.Kill)
			return s
		}
	}
	tb.Fatalf("redistest: cannot start redis-server: %v", err)
	return nil
}

func (s *Server) baseArgs(port int, extra []string) []string {
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--dir", s.dir, "--daemonize", "no"}
	if s.tls {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port))
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	return append(args, extra...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL is the server's redis:// (or rediss://) URL, without credentials.
func (s *Server) URL() string {
	if s.tls {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

// Start (re)starts the process on the same port with the same arguments
// and waits until it accepts connections. A restarted server is empty.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("redistest: already running")
	}
	s.gen++
	logFile := filepath.Join(s.dir, "redis-"+strconv.Itoa(s.gen)+".log")
	cmd := exec.Command(s.bin, append(append([]string(nil), s.args...), "--logfile", logFile)...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitReady(ctx, logFile, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return err
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady polls the log for Redis's "Ready to accept connections" (it
// is written once the listeners are bound, TCP or TLS alike), with a
// deadline: the server is an external process.
func waitReady(ctx context.Context, logFile string, exited <-chan struct{}) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready, _ := logSays(logFile, "Ready to accept connections"); ready {
			return nil
		}
		select {
		case <-exited:
			tail, _ := os.ReadFile(logFile)
			return fmt.Errorf("redis-server exited: %s", lastLines(string(tail), 5))
		case <-ctx.Done():
			return fmt.Errorf("redis-server not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func logSays(logFile, what string) (bool, error) {
	f, err := os.Open(logFile)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), what) {
			return true, nil
		}
	}
	return false, sc.Err()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Kill stops the process at once (SIGKILL, as a crash) and waits for it to
// exit. It does nothing if the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Proxy is a loopback TCP proxy in front of a server, to make it slow
// (every chunk of bytes held for a delay, both ways) or partitioned (every
// connection cut, new ones closed at once) without touching the server.
type Proxy struct {
	// Addr is the proxy's 127.0.0.1:port.
	Addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	delay time.Duration
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards to target until the
// test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// SetDelay holds every chunk for d before forwarding it (0: none).
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones (accepts then closes
// them) until Heal: a partition as the client sees it.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
}

// Heal lets new connections through again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(up) {
			if up != nil {
				_ = up.Close()
			}
			p.untrack(c)
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst, holding each chunk for the current delay, and
// closes both ends when either fails.
func (p *Proxy) pipe(src, dst net.Conn) {
	defer p.wg.Done()
	defer p.untrack(dst)
	defer p.untrack(src)
	buf := make([]byte, 32<<10)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			if d > 0 {
				timer.Reset(d)
				<-timer.C
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
