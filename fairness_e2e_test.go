package main

// Issue 12, on real HTTP against the whole gateway started by run():
// hostile traffic must never cost a legitimate user.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// loadClient is an HTTP client for n concurrent requests to one host.
func loadClient(n int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}, Timeout: 30 * time.Second}
}

// send posts one tools/call with token and returns the status and
// Retry-After; header adds request headers (a client address).
func send(ctx context.Context, c *http.Client, url, token string, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(fmt.Sprintf(callAdd, "add")))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// statusCounts counts answers by status, safely from many goroutines.
type statusCounts struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statusCounts) add(status int) {
	s.mu.Lock()
	if s.n == nil {
		s.n = map[int]int{}
	}
	s.n[status]++
	s.mu.Unlock()
}

func (s *statusCounts) get(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[status]
}

func (s *statusCounts) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := 0
	for _, v := range s.n {
		t += v
	}
	return t
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.n)
}

// TestGarbageFloodFromAUsersAddress: a garbage flood from the very address
// of a user whose cached answer keeps expiring (CACHE_MAX_TTL=3s) for 10s:
// the user's token is known, so its re-checks are never rate-limited and
// go ahead of the garbage; the user gets 200 on at least 99% of requests.
func TestGarbageFloodFromAUsersAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s flood")
	}
	const floodFor, workers = 10 * time.Second, 8
	as, g := externalAS(t, map[string]string{"CACHE_MAX_TTL": "3s", "LOG_LEVEL": "warn"})
	as.SetLatency(5 * time.Millisecond)
	user := as.Issue("victim", []string{"op:add"}, g.Resource, time.Hour)
	client := loadClient(workers + 1)
	if status, _, err := send(t.Context(), client, g.MCP(), user, nil); err != nil || status != 200 {
		t.Fatalf("before the flood: %d %v", status, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), floodFor)
	defer cancel()
	var garbage statusCounts
	var wg sync.WaitGroup
	var n atomic.Int64
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				status, _, err := send(ctx, client, g.MCP(), fmt.Sprintf("garbage-%d", n.Add(1)), nil)
				if err == nil {
					garbage.add(status)
				}
			}
		})
	}
	var honest statusCounts
	callsBefore := as.Calls()
	for ctx.Err() == nil {
		status, _, err := send(ctx, client, g.MCP(), user, nil)
		if err != nil {
			break // the flood's end
		}
		honest.add(status)
		time.Sleep(10 * time.Millisecond) // a user's pace
	}
	wg.Wait()
	ok := float64(honest.get(200)) / float64(honest.total())
	t.Logf("honest user: %d requests, %s, %.2f%% 200; garbage: %d requests, %s; introspection calls during the flood: %d",
		honest.total(), &honest, 100*ok, garbage.total(), &garbage, as.Calls()-callsBefore)
	if honest.total() < 100 || ok < 0.99 {
		t.Errorf("honest user got 200 on %.2f%% of %d requests, want >= 99%%", 100*ok, honest.total())
	}
	if garbage.get(http.StatusTooManyRequests) == 0 {
		t.Error("the flood was never rate-limited")
	}
	if garbage.get(200) != 0 {
		t.Errorf("%d garbage tokens accepted", garbage.get(200))
	}
}

// TestHangingASUnknownTokens: 100 unknown tokens against an authorization
// server that never answers: every one gets 503 with Retry-After within
// INTROSPECTION_TIMEOUT + 1s, none 429 (the client did nothing wrong).
func TestHangingASUnknownTokens(t *testing.T) {
	const timeout, n = 2 * time.Second, 100
	as, g := externalAS(t, map[string]string{"INTROSPECTION_TIMEOUT": timeout.String(), "LOG_LEVEL": "warn"})
	as.SetFailure(func(w http.ResponseWriter, r *http.Request) bool { <-r.Context().Done(); return true })
	client := loadClient(n)
	var wg sync.WaitGroup
	var counts statusCounts
	var slowest atomic.Int64
	var noRetryAfter atomic.Int64
	for i := range n {
		tok := as.Issue(fmt.Sprint("new-user-", i), []string{"op:add"}, g.Resource, time.Hour)
		wg.Go(func() {
			start := time.Now()
			status, retry, err := send(t.Context(), client, g.MCP(), tok, nil)
			if err != nil {
				t.Error(err)
				return
			}
			d := time.Since(start)
			for s := slowest.Load(); int64(d) > s && !slowest.CompareAndSwap(s, int64(d)); s = slowest.Load() {
			}
			counts.add(status)
			if retry == "" {
				noRetryAfter.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d unknown tokens, hanging AS: %s, slowest %v", n, &counts, time.Duration(slowest.Load()))
	if counts.get(http.StatusServiceUnavailable) != n {
		t.Errorf("statuses %s, want %d x 503", &counts, n)
	}
	if noRetryAfter.Load() != 0 {
		t.Errorf("%d answers without Retry-After", noRetryAfter.Load())
	}
	if d := time.Duration(slowest.Load()); d > timeout+time.Second {
		t.Errorf("slowest answer took %v, want <= INTROSPECTION_TIMEOUT + 1s = %v", d, timeout+time.Second)
	}
}

// TestManyValidTokensOneAddress: an MCP platform's egress address, with the
// defaults: 5,000 distinct valid tokens in about 10s get no 429 (and no
// 503): new valid tokens cost nothing.
func TestManyValidTokensOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s load")
	}
	const tokens, workers = 5000, 16
	as, g := externalAS(t, map[string]string{"LOG_LEVEL": "warn"})
	toks := make(chan string, tokens)
	for i := range tokens {
		toks <- as.Issue(fmt.Sprint("platform-user-", i), []string{"op:add"}, g.Resource, time.Hour)
	}
	close(toks)
	pace := rate.NewLimiter(tokens/10, 1) // 500 new tokens a second
	client := loadClient(workers)
	var counts statusCounts
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for tok := range toks {
				if pace.Wait(t.Context()) != nil {
					return
				}
				status, _, err := send(t.Context(), client, g.MCP(), tok, nil)
				if err != nil {
					t.Error(err)
					return
				}
				counts.add(status)
			}
		})
	}
	wg.Wait()
	t.Logf("%d distinct valid tokens from one address in %v: %s; introspection calls %d", tokens, time.Since(start).Round(time.Millisecond), &counts, as.Calls())
	if counts.get(200) != tokens {
		t.Errorf("statuses %s, want %d x 200 (no 429, no 503)", &counts, tokens)
	}
}

// TestRevokedTokenCannotOutliveCacheByShedding: with STALE_IF_ERROR on and
// two introspection slots, the holder of a revoked token keeps the slots
// full of unknown tokens the authorization server never answers. Load
// shedding is not an authorization server failure, and a known token's
// re-check has a slot kept for it: the revoked token is refused within
// CACHE_MAX_TTL (plus one re-check), never served stale.
func TestRevokedTokenCannotOutliveCacheByShedding(t *testing.T) {
	const ttl = time.Second
	as, g := externalAS(t, map[string]string{
		"CACHE_MAX_TTL": ttl.String(), "STALE_IF_ERROR": "1m", "INTROSPECTION_MAX_CONCURRENCY": "2",
		"INTROSPECTION_TIMEOUT": "2s", "LOG_LEVEL": "warn",
	})
	as.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.PostForm.Get("token"), "hang-") {
			<-r.Context().Done()
			return true
		}
		return false
	})
	tok := as.Issue("mallory", []string{"op:add"}, g.Resource, time.Hour)
	client := loadClient(20)
	if status, _, err := send(t.Context(), client, g.MCP(), tok, nil); err != nil || status != 200 {
		t.Fatalf("before revocation: %d %v", status, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var n atomic.Int64
	for range 16 { // keep every slot the flood may take busy
		wg.Go(func() {
			for ctx.Err() == nil {
				_, _, _ = send(ctx, client, g.MCP(), fmt.Sprint("hang-", n.Add(1)), nil)
			}
		})
	}
	as.Revoke(tok)
	revoked := time.Now()
	for {
		status, _, err := send(t.Context(), client, g.MCP(), tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusUnauthorized {
			t.Logf("revoked token refused %v after revocation (CACHE_MAX_TTL %v), the slots kept full", time.Since(revoked).Round(time.Millisecond), ttl)
			break
		}
		if status == 200 && time.Since(revoked) > ttl+500*time.Millisecond {
			t.Fatalf("revoked token still accepted %v after revocation (CACHE_MAX_TTL %v)", time.Since(revoked), ttl)
		}
		if time.Since(revoked) > ttl+5*time.Second {
			t.Fatalf("revoked token not refused %v after revocation: last status %d", time.Since(revoked), status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(g.Logs.String(), "serving stale introspection answer") {
		t.Error("a stale answer was served while the gateway was only shedding load")
	}
}

// listenBody is a 2026-07-28 subscriptions/listen (SEP-2575): an event
// stream that stays open, in JSON mode too.
const listenBody = `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"notifications":{"toolsListChanged":true}}}`

// listen opens a subscriptions/listen stream with token; a 200 is read up
// to its first event, so it is open on the server. The caller closes it.
func listen(t *testing.T, g *gatewayUnderTest, token string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.MCP(), strings.NewReader(listenBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 200 {
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
	}
	return resp
}

// TestStreamsBoundedPerUser: in stateless mode (the default) one user's
// subscriptions/listen streams are bounded (429), another user's are not;
// and a stream ends when its token expires.
func TestStreamsBoundedPerUser(t *testing.T) {
	as, g := externalAS(t, map[string]string{"MCP_MAX_STREAMS_PER_USER": "2", "CLOCK_SKEW": "0s"})
	alice := as.Issue("alice", nil, g.Resource, time.Hour)
	alice2 := as.Issue("alice", []string{"op"}, g.Resource, time.Hour)
	bob := as.Issue("bob", nil, g.Resource, time.Hour)
	for i, step := range []struct {
		token string
		want  int
	}{{alice, 200}, {alice2, 200}, {alice, 429}, {bob, 200}} {
		resp := listen(t, g, step.token)
		defer resp.Body.Close()
		if resp.StatusCode != step.want {
			t.Fatalf("step %d: %d, want %d", i, resp.StatusCode, step.want)
		}
		if step.want != 200 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("step %d: no Retry-After", i)
		}
	}
	// A token that expires in ~2s: its stream ends then (exp has
	// one-second resolution).
	short := as.Issue("carol", nil, g.Resource, 2*time.Second)
	opened := time.Now()
	resp := listen(t, g, short)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("short-lived token: %d", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // returns when the server ends the stream
	if d := time.Since(opened); d > 4*time.Second {
		t.Errorf("stream ended %v after opening, its token expired within 2s", d)
	}
}

// TestSessionsBoundedPerUser: in stateful mode one user cannot hold every
// session: past MCP_MAX_SESSIONS_PER_USER they get 429, and others still
// open sessions.
func TestSessionsBoundedPerUser(t *testing.T) {
	as, g := externalAS(t, map[string]string{"MCP_STATELESS": "false", "MCP_MAX_SESSIONS": "5", "MCP_MAX_SESSIONS_PER_USER": "2"})
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	mallory := as.Issue("mallory", nil, g.Resource, time.Hour)
	for i, want := range []int{200, 200, 429, 429} {
		r := post(t, g.MCP(), init, bearer(mallory))
		if r.Status != want {
			t.Fatalf("mallory's session %d: %d, want %d; %s", i, r.Status, want, r.Body)
		}
		if want == 429 && (r.Header.Get("Retry-After") == "" || r.json(t)["error"] != "too_many_sessions_for_user") {
			t.Errorf("429 without Retry-After or code: %v %s", r.Header, r.Body)
		}
	}
	for i, want := range []int{200, 200, 200, 503} {
		tok := as.Issue(fmt.Sprint("user-", i), nil, g.Resource, time.Hour)
		r := post(t, g.MCP(), init, bearer(tok))
		if r.Status != want {
			t.Fatalf("user-%d: %d, want %d; %s", i, r.Status, want, r.Body)
		}
	}
}

// tunnel is a reverse proxy on loopback that forwards to target and keeps
// the public Host the client used, as ngrok or cloudflared do.
func tunnel(t *testing.T, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // keep the public Host
	}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

// through sends a request through the tunnel with a public Host.
func through(t *testing.T, tun *httptest.Server, method, path, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, tun.URL+path, strings.NewReader(fmt.Sprintf(callAdd, "add")))
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := tun.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDevModeBehindTunnel: development mode listens on loopback, but a
// tunnel on the same machine keeps the public Host: without
// DEV_AUTH_ALLOW_PUBLIC every route, the development authorization
// server's included, refuses it; with it, the server answers and warns.
func TestDevModeBehindTunnel(t *testing.T) {
	const public = "calc-dev.tunnel.example"
	paths := []struct{ method, path string }{
		{"POST", "/mcp"}, {"GET", "/dev-auth/"}, {"POST", "/dev-auth/register"}, {"GET", "/dev-auth/authorize"},
		{"GET", "/.well-known/oauth-authorization-server/dev-auth"}, {"GET", "/.well-known/oauth-protected-resource/mcp"},
		{"GET", "/healthz"}, {"GET", "/"},
	}
	t.Run("without DEV_AUTH_ALLOW_PUBLIC", func(t *testing.T) {
		g := startGateway(t, nil)
		tun := tunnel(t, g.BaseURL)
		for _, p := range paths {
			if status, body := through(t, tun, p.method, p.path, public); status != http.StatusForbidden || !strings.Contains(body, "forbidden_host") {
				t.Errorf("%s %s through the tunnel: %d %.120s, want 403 forbidden_host", p.method, p.path, status, body)
			}
			// Loopback still works through the same path.
			if status, body := through(t, tun, p.method, p.path, strings.TrimPrefix(g.BaseURL, "http://")); status == http.StatusForbidden {
				t.Errorf("%s %s on loopback: %d %.120s", p.method, p.path, status, body)
			}
		}
		if strings.Contains(g.Logs.String(), "BEYOND LOOPBACK") {
			t.Error("warned about public exposure although the server refuses it")
		}
	})
	t.Run("a public MCP_RESOURCE_URL needs the switch", func(t *testing.T) {
		_, err := loadConfig(envOf(map[string]string{"MCP_RESOURCE_URL": "https://" + public + "/mcp"}))
		if err == nil || !strings.Contains(err.Error(), "DEV_AUTH_ALLOW_PUBLIC") {
			t.Errorf("err = %v, want a refusal naming DEV_AUTH_ALLOW_PUBLIC", err)
		}
	})
	t.Run("with DEV_AUTH_ALLOW_PUBLIC", func(t *testing.T) {
		g := startGateway(t, map[string]string{"DEV_AUTH_ALLOW_PUBLIC": "true", "MCP_RESOURCE_URL": "https://" + public + "/mcp"})
		tun := tunnel(t, g.BaseURL)
		for _, p := range paths[1:] { // /mcp would introspect at the public issuer, which this test cannot reach
			if status, body := through(t, tun, p.method, p.path, public); status == http.StatusForbidden {
				t.Errorf("%s %s through the tunnel with the switch: %d %.120s", p.method, p.path, status, body)
			}
		}
		// Another host is still refused on the development server's routes
		// (DNS rebinding), as on /mcp.
		if status, _ := through(t, tun, "GET", "/dev-auth/", "evil.example"); status != http.StatusForbidden {
			t.Errorf("/dev-auth/ for a foreign Host: %d, want 403", status)
		}
		if !strings.Contains(g.Logs.String(), "BEYOND LOOPBACK") {
			t.Error("no warning that development mode is open beyond loopback")
		}
	})
}

// TestUndeclaredCapabilitiesMethodNotFound: through the whole gateway, the
// built-in server answers the methods of capabilities it does not declare
// with JSON-RPC -32601.
func TestUndeclaredCapabilitiesMethodNotFound(t *testing.T) {
	as, g := externalAS(t, nil)
	tok := as.Issue("alice", []string{"op"}, g.Resource, time.Hour)
	r := post(t, g.MCP(), `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, bearer(tok))
	caps, _ := r.json(t)["result"].(map[string]any)["capabilities"].(map[string]any)
	if caps["tools"] == nil || caps["prompts"] != nil || caps["resources"] != nil {
		t.Errorf("declared capabilities %v, want tools without prompts or resources", caps)
	}
	for _, method := range []string{"prompts/list", "resources/list", "resources/templates/list"} {
		r := post(t, g.MCP(), `{"jsonrpc":"2.0","id":2,"method":"`+method+`","params":{}}`, bearer(tok))
		e, _ := r.json(t)["error"].(map[string]any)
		if code, _ := e["code"].(float64); code != -32601 {
			t.Errorf("%s: %d %s, want JSON-RPC error -32601", method, r.Status, r.Body)
		}
	}
}

// TestReadyzGivesAReasonCode: /readyz is public: a reason code, never the
// error text (addresses, endpoints); the details are in the log.
func TestReadyzGivesAReasonCode(t *testing.T) {
	as := introspecttest.New(t)
	g := startGateway(t, map[string]string{
		"AUTH_ISSUER_URL":             as.URL,
		"INTROSPECTION_CLIENT_ID":     as.ClientID,
		"INTROSPECTION_CLIENT_SECRET": "wrong-secret",
	})
	// The gateway learns its credentials are refused from an introspection.
	tok := as.Issue("alice", nil, g.Resource, time.Hour)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("with refused credentials: %d", r.Status)
	}
	resp, err := http.Get(g.BaseURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(b) != `{"reason":"introspection_credentials_rejected","status":"unavailable"}`+"\n" {
		t.Errorf("/readyz = %d %q", resp.StatusCode, b)
	}
	if strings.Contains(string(b), "127.0.0.1") || strings.Contains(string(b), "HTTP 401") {
		t.Errorf("/readyz reveals details: %s", b)
	}
}
