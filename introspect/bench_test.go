package introspect

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// BenchmarkVerifyMiss measures a full cache miss: one introspection of a
// token never seen before against the fake AS on loopback.
func BenchmarkVerifyMiss(b *testing.B) {
	srv := introspecttest.New(b)
	body := `{"active":true,"sub":"alice","scope":"op:add op:sub","aud":"` + testResource +
		`","client_id":"c","token_type":"Bearer","exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `}`
	srv.SetFailure(respond(200, map[string]string{"Content-Type": "application/json"}, body))
	v, _ := newTestVerifier(b, srv)
	ctx := b.Context()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := v.Verify(ctx, "miss-token-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(srv.Calls())/float64(i), "introspections/op")
}

// BenchmarkCoalescedBurst: 500 goroutines present one new token at once;
// exactly one introspection must be made per burst.
func BenchmarkCoalescedBurst(b *testing.B) {
	const burst = 500
	srv := introspecttest.New(b)
	release := holdAnswers(srv)
	v, _ := newTestVerifier(b, srv, func(c *Config) { c.Timeout = 30 * time.Second })
	var joined atomic.Int64
	v.beforeWait = func() {
		if joined.Add(1) == burst {
			release <- struct{}{} // every caller shares the call: let it answer
		}
	}
	ctx := b.Context()
	n := 0
	for b.Loop() {
		n++
		tok := srv.Issue("u", nil, testResource, time.Hour)
		joined.Store(0)
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	calls := float64(srv.Calls()) / float64(n)
	b.ReportMetric(calls, "introspections/op")
	if calls != 1 {
		b.Errorf("%v introspections per burst, want 1", calls)
	}
}

// typicalAnswer is a parsed answer shaped like a real one (Issue's claims).
func typicalAnswer(i int, now time.Time) *accesstoken.Claims {
	body := fmt.Sprintf(`{"active":true,"iss":"https://auth.example.com","sub":"user-%08d","scope":"op:add op:sub op:mult",`+
		`"aud":%q,"client_id":"mcp-client","token_type":"Bearer","exp":%d,"iat":%d}`,
		i, testResource, now.Add(time.Hour).Unix(), now.Unix())
	r, err := parseResponse([]byte(body))
	if err != nil {
		panic(err)
	}
	return r
}

// TestCacheMemoryPer100kTokens measures the heap one cached active answer
// really costs, all included (entry, TokenInfo, strings, ristretto's
// bookkeeping).
func TestCacheMemoryPer100kTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 100_000
	srv := introspecttest.New(t)
	v, clk := newTestVerifier(t, srv, func(c *Config) { c.CacheMaxBytes = 1 << 30; c.CacheMaxTTL = time.Hour })
	now := clk.Now()
	answers := make([]*accesstoken.Claims, n)
	for i := range answers {
		answers[i] = typicalAnswer(i, now)
	}
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = "token-" + strconv.Itoa(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		insertAnswer(v, tokens[i], answers[i], now)
		if i%1000 == 999 {
			v.Wait() // let ristretto drain its buffers rather than drop sets
		}
	}
	v.Wait()
	answers = nil //nolint:ineffassign // release the parsed answers before measuring
	runtime.GC()
	runtime.ReadMemStats(&after)
	cached := 0
	for _, tok := range tokens {
		if e, fresh := v.lookup(digestOf(tok), now); e != nil && fresh {
			cached++
		}
	}
	if cached < n*9/10 {
		t.Fatalf("only %d of %d entries cached", cached, n)
	}
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(cached)
	t.Logf("%d entries cached; heap per cached token: %.0f bytes (estimated cost %d)", cached, per, typicalCost(now))
	if per > 2048 {
		t.Errorf("%.0f bytes per cached token, want <= 2 KiB", per)
	}
	runtime.KeepAlive(tokens)
}

// typicalCost is the cost estimate of one typical entry, for the log.
func typicalCost(now time.Time) int64 {
	r := typicalAnswer(1, now)
	e := &entry{}
	e.setInfo(r, newInterner(nil, nil))
	return e.cost()
}

// TestCacheCostBounded inserts far more than fits: ristretto's live cost
// (added minus evicted) never exceeds CacheMaxBytes.
func TestCacheCostBounded(t *testing.T) {
	const maxBytes = 1 << 20
	c, err := newCache(maxBytes, NopObserver{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	r := typicalAnswer(0, now)
	for i := range 20_000 { // ~20x the capacity
		e := &entry{digest: *digestOf(strconv.Itoa(i))}
		e.setInfo(r, newInterner(nil, nil))
		c.SetWithTTL(cacheKey(&e.digest), e, e.cost(), time.Hour)
		if i%500 == 499 {
			c.Wait()
			if live := c.Metrics.CostAdded() - c.Metrics.CostEvicted(); live > maxBytes {
				t.Fatalf("after %d inserts the cache holds cost %d > %d", i+1, live, maxBytes)
			}
		}
	}
	c.Wait()
	live := c.Metrics.CostAdded() - c.Metrics.CostEvicted()
	if live > maxBytes || c.Metrics.KeysEvicted() == 0 {
		t.Errorf("live cost %d (max %d), %d evictions", live, maxBytes, c.Metrics.KeysEvicted())
	}
	t.Logf("live cost %d of %d, %d keys evicted", live, maxBytes, c.Metrics.KeysEvicted())
}

// BenchmarkVerifyJWTCacheHit: a JWT verified once, then served from the
// cache (AUTH_ISSUER_URL alone: JWTs only).
func BenchmarkVerifyJWTCacheHit(b *testing.B) {
	as := newJWTAS(b)
	v, _, _ := newJWTVerifier(b, as, false)
	tok := as.jwt.AccessToken("alice", []string{"op:add", "op:sub"}, testResource, time.Hour)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	v.Wait()
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyJWTMiss: a new JWT every time, verified locally and
// cached (the cache-hostile path of JWT mode), RS256.
func BenchmarkVerifyJWTMiss(b *testing.B) {
	as := newJWTAS(b)
	v, _, _ := newJWTVerifier(b, as, false)
	const n = 4096
	toks := make([]string, n)
	for i := range toks {
		toks[i] = as.jwt.AccessToken(fmt.Sprintf("user-%d", i), []string{"op:add"}, testResource, time.Hour)
	}
	ctx := b.Context()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == n {
			b.StopTimer()
			v.Close() // a fresh cache, so every Verify stays a miss
			v, _, _ = newJWTVerifier(b, as, false)
			i = 0
			b.StartTimer()
		}
		if _, err := v.Verify(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGCWithCachedTokens is one full collection (runtime.GC) of a
// process whose cache holds 0 or 50,000 typical accepted tokens. Every
// cycle marks every cached object, so the difference, divided by 50,000,
// is what one cached token adds to each cycle; the MCP SDK allocates
// about 400 KB per request (gateway BenchmarkHandlerCachedToken), so
// under load cycles are frequent, and this cost is paid by every request.
func BenchmarkGCWithCachedTokens(b *testing.B) {
	for _, n := range []int{0, 50_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := introspecttest.New(b)
			v, clk := newTestVerifier(b, srv, func(c *Config) {
				c.CacheMaxBytes = 1 << 30
				c.CacheMaxTTL = time.Hour
				c.KnownScopes = []string{"op:add", "op:sub", "op:mult", "op:div"}
			})
			now := clk.Now()
			for i := range n {
				insertAnswer(v, "token-"+strconv.Itoa(i), typicalAnswer(i, now), now)
				if i%1000 == 999 {
					v.Wait() // let ristretto drain its buffers rather than drop sets
				}
			}
			v.Wait()
			runtime.GC()
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
			}
		})
	}
}
