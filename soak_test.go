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
// With -soak.redis, two gateways share one real Redis (sharedcache/redistest)
// that is killed and restarted every -soak.redisflap, and revoked tokens are
// also revoked through one gateway's admin API: a token revoked there must be
// refused by both within a second (within CACHE_MAX_TTL when Redis could not
// take the revocation).
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
	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

var (
	soakDuration = flag.Duration("soak.duration", 10*time.Minute, "how long the soak test runs")
	soakFlap     = flag.Duration("soak.flap", 20*time.Second, "the authorization server goes down or up this often")
	soakWorkers  = flag.Int("soak.workers", 16, "concurrent clients")
	soakFlood    = flag.Int("soak.flood", 4, "concurrent garbage senders, from the honest workers' address")
	soakRedis    = flag.Bool("soak.redis", false, "two gateways sharing a flapping Redis, with admin revocations")
	soakRedisFlp = flag.Duration("soak.redisflap", 7*time.Second, "Redis is killed or restarted this often (-soak.redis)")
)

type soakToken struct {
	token   string
	kind    string        // valid, invalid, expiring, revoked
	exp     time.Time     // for expiring tokens
	revoked time.Time     // for revoked tokens, once revoked
	bound   time.Duration // how late after revoked a 200 is still right
	mu      sync.Mutex
}

func TestSoak(t *testing.T) {
	const cacheTTL = 5 * time.Second
	as := introspecttest.New(t)
	vars := map[string]string{
		"AUTH_ISSUER_URL":             as.URL,
		"INTROSPECTION_CLIENT_ID":     as.ClientID,
		"INTROSPECTION_CLIENT_SECRET": as.ClientSecret,
		"CACHE_MAX_TTL":               cacheTTL.String(),
		"CACHE_NEGATIVE_TTL":          "1s",
		"CLOCK_SKEW":                  "0s",
		"INTROSPECTION_TIMEOUT":       "1s",
		"LOG_LEVEL":                   "error",
	}
	var (
		redisSrv *redistest.Server
		admins   []string
		targets  []*gatewayUnderTest
	)
	if *soakRedis {
		redisSrv = redistest.Start(t)
		vars["REDIS_URL"] = redisSrv.URL()
		vars["CACHE_KEY_SECRET"] = "soak-cache-key-secret-0123456789"
		vars["ADMIN_TOKEN"] = testAdminToken
		vars["MCP_RESOURCE_URL"] = sharedResource
		for range 2 {
			port := freePort(t)
			vars["METRICS_PORT"] = fmt.Sprint(port)
			gw := startGateway(t, vars)
			waitReady(t, gw)
			targets = append(targets, gw)
			admins = append(admins, fmt.Sprintf("http://127.0.0.1:%d", port))
		}
	} else {
		gw := startGateway(t, vars)
		waitReady(t, gw)
		targets = append(targets, gw)
	}
	g := targets[0]
	target := func() string { return targets[rand.IntN(len(targets))].MCP() }

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
		for _, gw := range targets {
			if status, _, err := send(context.Background(), client, gw.MCP(), tk.token, nil); err != nil || status != 200 {
				t.Fatalf("warming up a valid token: %d %v", status, err)
			}
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
				status, _, err := send(ctx, client, target(), randomToken(), nil)
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
	// Redis flaps (-soak.redis).
	if redisSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(*soakRedisFlp)
			defer tick.Stop()
			up := true
			for {
				select {
				case <-ctx.Done():
					if !up {
						_ = redisSrv.Start()
					}
					return
				case <-tick.C:
				}
				if up {
					redisSrv.Kill()
				} else if err := redisSrv.Start(); err != nil {
					fail("restarting Redis: %v", err)
				}
				up = !up
				statusMu.Lock()
				statuses[fmt.Sprintf("(redis %s)", map[bool]string{true: "restarts", false: "kills"}[up])]++
				statusMu.Unlock()
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
						tk.bound = cacheTTL
						tk.mu.Unlock()
						if len(admins) == 0 {
							return
						}
						// Revoked at one gateway's admin API too: both
						// must refuse it within a second once Redis took
						// it, within CACHE_MAX_TTL otherwise.
						status := adminRevokeStatus(admins[rand.IntN(len(admins))], tk.token)
						tk.mu.Lock()
						if status == http.StatusOK {
							tk.revoked, tk.bound = time.Now(), time.Second
						}
						tk.mu.Unlock()
						statusMu.Lock()
						statuses[fmt.Sprintf("(admin revoke %d)", status)]++
						statusMu.Unlock()
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
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target(), strings.NewReader(body))
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
					r, bound := tk.revoked, tk.bound
					tk.mu.Unlock()
					if !r.IsZero() && sent.After(r.Add(bound+time.Second)) {
						falseAccepts.Add(1)
						fail("revoked token accepted %v after revocation (allowed: %v)", sent.Sub(r), bound)
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
	t.Logf("soak: %v, %d workers, AS flapping every %v, %d gateway(s), Redis flapping every %v: %v", *soakDuration, *soakWorkers, *soakFlap, len(targets), *soakRedisFlp, *soakRedis)
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

// adminRevokeStatus revokes token through an admin API and returns the
// status (0 on a transport error).
func adminRevokeStatus(adminURL, token string) int {
	req, _ := http.NewRequest(http.MethodPost, adminURL+"/admin/revoke", strings.NewReader(`{"token":"`+token+`"}`))
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
