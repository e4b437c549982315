package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The proxy's overhead: the same Go SDK upstream (stateless, JSON
// answers, the echo tool) called directly and through the proxy, with a
// fixed identity (what the gateway has once a token is cached), from 32
// concurrent keep-alive connections (SetParallelism(32/GOMAXPROCS)).
// Besides ns/op and allocs/op it reports the p50 and p99 latency of one
// call.
//
//	go test -run '^$' -bench 'Upstream' -benchmem ./proxy/

const benchCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`

func BenchmarkUpstreamDirect(b *testing.B) {
	up := newUpstream(b, upstreamOpts{stateless: true, jsonResponse: true})
	benchCalls(b, up.URL)
}

func BenchmarkUpstreamThroughProxy(b *testing.B) {
	up := newUpstream(b, upstreamOpts{stateless: true, jsonResponse: true})
	benchCalls(b, benchFront(b, newProxy(b, up.URL, Config{})).URL)
}

// BenchmarkUpstreamThroughProxyFiltered adds a FilterTool: every POST
// body is then parsed (tools/call answers are still not rewritten).
func BenchmarkUpstreamThroughProxyFiltered(b *testing.B) {
	up := newUpstream(b, upstreamOpts{stateless: true, jsonResponse: true})
	benchCalls(b, benchFront(b, newProxy(b, up.URL, Config{FilterTool: hideSecret})).URL)
}

// benchFront plays the gateway with one cached identity.
func benchFront(b *testing.B, p *Proxy) *httptest.Server {
	id := testIdentities["alice-token"]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchCalls(b *testing.B, url string) {
	const conns = 32
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := []byte(benchCall)
	call := func() error {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		req.Header.Set("Authorization", "Bearer alice-token")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("HTTP %d", resp.StatusCode)
		}
		return err
	}
	if err := call(); err != nil { // warm up, and check it works
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(max(1, conns/testingProcs()))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			start := time.Now()
			if err := call(); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// nullUpstream answers every request with a fixed JSON-RPC result at once:
// what remains of a call through the proxy is the proxy's own cost.
func nullUpstream(b *testing.B) *httptest.Server {
	answer := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func BenchmarkNullDirect(b *testing.B) {
	benchCalls(b, nullUpstream(b).URL)
}

func BenchmarkNullThroughProxy(b *testing.B) {
	benchCalls(b, benchFront(b, newProxy(b, nullUpstream(b).URL, Config{})).URL)
}

// cannedTransport answers without a network, so that BenchmarkServeHTTP
// counts the proxy's work alone.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       r,
	}, nil
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP is one proxied tools/call without any network: the
// allocations the proxy (and ReverseProxy) make per request.
func BenchmarkServeHTTP(b *testing.B) {
	for _, tt := range []struct {
		name   string
		filter bool
	}{{"plain", false}, {"filter", true}} {
		b.Run(tt.name, func(b *testing.B) {
			cfg := Config{Transport: cannedTransport{body: []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`)}}
			if tt.filter {
				cfg.FilterTool = hideSecret
			}
			p := newProxy(b, "http://127.0.0.1:9/mcp", cfg)
			id := testIdentities["alice-token"]
			body := []byte(benchCall)
			hdr := http.Header{
				"Content-Type":         {"application/json"},
				"Accept":               {"application/json, text/event-stream"},
				"Mcp-Protocol-Version": {"2025-06-18"},
				"Authorization":        {"Bearer alice-token"},
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(body))
				req.Header = hdr.Clone()
				req = req.WithContext(WithIdentity(req.Context(), id))
				clear(w.h)
				p.ServeHTTP(w, req)
			}
		})
	}
}
