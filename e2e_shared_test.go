package main

// End-to-end tests of issue 15: several gateways (in-process run()s, and
// separate processes where a restart matters) sharing one real Redis
// (sharedcache/redistest) and one fake authorization server that counts its
// calls (introspecttest).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

// sharedResource is the MCP_RESOURCE_URL of every gateway of a test
// deployment: machines behind one public URL share one audience.
const sharedResource = "http://127.0.0.1:9/mcp"

const testAdminToken = "test-admin-token-0123456789abcdef0123456789"

// deployment is one authorization server, one Redis and its gateways.
type deployment struct {
	as    *introspecttest.Server
	redis *redistest.Server
	gws   []*sharedGateway
}

type sharedGateway struct {
	*gatewayUnderTest
	Admin   string // base URL of the internal listener (METRICS_PORT)
	Metrics string
}

func (d *deployment) env(redisURL string, extra map[string]string) map[string]string {
	vars := map[string]string{
		"AUTH_ISSUER_URL":             d.as.URL,
		"INTROSPECTION_CLIENT_ID":     d.as.ClientID,
		"INTROSPECTION_CLIENT_SECRET": d.as.ClientSecret,
		"MCP_RESOURCE_URL":            sharedResource,
		"REDIS_URL":                   redisURL,
		"CACHE_MAX_TTL":               "60s",
		"CLIENT_REFUSAL_RATE":         "0", // one loopback address stands for many clients
		"ADMIN_TOKEN":                 testAdminToken,
		"CACHE_KEY_SECRET":            "e2e-cache-key-secret-0123456789",
		"LOG_LEVEL":                   "info",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// newDeployment starts n in-process gateways on one Redis.
func newDeployment(t *testing.T, n int, extra map[string]string) *deployment {
	t.Helper()
	d := &deployment{as: introspecttest.New(t), redis: redistest.Start(t)}
	for range n {
		d.start(t, d.redis.URL(), extra)
	}
	return d
}

func (d *deployment) start(t *testing.T, redisURL string, extra map[string]string) *sharedGateway {
	t.Helper()
	port := freePort(t)
	vars := d.env(redisURL, extra)
	vars["METRICS_PORT"] = fmt.Sprint(port)
	g := &sharedGateway{gatewayUnderTest: startGateway(t, vars), Admin: fmt.Sprintf("http://127.0.0.1:%d", port)}
	g.Metrics = g.Admin + "/metrics"
	waitReady(t, g.gatewayUnderTest)
	waitSynced(t, g.Metrics)
	d.gws = append(d.gws, g)
	return g
}

// waitSynced waits until a gateway has read the revocation records: its
// subscription shows as a "revocations" read in its metrics.
func waitSynced(t *testing.T, metricsURL string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(scrapeURL(t, metricsURL), `mcp_gateway_redis_calls_total{op="revocations",outcome="ok"}`) {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not read the revocation records within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func scrapeURL(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue is the value of one exposition line (name{labels}), or -1.
func metricValue(scrape, series string) float64 {
	for l := range strings.Lines(scrape) {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

func call(t *testing.T, mcpURL, token string) int {
	t.Helper()
	return post(t, mcpURL, fmt.Sprintf(callAdd, "add"), bearer(token)).Status
}

// statusOf is call without t, for goroutines: 0 on a transport error.
func statusOf(client *http.Client, mcpURL, token string) int {
	req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(fmt.Sprintf(callAdd, "add")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func adminRevoke(t *testing.T, adminURL, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, adminURL+"/admin/revoke", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls a gateway until a request with token gets want, and
// returns how long that took; it fails the test after within.
func waitStatus(t *testing.T, mcpURL, token string, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := call(t, mcpURL, token)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: status %d after %v, want %d", mcpURL, got, within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Answers are shared: a token one gateway verified is accepted by the
// others without an introspection, and so is a refusal.
func TestSharedCacheAcrossGateways(t *testing.T) {
	d := newDeployment(t, 3, nil)
	tok := d.as.Issue("alice", []string{"op"}, sharedResource, time.Hour)
	if s := call(t, d.gws[0].MCP(), tok); s != http.StatusOK {
		t.Fatalf("first gateway: %d", s)
	}
	calls := d.as.Calls()
	for i, g := range d.gws[1:] {
		if s := call(t, g.MCP(), tok); s != http.StatusOK {
			t.Fatalf("gateway %d: %d", i+1, s)
		}
	}
	if d.as.Calls() != calls {
		t.Errorf("the other gateways introspected %d times, want 0", d.as.Calls()-calls)
	}
	if call(t, d.gws[0].MCP(), "never-issued") != http.StatusUnauthorized {
		t.Fatal("unknown token accepted")
	}
	calls = d.as.Calls()
	for _, g := range d.gws[1:] {
		if call(t, g.MCP(), "never-issued") != http.StatusUnauthorized {
			t.Fatal("unknown token accepted")
		}
	}
	if d.as.Calls() != calls {
		t.Errorf("a refusal was not shared: %d more introspections", d.as.Calls()-calls)
	}
	scrape := scrapeURL(t, d.gws[1].Metrics)
	if metricValue(scrape, "mcp_gateway_cache_shared_answers_total") != 2 {
		t.Errorf("shared answers on gateway 1:\n%s", grepLines(scrape, "shared_answers"))
	}
}

// One new token in a burst of 500 requests spread over three gateways
// costs exactly one introspection.
func TestBurstAcrossGatewaysOneIntrospection(t *testing.T) {
	// REDIS_TIMEOUT is generous: 500 requests at once on a loaded test
	// machine may hold a Redis call past 50 ms, and this test is about
	// coalescing, not timeouts.
	d := newDeployment(t, 3, map[string]string{"LOG_LEVEL": "warn", "REDIS_TIMEOUT": "2s"})
	d.as.SetLatency(50 * time.Millisecond)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200, MaxConnsPerHost: 200}}
	defer client.CloseIdleConnections()
	for round := range 3 {
		tok := d.as.Issue(fmt.Sprint("burst-", round), []string{"op"}, sharedResource, time.Hour)
		before := d.as.Calls()
		var wg sync.WaitGroup
		var bad atomic.Int64
		start := make(chan struct{})
		for i := range 500 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if statusOf(client, d.gws[i%3].MCP(), tok) != http.StatusOK {
					bad.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := d.as.Calls() - before; n != 1 || bad.Load() != 0 {
			t.Fatalf("round %d: %d introspections (want exactly 1), %d requests not 200", round, n, bad.Load())
		}
	}
}

// A revocation at one gateway's admin API (by token, subject or client)
// is honoured by every gateway within a second, although each had the
// token cached as good for another minute.
func TestRevocationReachesEveryGatewayWithin1s(t *testing.T) {
	d := newDeployment(t, 3, nil)
	for _, tc := range []struct{ kind, body string }{
		{"token", ""}, {"sub", `{"sub":"sub-user"}`}, {"client_id", `{"client_id":"client-app"}`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			tok := "tok-" + tc.kind + "-" + fmt.Sprint(time.Now().UnixNano())
			d.as.AddToken(tok, map[string]any{"sub": tc.kind + "-user", "client_id": "client-" + map[bool]string{true: "app", false: "other"}[tc.kind == "client_id"],
				"aud": sharedResource, "scope": "op", "exp": time.Now().Add(time.Hour).Unix(), "token_type": "Bearer"})
			for _, g := range d.gws {
				if s := call(t, g.MCP(), tok); s != http.StatusOK {
					t.Fatalf("warm-up: %d", s)
				}
			}
			// Withdrawn at the authorization server: the caches still
			// say yes (for up to CACHE_MAX_TTL) ...
			d.as.Revoke(tok)
			if s := call(t, d.gws[2].MCP(), tok); s != http.StatusOK {
				t.Fatalf("before the revocation: %d, want the cached 200", s)
			}
			body := tc.body
			if body == "" {
				body = `{"token":"` + tok + `"}`
			}
			// ... until the admin revokes it at one machine.
			status, resp := adminRevoke(t, d.gws[0].Admin, "Bearer "+testAdminToken, body)
			if status != http.StatusOK || !strings.Contains(resp, `"scope":"deployment"`) {
				t.Fatalf("admin: %d %s", status, resp)
			}
			if s := call(t, d.gws[0].MCP(), tok); s != http.StatusUnauthorized {
				t.Fatalf("the revoking gateway: %d, want 401 at once", s)
			}
			for i, g := range d.gws[1:] {
				took := waitStatus(t, g.MCP(), tok, http.StatusUnauthorized, time.Second)
				t.Logf("gateway %d refused the token %v after the revocation", i+1, took.Round(time.Millisecond))
			}
		})
	}
	scrape := scrapeURL(t, d.gws[1].Metrics)
	for _, kind := range []string{"token", "sub", "client_id"} {
		if v := metricValue(scrape, fmt.Sprintf(`mcp_gateway_revocations_applied_total{kind=%q,source="redis"}`, kind)); v != 1 {
			t.Errorf("revocations applied (%s) on gateway 1 = %v", kind, v)
		}
	}
}

// gatewayProc is a gateway running as a separate process.
type gatewayProc struct {
	cmd     *exec.Cmd
	BaseURL string
	done    chan error
}

// startGatewayProcess runs the gateway binary (this test binary as main)
// with env and waits until it listens.
func startGatewayProcess(t *testing.T, env map[string]string) *gatewayProc {
	t.Helper()
	list := []string{"HOST=127.0.0.1", "PORT=0", "LOG_FORMAT=json"}
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	cmd := gatewayProcess(t, list...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gatewayProc{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	select {
	case a := <-addr:
		p.BaseURL = "http://" + a
	case err := <-p.done:
		t.Fatalf("gateway process exited: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("gateway process did not start within 15s")
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit (idempotent).
func (p *gatewayProc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil || p.done == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("gateway process exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Error("gateway process did not stop within 15s")
	}
	p.done = nil
}

// A machine that was down while a revocation was made honours it when it
// comes back: it reads the revocation records from Redis, so the answer
// Redis still holds (verified before the revocation) is not used.
func TestRestartedGatewayHonoursRevocation(t *testing.T) {
	d := newDeployment(t, 1, nil)
	env := d.env(d.redis.URL(), nil)
	delete(env, "ADMIN_TOKEN")
	p := startGatewayProcess(t, env)
	mcpURL := p.BaseURL + "/mcp"

	tok := d.as.Issue("rita", []string{"op"}, sharedResource, time.Hour)
	if s := call(t, mcpURL, tok); s != http.StatusOK {
		t.Fatalf("warm-up: %d", s)
	}
	p.stop(t)

	d.as.Revoke(tok)
	if status, resp := adminRevoke(t, d.gws[0].Admin, "Bearer "+testAdminToken, `{"sub":"rita"}`); status != http.StatusOK {
		t.Fatalf("admin: %d %s", status, resp)
	}
	calls := d.as.Calls()
	p = startGatewayProcess(t, env)
	if s := call(t, p.BaseURL+"/mcp", tok); s != http.StatusUnauthorized {
		t.Fatalf("the restarted gateway answered %d, want 401: it used an answer verified before the revocation", s)
	}
	if d.as.Calls() != calls+1 {
		t.Errorf("the restarted gateway made %d introspections, want 1", d.as.Calls()-calls)
	}
}

// Redis killed and restarted, and the authorization server failing, in the
// middle of a run: every answer is right (never 200 for a bad token),
// nothing is a 5xx but the 503s the authorization server's failure causes,
// and /readyz stays ready.
func TestRedisOutageNoWrongAnswer(t *testing.T) {
	d := newDeployment(t, 2, map[string]string{"REDIS_TIMEOUT": "50ms", "CACHE_MAX_TTL": "2s", "CACHE_NEGATIVE_TTL": "1s", "INTROSPECTION_TIMEOUT": "1s"})
	var good, bad []string
	for i := range 20 {
		good = append(good, d.as.Issue(fmt.Sprint("user-", i), []string{"op"}, sharedResource, time.Hour))
		bad = append(bad, fmt.Sprint("bad-token-", i))
	}
	var asFailing atomic.Bool
	d.as.SetFailure(func(w http.ResponseWriter, _ *http.Request) bool {
		if asFailing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}
		return false
	})

	type tally struct {
		mu       sync.Mutex
		statuses map[string]int
		wrong    []string
	}
	tl := &tally{statuses: map[string]int{}}
	phase := atomic.Value{}
	phase.Store("healthy")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				isGood := (i+w)%2 == 0
				tok := bad[(i*7+w)%len(bad)]
				if isGood {
					tok = good[(i*3+w)%len(good)]
				}
				failing := asFailing.Load()
				s := statusOf(client, d.gws[(i/2+w)%2].MCP(), tok)
				ph := phase.Load().(string)
				ok := map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[isGood]
				tl.mu.Lock()
				tl.statuses[fmt.Sprintf("%s/%v/%d", ph, isGood, s)]++
				switch {
				case s == ok:
				case s == http.StatusServiceUnavailable && (failing || asFailing.Load() || ph == "as-down"):
				default:
					if len(tl.wrong) < 10 {
						tl.wrong = append(tl.wrong, fmt.Sprintf("phase %s, good=%v: %d", ph, isGood, s))
					}
				}
				tl.mu.Unlock()
			}
		}()
	}
	sleep := func(d time.Duration) { <-time.After(d) } // phases of an external process's life
	sleep(500 * time.Millisecond)
	phase.Store("redis-down")
	d.redis.Kill()
	sleep(500 * time.Millisecond)
	for _, g := range d.gws {
		deadline := time.Now().Add(3 * time.Second)
		for metricValue(scrapeURL(t, g.Metrics), "mcp_gateway_redis_circuit_open") != 1 {
			if time.Now().After(deadline) {
				t.Errorf("redis_circuit_open is not 1 while Redis is down:\n%s", grepLines(scrapeURL(t, g.Metrics), "redis_c"))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, g := range d.gws {
		resp, err := http.Get(g.BaseURL + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("/readyz while Redis is down: %v %v", resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	phase.Store("redis-back")
	if err := d.redis.Start(); err != nil {
		t.Fatal(err)
	}
	sleep(1500 * time.Millisecond)
	phase.Store("as-down")
	asFailing.Store(true)
	sleep(1 * time.Second)
	asFailing.Store(false)
	phase.Store("healthy-again")
	sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	t.Logf("statuses (phase/good/status): %v", tl.statuses)
	if len(tl.wrong) > 0 {
		t.Errorf("wrong answers: %v", tl.wrong)
	}
	for k, n := range tl.statuses {
		if strings.HasSuffix(k, "/200") && strings.Contains(k, "/false/") {
			t.Errorf("%d false accepts (%s)", n, k)
		}
	}
	if tl.statuses["redis-down/true/200"] == 0 || tl.statuses["redis-back/true/200"] == 0 {
		t.Error("no request was served while Redis was down or after it came back")
	}
	if !strings.Contains(d.gws[0].Logs.String(), "Redis unavailable") {
		t.Error("the logs do not say Redis is unavailable")
	}
	if metricValue(scrapeURL(t, d.gws[0].Metrics), "mcp_gateway_redis_circuit_open") != 0 {
		t.Error("redis_circuit_open did not go back to 0")
	}
}

// A slow Redis (every byte held 2s by a proxy) costs a request for a new
// token at most about REDIS_TIMEOUT.
func TestSlowRedisBoundedByTimeout(t *testing.T) {
	d := newDeployment(t, 0, nil)
	proxy := redistest.NewProxy(t, d.redis.Addr)
	g := d.start(t, "redis://"+proxy.Addr, map[string]string{"REDIS_TIMEOUT": "100ms"})
	measure := func() time.Duration {
		var worst time.Duration
		for i := range 5 {
			tok := d.as.Issue(fmt.Sprint("slow-", i, time.Now().UnixNano()), []string{"op"}, sharedResource, time.Hour)
			start := time.Now()
			if s := call(t, g.MCP(), tok); s != http.StatusOK {
				t.Fatalf("status %d", s)
			}
			worst = max(worst, time.Since(start))
		}
		return worst
	}
	healthy := measure()
	proxy.SetDelay(2 * time.Second)
	slow := measure()
	t.Logf("worst new-token request: %v with a healthy Redis, %v with a 2s-slow one (REDIS_TIMEOUT=100ms)", healthy, slow)
	if limit := healthy + 100*time.Millisecond + 100*time.Millisecond; slow > limit {
		t.Errorf("slow Redis: %v, want at most %v", slow, limit)
	}
}

// OpenID Shared Signals: a SET pushed to one gateway revokes its subject
// on every gateway; a SET that fails a check changes nothing.
func TestSSFRevokesAcrossGateways(t *testing.T) {
	tr := ssftest.Start(t)
	d := newDeployment(t, 0, nil)
	extra := map[string]string{"SSF_ISSUER": tr.Issuer()}
	d.start(t, d.redis.URL(), extra)
	d.start(t, d.redis.URL(), extra)
	push := func(set string, origin bool) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, d.gws[0].BaseURL+SSFPath, strings.NewReader(set))
		req.Header.Set("Content-Type", ssf.ContentType)
		if origin {
			req.Header.Set("Origin", "https://transmitter.example") // not an allowed origin of /mcp
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name    string
		claims  map[string]any
		subject map[string]any
	}{
		{"opaque", map[string]any{"sub": "sally"}, ssftest.Opaque("sally")},
		{"iss_sub", map[string]any{"sub": "ivan"}, ssftest.IssSub(d.as.URL, "ivan")},
		{"email", map[string]any{"sub": "erin-id", "email": "erin@example.com"}, ssftest.Email("Erin@Example.com")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := "ssf-" + tc.name
			claims := map[string]any{"aud": sharedResource, "scope": "op", "exp": time.Now().Add(time.Hour).Unix()}
			for k, v := range tc.claims {
				claims[k] = v
			}
			d.as.AddToken(tok, claims)
			for _, g := range d.gws {
				if s := call(t, g.MCP(), tok); s != http.StatusOK {
					t.Fatalf("warm-up %d", s)
				}
			}
			d.as.Revoke(tok)
			// Refused SETs change nothing.
			// A key nobody published, with the transmitter's kid.
			forged := ssftest.MustKey(t, "RS256", "key-1")
			stale := tr.Claims(sharedResource, ssf.EventSessionRevoked, tc.subject)
			stale["iat"] = time.Now().Add(-time.Hour).Unix()
			for _, set := range []string{
				signWith(t, forged, tr.Claims(sharedResource, ssf.EventSessionRevoked, tc.subject)),
				tr.MustSign(t, tr.Claims("https://another.example/mcp", ssf.EventSessionRevoked, tc.subject)),
				tr.MustSign(t, stale),
			} {
				if s := push(set, false); s != http.StatusBadRequest {
					t.Fatalf("a bad SET: %d, want 400", s)
				}
			}
			if s := call(t, d.gws[1].MCP(), tok); s != http.StatusOK {
				t.Fatalf("a refused SET revoked the subject: %d", s)
			}
			if s := push(tr.MustSign(t, tr.Claims(sharedResource, ssf.EventSessionRevoked, tc.subject)), true); s != http.StatusAccepted {
				t.Fatalf("push: %d, want 202", s)
			}
			took := waitStatus(t, d.gws[1].MCP(), tok, http.StatusUnauthorized, time.Second)
			t.Logf("the other gateway refused the subject's token %v after the push", took.Round(time.Millisecond))
		})
	}
	scrape := scrapeURL(t, d.gws[0].Metrics)
	if metricValue(scrape, `mcp_gateway_ssf_pushes_total{outcome="accepted"}`) != 3 ||
		metricValue(scrape, `mcp_gateway_ssf_pushes_total{outcome="signature"}`) != 3 {
		t.Errorf("ssf metrics:\n%s", grepLines(scrape, "ssf_pushes_total"))
	}
	if !strings.Contains(d.gws[0].Logs.String(), `"path":"/ssf/events"`) && !strings.Contains(d.gws[0].Logs.String(), "/ssf/events") {
		t.Error("SSF pushes are not in the request log")
	}
}

func signWith(t *testing.T, k ssftest.Key, claims map[string]any) string {
	t.Helper()
	s, err := ssftest.SignWith(k, claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The admin API answers only on the internal listener, and only with the
// right ADMIN_TOKEN; it does not exist on the public port.
func TestAdminAPIOnlyOnInternalListener(t *testing.T) {
	d := newDeployment(t, 1, nil)
	g := d.gws[0]
	for _, auth := range []string{"", "Bearer wrong-token-0123456789abcdef0123456789", "Basic " + testAdminToken} {
		if s, _ := adminRevoke(t, g.Admin, auth, `{"sub":"x"}`); s != http.StatusUnauthorized {
			t.Errorf("Authorization %.20q: %d, want 401", auth, s)
		}
	}
	if !strings.Contains(g.Logs.String(), "admin API: request refused") {
		t.Error("refusals are not logged")
	}
	if strings.Contains(g.Logs.String(), "wrong-token") {
		t.Error("a presented admin token was logged")
	}
	for _, base := range []string{g.BaseURL, strings.Replace(g.BaseURL, "127.0.0.1", "localhost", 1)} {
		s, body := adminRevoke(t, base, "Bearer "+testAdminToken, `{"sub":"x"}`)
		if s == http.StatusOK || s == http.StatusUnauthorized || strings.Contains(body, "kind") {
			t.Errorf("public port %s: %d %s, want no admin API", base, s, body)
		}
	}
	if s, body := adminRevoke(t, g.Admin, "Bearer "+testAdminToken, `{"sub":"x"}`); s != http.StatusOK {
		t.Errorf("right token: %d %s", s, body)
	}

	// Without ADMIN_TOKEN there is no admin API at all.
	off := d.start(t, d.redis.URL(), map[string]string{"ADMIN_TOKEN": ""})
	if s, body := adminRevoke(t, off.Admin, "Bearer "+testAdminToken, `{"sub":"x"}`); s == http.StatusOK || s == http.StatusUnauthorized {
		t.Errorf("admin API without ADMIN_TOKEN: %d %s", s, body)
	}

	// ADMIN_TOKEN without METRICS_PORT, or too short, does not start.
	for _, vars := range []map[string]string{
		{"ADMIN_TOKEN": testAdminToken},
		{"ADMIN_TOKEN": "short", "METRICS_PORT": "9999"},
	} {
		env := d.env(d.redis.URL(), vars)
		if _, ok := vars["METRICS_PORT"]; !ok {
			delete(env, "METRICS_PORT")
		}
		err := run(context.Background(), nil, envOf(env), io.Discard, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN") {
			t.Errorf("%v: run = %v, want a configuration error about ADMIN_TOKEN", vars, err)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}

// listenRequest is a 2026-07-28 subscriptions/listen request: an event
// stream that stays open until the client leaves, its token expires, or a
// revocation names it.
const listenRequest = `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"notifications":{"toolsListChanged":true}}}`

// A revocation made at one machine ends the open streams of what it names
// on every machine, within a second.
func TestRevocationEndsStreamsOnEveryGateway(t *testing.T) {
	d := newDeployment(t, 2, nil)
	tok := d.as.Issue("streamer", []string{"op"}, sharedResource, time.Hour)
	other := d.as.Issue("bystander", []string{"op"}, sharedResource, time.Hour)
	open := func(token string) (*http.Response, *bufio.Reader) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.gws[1].MCP(), strings.NewReader(listenRequest))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "subscriptions/listen")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("listen: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("first event: %v", err)
		}
		return resp, br
	}
	_, stream := open(tok)
	_, bystander := open(other)
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream)
		ended <- err
	}()
	start := time.Now()
	if status, body := adminRevoke(t, d.gws[0].Admin, "Bearer "+testAdminToken, `{"sub":"streamer"}`); status != http.StatusOK {
		t.Fatalf("admin: %d %s", status, body)
	}
	select {
	case <-ended:
		t.Logf("the stream at the other gateway ended %v after the revocation", time.Since(start).Round(time.Millisecond))
	case <-time.After(time.Second):
		t.Fatal("the revoked subject's stream at the other gateway is still open after 1s")
	}
	// The bystander's stream is still open: a read waits.
	bystanderRead := make(chan error, 1)
	go func() {
		_, err := bystander.ReadByte()
		bystanderRead <- err
	}()
	select {
	case err := <-bystanderRead:
		if err != nil {
			t.Fatalf("another user's stream ended: %v", err)
		}
	case <-time.After(200 * time.Millisecond):
	}
}
