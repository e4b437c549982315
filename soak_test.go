//go:build soak

package main

// The soak test: the whole gateway, started by run(), under a mix of valid,
// invalid, expiring and revoked tokens while the authorization server flaps.
// It is not part of the default test run:
//
//	go test -tags soak -run TestSoak -timeout 0 -v . -soak.duration=10m
//
// A garbage flood (distinct random tokens, as fast as it can) comes from
// the very address of the honest workers for the whole run.
//
// It fails on any false accept (a 200 for a token that was invalid,
// expired or revoked for longer than CACHE_MAX_TTL, or for garbage), on any
// 5xx other than 503, on goroutine or heap growth, and when the honest
// workers' long-lived valid tokens get 200 on less than 99% of the requests
// made entirely while the authorization server was up.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

var (
	soakDuration = flag.Duration("soak.duration", 10*time.Minute, "how long the soak test runs")
	soakFlap     = flag.Duration("soak.flap", 20*time.Second, "the authorization server goes down or up this often")
	soakWorkers  = flag.Int("soak.workers", 16, "concurrent clients")
	soakFlood    = flag.Int("soak.flood", 4, "concurrent garbage senders, from the honest workers' address")
)

type soakToken struct {
	token   string
	kind    string    // valid, invalid, expiring, revoked
	exp     time.Time // for expiring tokens
	revoked time.Time // for revoked tokens, once revoked
	mu      sync.Mutex
}

func TestSoak(t *testing.T) {
	const cacheTTL = 5 * time.Second
	as := introspecttest.New(t)
	g := startGateway(t, map[string]string{
		"AUTH_ISSUER_URL":             as.URL,
		"INTROSPECTION_CLIENT_ID":     as.ClientID,
		"INTROSPECTION_CLIENT_SECRET": as.ClientSecret,
		"CACHE_MAX_TTL":               cacheTTL.String(),
		"CACHE_NEGATIVE_TTL":          "1s",
		"CLOCK_SKEW":                  "0s",
		"INTROSPECTION_TIMEOUT":       "1s",
		"LOG_LEVEL":                   "error",
	})
	waitReady(t, g)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *soakWorkers + *soakFlood}, Timeout: 10 * time.Second}
	var (
		mu     sync.Mutex
		tokens []*soakToken
	)
	addToken := func(tk *soakToken) {
		mu.Lock()
		tokens = append(tokens, tk)
		mu.Unlock()
	}
	pick := func() *soakToken {
		mu.Lock()
		defer mu.Unlock()
		return tokens[rand.IntN(len(tokens))]
	}
	for i := range 50 {
		addToken(&soakToken{token: as.Issue(fmt.Sprintf("user-%d", i), []string{"op"}, g.Resource, 24*time.Hour), kind: "valid"})
	}
	for range 50 {
		addToken(&soakToken{token: randomToken(), kind: "invalid"})
	}

	// Every valid token has been accepted once before the flood starts:
	// known tokens, as a real user's would be.
	for _, tk := range tokens {
		if tk.kind != "valid" {
			continue
		}
		if status, _, err := send(context.Background(), client, g.MCP(), tk.token, nil); err != nil || status != 200 {
			t.Fatalf("warming up a valid token: %d %v", status, err)
		}
	}

	var (
		down         atomic.Bool
		flips        atomic.Int64 // AS state changes, to tell requests made entirely while it was up
		honestUp     statusCounts // valid tokens, requests made entirely while the AS was up
		flood        statusCounts
		served       atomic.Int64
		falseAccepts atomic.Int64
		bad5xx       atomic.Int64
		statusMu     sync.Mutex
		statuses     = map[string]int{}
		failures     []string
	)
	fail := func(format string, args ...any) {
		statusMu.Lock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
		statusMu.Unlock()
	}

	ctx, cancel := context.WithTimeout(context.Background(), *soakDuration)
	defer cancel()

	// Goroutines and heap are sampled through the run. The baseline is the
	// first sample after one full down-and-up cycle, when the keep-alive
	// pools (client to gateway, gateway to authorization server) are warm;
	// after that nothing may grow.
	var (
		samplesMu  sync.Mutex
		goroutines []int
		heaps      []uint64
	)
	sample := func() {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		samplesMu.Lock()
		goroutines = append(goroutines, runtime.NumGoroutine())
		heaps = append(heaps, m.HeapInuse)
		samplesMu.Unlock()
	}
	warmup := 2 * *soakFlap
	if warmup > *soakDuration/3 {
		warmup = *soakDuration / 3
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			return
		case <-time.After(warmup):
		}
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	// The authorization server flaps.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(*soakFlap)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				as.SetFailure(nil)
				return
			case <-tick.C:
				flips.Add(1)
				if down.Load() {
					as.SetFailure(nil)
					down.Store(false)
				} else {
					as.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
						if rand.IntN(2) == 0 {
							w.WriteHeader(http.StatusServiceUnavailable)
						} else {
							w.Write([]byte("<html>maintenance</html>"))
						}
						return true
					})
					down.Store(true)
				}
				flips.Add(1)
			}
		}
	}()
	// The garbage flood, from the same address as the honest workers.
	for range *soakFlood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				status, _, err := send(ctx, client, g.MCP(), randomToken(), nil)
				if err != nil {
					if ctx.Err() == nil {
						fail("flood transport error: %v", err)
					}
					continue
				}
				flood.add(status)
				switch {
				case status == http.StatusOK:
					falseAccepts.Add(1)
					fail("garbage token accepted")
				case status >= 500 && status != http.StatusServiceUnavailable:
					bad5xx.Add(1)
					fail("garbage token: status %d", status)
				}
			}
		}()
	}
	// New expiring tokens keep arriving, and some valid ones get revoked.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ttl := time.Duration(1+rand.IntN(4)) * time.Second
			addToken(&soakToken{token: as.Issue(fmt.Sprintf("exp-%d", i), []string{"op"}, g.Resource, ttl), kind: "expiring", exp: time.Now().Add(ttl)})
			if i%4 == 0 {
				tk := &soakToken{token: as.Issue(fmt.Sprintf("rev-%d", i), []string{"op"}, g.Resource, time.Hour), kind: "revoked"}
				addToken(tk)
				go func() {
					select {
					case <-ctx.Done():
					case <-time.After(2 * time.Second):
						tk.mu.Lock()
						as.Revoke(tk.token)
						tk.revoked = time.Now()
						tk.mu.Unlock()
					}
				}()
			}
			mu.Lock()
			if len(tokens) > 2000 { // keep the pool bounded: drop the oldest expiring ones
				tokens = append(tokens[:100], tokens[len(tokens)-1500:]...)
			}
			mu.Unlock()
		}
	}()
	for range *soakWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				tk := pick()
				body := fmt.Sprintf(callAdd, "add")
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.MCP(), strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tk.token)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				sent := time.Now()
				flipsAtSend, upAtSend := flips.Load(), !down.Load()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						fail("transport error: %v", err)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				served.Add(1)
				if tk.kind == "valid" && upAtSend && !down.Load() && flips.Load() == flipsAtSend {
					honestUp.add(resp.StatusCode)
				}
				statusMu.Lock()
				statuses[fmt.Sprintf("%s %d", tk.kind, resp.StatusCode)]++
				statusMu.Unlock()
				if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
					bad5xx.Add(1)
					fail("%s token: status %d", tk.kind, resp.StatusCode)
				}
				if resp.StatusCode != http.StatusOK {
					continue
				}
				switch tk.kind {
				case "invalid":
					falseAccepts.Add(1)
					fail("invalid token accepted")
				case "expiring":
					// Sent after exp: must not be accepted (CLOCK_SKEW=0).
					if sent.After(tk.exp.Add(time.Second)) { // exp has one-second resolution
						falseAccepts.Add(1)
						fail("token accepted %v after its exp", sent.Sub(tk.exp))
					}
				case "revoked":
					tk.mu.Lock()
					r := tk.revoked
					tk.mu.Unlock()
					if !r.IsZero() && sent.After(r.Add(cacheTTL+time.Second)) {
						falseAccepts.Add(1)
						fail("revoked token accepted %v after revocation (CACHE_MAX_TTL %v)", sent.Sub(r), cacheTTL)
					}
				}
			}
		}()
	}
	wg.Wait()
	as.SetFailure(nil)

	sample()
	startGoroutines, endGoroutines := goroutines[0], goroutines[len(goroutines)-1]
	startHeap, endHeap := heaps[0], heaps[len(heaps)-1]
	maxGoroutines, maxHeap := startGoroutines, startHeap
	for i := range goroutines {
		maxGoroutines = max(maxGoroutines, goroutines[i])
		maxHeap = max(maxHeap, heaps[i])
	}

	keys := make([]string, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("soak: %v, %d workers, AS flapping every %v", *soakDuration, *soakWorkers, *soakFlap)
	t.Logf("requests served: %d", served.Load())
	for _, k := range keys {
		t.Logf("  %-20s %d", k, statuses[k])
	}
	t.Logf("garbage flood from the same address (%d senders): %d requests, %s", *soakFlood, flood.total(), &flood)
	honestOK := float64(honestUp.get(200)) / float64(max(1, honestUp.total()))
	t.Logf("honest workers' valid tokens while the AS was up: %d requests, %s, %.3f%% 200", honestUp.total(), &honestUp, 100*honestOK)
	t.Logf("false accepts: %d; 5xx other than 503: %d", falseAccepts.Load(), bad5xx.Load())
	t.Logf("after warm-up (%v), %d samples: goroutines start %d, max %d, end %d; heap in use start %.1f MiB, max %.1f MiB, end %.1f MiB",
		warmup, len(goroutines), startGoroutines, maxGoroutines, endGoroutines,
		float64(startHeap)/(1<<20), float64(maxHeap)/(1<<20), float64(endHeap)/(1<<20))
	for _, f := range failures {
		t.Error(f)
	}
	if falseAccepts.Load() != 0 || bad5xx.Load() != 0 {
		t.Errorf("false accepts %d, unexpected 5xx %d", falseAccepts.Load(), bad5xx.Load())
	}
	if honestUp.total() == 0 || honestOK < 0.99 {
		t.Errorf("honest workers sharing an address with a garbage flood got 200 on %.3f%% of %d requests, want >= 99%%", 100*honestOK, honestUp.total())
	}
	if endGoroutines > startGoroutines+20 {
		var buf strings.Builder
		pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Errorf("goroutines grew from %d to %d:\n%s", startGoroutines, endGoroutines, buf.String())
	}
	if endHeap > startHeap*2+16<<20 {
		t.Errorf("heap grew from %d to %d bytes", startHeap, endHeap)
	}
}
