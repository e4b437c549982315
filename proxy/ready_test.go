package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestReady(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusMethodNotAllowed)
	var calls atomic.Int32
	var auth atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		auth.Store(r.Header.Get("Authorization"))
		w.WriteHeader(int(status.Load()))
	}))
	defer up.Close()
	clock := newClock()
	p := newProxy(t, up.URL, Config{Now: clock.Now})
	ctx := context.Background()

	if err := p.Ready(ctx); err != nil {
		t.Fatalf("405 upstream: %v", err)
	}
	if got := auth.Load(); got != "Bearer upstream-secret" {
		t.Errorf("Authorization %q", got)
	}
	status.Store(http.StatusInternalServerError)
	if err := p.Ready(ctx); err != nil || calls.Load() != 1 {
		t.Fatalf("within the cache time: err %v, %d calls", err, calls.Load())
	}
	clock.Advance(readyTTL + 1)
	if err := p.Ready(ctx); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCredentialsRejected) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("500 upstream: %v", err)
	}
	status.Store(http.StatusUnauthorized)
	clock.Advance(readyTTL + 1)
	err := p.Ready(ctx)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrCredentialsRejected) || !strings.Contains(err.Error(), "UPSTREAM_AUTHORIZATION") || strings.Contains(err.Error(), "upstream-secret") {
		t.Fatalf("401 upstream: %v", err)
	}
	status.Store(http.StatusBadRequest) // a stateful server without a session
	clock.Advance(readyTTL + 1)
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("400 upstream: %v", err)
	}
	up.Close()
	clock.Advance(readyTTL + 1)
	if err := p.Ready(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed upstream: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	clock.Advance(readyTTL + 1)
	if err := p.Ready(cancelled); err == nil {
		t.Fatal("cancelled context: nil")
	}
}

// TestReadyStream: an upstream that holds a GET open as an event stream
// is ready as soon as it answers.
func TestReadyStream(t *testing.T) {
	up := holdingUpstream(t)
	p := newProxy(t, up.URL, Config{})
	if err := p.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestProbe(t *testing.T) {
	up := newUpstream(t, upstreamOpts{pageSize: 1})
	res, err := Probe(context.Background(), Config{Upstream: up.URL, Authorization: "Bearer upstream-secret"})
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if res.ServerName != "test-upstream" || res.ServerVersion != "1.2.3" || res.ProtocolVersion == "" || res.Capabilities == nil || res.Capabilities.Tools == nil {
		t.Errorf("result %+v", res)
	}
	if want := []string{"echo", "secret", "slow"}; !slices.Equal(res.Tools, want) || res.ToolsTruncated {
		t.Errorf("tools %v (truncated %v), want %v over three pages", res.Tools, res.ToolsTruncated, want)
	}
	lists := 0
	for _, r := range up.Requests() {
		if r.Header.Get("Authorization") != "Bearer upstream-secret" {
			t.Errorf("%s without the upstream credential", r.Method)
		}
		if strings.Contains(r.Body, `"tools/list"`) {
			lists++
		}
	}
	if lists != 3 {
		t.Errorf("%d tools/list pages, want 3", lists)
	}
	if up.count(http.MethodDelete, "") != 1 {
		t.Error("the probe's session was not closed")
	}
}

func TestProbeFailures(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	notMCP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>hello</html>")
	}))
	defer notMCP.Close()
	// Answers every request with a JSON-RPC error quoting the credential
	// it received, which the SDK's client puts in its error.
	echoing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		msg, _ := json.Marshal("bad credentials: " + r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"error":{"code":-32000,"message":`+string(msg)+`}}`)
	}))
	defer echoing.Close()
	for _, tt := range []struct {
		name, url, stage string
	}{
		{"config", "http://example.com/mcp", "config"},
		{"dead", dead.URL, "reach"},
		{"not MCP", notMCP.URL, "initialize"},
		{"echoes the credential", echoing.URL, "initialize"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Probe(context.Background(), Config{Upstream: tt.url, Authorization: "Bearer upstream-secret-value"})
			var pe *ProbeError
			if !errors.As(err, &pe) || pe.Stage != tt.stage {
				t.Fatalf("err %v, want stage %q", err, tt.stage)
			}
			if tt.stage == "reach" && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err %v, want stage %q", err, tt.stage)
			}
			t.Logf("%v", err)
			if strings.Contains(err.Error(), "upstream-secret-value") {
				t.Errorf("the credential is in the error: %v", err)
			}
		})
	}
}
