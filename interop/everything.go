package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
)

// everythingPackage is the reference MCP server ("everything", from the
// modelcontextprotocol/servers repository, built on the TypeScript SDK),
// pinned in interop/everything/package-lock.json.
const everythingPackage = "@modelcontextprotocol/server-everything"

// EverythingDir returns the directory of the Node project
// (interop/everything).
func EverythingDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("interop", "everything")
	}
	return filepath.Join(filepath.Dir(file), "everything")
}

// Everything is a running reference "everything" MCP server, a real MCP
// server this project did not write, serving Streamable HTTP on loopback
// (its streamableHttp mode: stateful, a session per initialize, SSE
// answers, resumable streams, sessions kept in memory).
//
// It is started as
//
//	node --import ./listen.mjs node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp
//
// with PORT in the environment: the server's only settings are that
// argument (stdio, sse or streamableHttp) and PORT (default 3001), and it
// listens on every interface; listen.mjs binds it to 127.0.0.1, prints the
// port it got, and prints every request's headers ([Everything.Requests]).
// The first start installs the pinned packages with npm ci, as [Start]
// does for oidc-provider.
type Everything struct {
	// URL is the MCP endpoint, http://127.0.0.1:<port>/mcp. It stays the
	// same across Stop and Restart.
	URL string

	tb   testing.TB
	node string
	dir  string
	port string

	mu       sync.Mutex
	proc     *everythingProc
	requests []EverythingRequest
}

// EverythingRequest is a request as the everything server received it.
type EverythingRequest struct {
	Method string
	Header http.Header
}

// Requests returns the requests the server has received so far (across
// restarts), with their headers exactly as they arrived.
func (e *Everything) Requests() []EverythingRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]EverythingRequest(nil), e.requests...)
}

type everythingProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *syncbuf.Buffer
	stdout *syncbuf.Buffer
}

// StartEverything runs the everything server on a free loopback port
// until the end of the test.
func StartEverything(tb testing.TB) *Everything {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(tb, "node is not on PATH")
	}
	dir := EverythingDir()
	if err := install(dir, everythingPackage); err != nil {
		unavailable(tb, "installing %s in %s: %v", everythingPackage, dir, err)
	}
	e := &Everything{tb: tb, node: node, dir: dir, port: "0"}
	tb.Cleanup(e.Stop)
	addr, err := e.launch()
	if err != nil {
		tb.Fatalf("interop: %v", err)
	}
	e.port = addr[strings.LastIndexByte(addr, ':')+1:]
	e.URL = "http://" + addr + "/mcp"
	return e
}

// launch runs the server on e.port and returns the address it listens on.
func (e *Everything) launch() (string, error) {
	cmd := exec.Command(e.node, "--import", "./listen.mjs",
		filepath.Join("node_modules", filepath.FromSlash(everythingPackage), "dist", "index.js"), "streamableHttp")
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "PORT="+e.port)
	setProcessGroup(cmd)
	p := &everythingProc{cmd: cmd, exited: make(chan struct{}), stderr: &syncbuf.Buffer{}, stdout: &syncbuf.Buffer{}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting node: %w", err)
	}
	listening := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		// The server logs every request on stdout: keep reading all of
		// it, or node blocks on a full pipe.
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		sent := false
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, `{"request":`) {
				var v struct {
					Request struct {
						Method     string   `json:"method"`
						RawHeaders []string `json:"rawHeaders"`
					} `json:"request"`
				}
				if json.Unmarshal([]byte(line), &v) == nil {
					r := EverythingRequest{Method: v.Request.Method, Header: http.Header{}}
					for i := 0; i+1 < len(v.Request.RawHeaders); i += 2 {
						r.Header.Add(v.Request.RawHeaders[i], v.Request.RawHeaders[i+1])
					}
					e.mu.Lock()
					e.requests = append(e.requests, r)
					e.mu.Unlock()
					continue
				}
			}
			if !sent && strings.HasPrefix(line, `{"listening":`) {
				var v struct {
					Listening string `json:"listening"`
				}
				if json.Unmarshal([]byte(line), &v) == nil && v.Listening != "" {
					listening <- v.Listening
					sent = true
					continue
				}
			}
			_, _ = p.stdout.Write([]byte(line + "\n"))
		}
	}()
	go func() {
		<-readDone
		_ = cmd.Wait()
		close(p.exited)
	}()
	e.mu.Lock()
	e.proc = p
	e.mu.Unlock()
	select {
	case addr := <-listening:
		return addr, nil
	case <-p.exited:
		e.Stop()
		return "", fmt.Errorf("the everything server exited before listening; stderr:\n%s", p.stderr.String())
	case <-time.After(30 * time.Second):
		e.Stop()
		return "", fmt.Errorf("the everything server did not listen within 30s; stderr:\n%s", p.stderr.String())
	}
}

// Stop kills the server (SIGKILL to its process group: no goodbye to its
// clients, as in a crash) and waits until it has exited.
func (e *Everything) Stop() {
	e.mu.Lock()
	p := e.proc
	e.proc = nil
	e.mu.Unlock()
	if p == nil {
		return
	}
	kill(p.cmd)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		e.tb.Errorf("interop: the everything server did not exit after SIGKILL")
	}
	if e.tb.Failed() {
		e.tb.Logf("everything server stderr:\n%s\nstdout:\n%s", p.stderr.String(), p.stdout.String())
	}
}

// Restart starts the server again on the same port, after Stop. Its
// sessions are gone: it knows none of the ids it issued before.
func (e *Everything) Restart() {
	e.tb.Helper()
	e.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.launch()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("interop: restarting the everything server on port %s: %v", e.port, err)
		}
		time.Sleep(100 * time.Millisecond) // an external process releasing the port
	}
}
