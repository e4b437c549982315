package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// TestMain lets a test re-execute this binary as the real gateway process,
// to check exit statuses and signal handling.
func TestMain(m *testing.M) {
	if os.Getenv("MCP_GATEWAY_TEST_BE_MAIN") == "1" {
		// MCP_GATEWAY_TEST_ARGS: the command line, e.g. "check".
		os.Args = append(os.Args[:1], strings.Fields(os.Getenv("MCP_GATEWAY_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	// go-redis logs through one process-wide logger: set it once, before
	// any test's Store exists (run sets it only the first time).
	setRedisLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func gatewayProcess(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{"MCP_GATEWAY_TEST_BE_MAIN=1", "PATH=" + os.Getenv("PATH")}, env...)
	return cmd
}

func TestBadConfigurationExitsWithStatus2(t *testing.T) {
	cmd := gatewayProcess(t, "AUTH_ISSUER_URL=https://idp.example.com", "PORT=-1", "CLOCK_SKEW=soon")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
	}
	for _, want := range []string{"PORT", "CLOCK_SKEW"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention %s:\n%s", want, out)
		}
	}
}

func TestSignalShutsDownGracefully(t *testing.T) {
	as := introspecttest.New(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := gatewayProcess(t, "HOST=127.0.0.1", "PORT=0", "AUTH_ISSUER_URL="+as.URL,
				"INTROSPECTION_CLIENT_ID="+as.ClientID, "INTROSPECTION_CLIENT_SECRET="+as.ClientSecret)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			listening := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(stderr)
				signalled := false
				for sc.Scan() {
					if !signalled && strings.Contains(sc.Text(), `"msg":"listening"`) {
						signalled = true
						close(listening)
					}
				}
			}()
			select {
			case <-listening:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("gateway did not start")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit after %v: %v, want status 0", sig, err)
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("no exit within 15s of %v", sig)
			}
		})
	}
}

// On SIGTERM a request already in flight (here: waiting on a slow
// introspection) still gets its answer, and the process then exits 0.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	as := introspecttest.New(t)
	as.SetLatency(1500 * time.Millisecond)
	cmd := gatewayProcess(t, "HOST=127.0.0.1", "PORT=0", "AUTH_ISSUER_URL="+as.URL,
		"INTROSPECTION_CLIENT_ID="+as.ClientID, "INTROSPECTION_CLIENT_SECRET="+as.ClientSecret,
		"SHUTDOWN_TIMEOUT=10s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr, Resource string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Resource
			}
		}
	}()
	var resource string
	select {
	case resource = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not start")
	}
	mcpURL := strings.Replace(resource, "localhost", "127.0.0.1", 1)
	tok := as.Issue("kate", []string{"op:add"}, resource, time.Hour)

	type result struct {
		status int
		err    error
	}
	answered := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(fmt.Sprintf(callAdd, "add")))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- result{err: err}
			return
		}
		resp.Body.Close()
		answered <- result{status: resp.StatusCode}
	}()
	// The request is in flight once the authorization server has it.
	deadline := time.Now().Add(5 * time.Second)
	for as.Calls() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached introspection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-answered
	if r.err != nil || r.status != http.StatusOK {
		t.Errorf("in-flight request during shutdown: %d %v, want 200", r.status, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v, want status 0", err)
	}
}
