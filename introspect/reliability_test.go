package introspect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/time/rate"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

func TestObserver(t *testing.T) {
	srv := introspecttest.New(t)
	obs := newCountingObserver()
	v, clk := newTestVerifier(t, srv, func(c *Config) { c.Observer = obs; c.CacheMaxTTL = 10 * time.Second })
	tok := srv.Issue("u", nil, testResource, time.Hour)

	if _, err := v.Verify(t.Context(), tok); err != nil { // miss, "active"
		t.Fatal(err)
	}
	v.Wait()
	if _, err := v.Verify(t.Context(), tok); err != nil { // hit
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), "unknown"); reasonOf(err) != accesstoken.ReasonInactive { // miss, "inactive"
		t.Fatal(err)
	}
	srv.SetFailure(respond(400, nil, `{"error":"invalid_token"}`))
	_, _ = v.Verify(t.Context(), "other") // miss, "rejected"
	srv.SetFailure(respond(401, nil, ""))
	_, _ = v.Verify(t.Context(), "third") // miss, "client_auth"
	srv.SetFailure(respond(503, nil, ""))
	_, _ = v.Verify(t.Context(), "fourth") // miss, "status"
	srv.SetFailure(respond(200, nil, "nope"))
	_, _ = v.Verify(t.Context(), "fifth") // miss, "bad_response"
	srv.SetFailure(respond(404, nil, ""))
	_, _ = v.Verify(t.Context(), "sixth") // miss, "status"
	srv.SetFailure(respond(400, nil, "?"))
	_, _ = v.Verify(t.Context(), "seventh") // miss, "status"

	want := []string{"active", "inactive", "rejected", "client_auth", "status", "bad_response", "status", "status"}
	if got := obs.calls(); !slices.Equal(got, want) {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	if h, m := obs.hits.Load(), obs.misses.Load(); h != 1 || m != 8 {
		t.Errorf("hits, misses = %d, %d; want 1, 8", h, m)
	}

	_ = clk
}

// TestObserverEvictionOnCapacity fills a tiny cache: entries dropped for
// room (or refused admission) are CacheEvictions.
func TestObserverEvictionOnCapacity(t *testing.T) {
	obs := newCountingObserver()
	c, err := newCache(64<<10, obs, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 2000 {
		c.SetWithTTL(uint64(i+1), &entry{}, 1024, time.Hour)
		if i%100 == 0 {
			c.Wait()
		}
	}
	c.Wait()
	if obs.evictions.Load() == 0 {
		t.Error("no CacheEviction reported after inserting 32x the capacity")
	}
}

func TestStaleIfError(t *testing.T) {
	const maxTTL, staleFor = 10 * time.Second, 30 * time.Second
	setup := func(t *testing.T, tokenTTL time.Duration, mods ...func(*Config)) (*introspecttest.Server, *Verifier, *fakeClock, *countingObserver, *syncbuf.Buffer, string) {
		srv := introspecttest.New(t)
		obs := newCountingObserver()
		logs := &syncbuf.Buffer{}
		all := append([]func(*Config){func(c *Config) {
			c.CacheMaxTTL = maxTTL
			c.StaleIfError = staleFor
			c.Observer = obs
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		}}, mods...)
		v, clk := newTestVerifier(t, srv, all...)
		tok := srv.Issue("alice", []string{"op:add"}, testResource, tokenTTL)
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		v.Wait()
		return srv, v, clk, obs, logs, tok
	}

	t.Run("served on unavailable within the window", func(t *testing.T) {
		srv, v, clk, obs, logs, tok := setup(t, time.Hour)
		srv.SetFailure(respond(503, nil, ""))
		clk.Advance(maxTTL + staleFor - time.Second)
		info, err := v.Verify(t.Context(), tok)
		if err != nil || info.UserID != "alice" {
			t.Fatalf("Verify = %v, %v; want the stale answer", info, err)
		}
		if n := obs.stale.Load(); n != 1 {
			t.Errorf("StaleUse = %d, want 1", n)
		}
		if !strings.Contains(logs.String(), "serving stale introspection answer") || !strings.Contains(logs.String(), `"level":"WARN"`) {
			t.Errorf("stale use not logged at Warn:\n%s", logs)
		}
		if strings.Contains(logs.String(), tok) {
			t.Error("log contains the token")
		}
		if n := srv.Calls(); n != 2 {
			t.Errorf("calls = %d, want 2 (the stale answer is re-checked every time)", n)
		}
		// Past the window: the failure shows.
		clk.Advance(time.Second)
		var ue *UnavailableError
		if _, err := v.Verify(t.Context(), tok); !errors.As(err, &ue) {
			t.Fatalf("past StaleIfError: err = %v, want UnavailableError", err)
		}
		// The AS recovers: fresh again.
		srv.SetFailure(nil)
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
	t.Run("not served when shed for load", func(t *testing.T) {
		// The gateway's own shedding is not an authorization server
		// failure: a stale answer served for it would let the holder of
		// a revoked token outlive CACHE_MAX_TTL by keeping the slots full.
		srv, v, clk, obs, _, tok := setup(t, time.Hour, func(c *Config) { c.MaxConcurrency = 1 })
		v.fillSlots(1) // every slot busy
		defer v.release()
		v.shedWait = time.Millisecond
		clk.Advance(maxTTL + time.Second)
		_, err := v.Verify(t.Context(), tok)
		if !errors.Is(err, ErrOverloaded) {
			t.Fatalf("Verify = %v; want ErrOverloaded, not the stale answer", err)
		}
		if obs.stale.Load() != 0 || obs.shedCount("concurrency") != 1 {
			t.Errorf("StaleUse = %d, Shed(concurrency) = %d; want 0, 1", obs.stale.Load(), obs.shedCount("concurrency"))
		}
		if n := srv.Calls(); n != 1 {
			t.Errorf("calls = %d, want 1", n)
		}
	})
	t.Run("never past exp", func(t *testing.T) {
		// The token expires 15s from now: fresh for 10s, stale at most
		// until exp (not until 40s).
		srv, v, clk, obs, _, tok := setup(t, 15*time.Second)
		srv.SetFailure(respond(503, nil, ""))
		clk.Advance(14 * time.Second)
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("before exp: %v", err)
		}
		// exp is a whole second; step to just past it (no skew: strict).
		clk.ns.Store((clk.Now().Unix() + 2) * int64(time.Second))
		if _, err := v.Verify(t.Context(), tok); err == nil {
			t.Fatal("stale answer served at or past exp")
		}
		if n := obs.stale.Load(); n != 1 {
			t.Errorf("StaleUse = %d, want 1", n)
		}
	})
	for _, tc := range []struct {
		name    string
		failure func(http.ResponseWriter, *http.Request) bool
		want    func(error) bool
	}{
		{"not on client auth", respond(401, nil, ""), func(err error) bool { var e *ClientAuthError; return errors.As(err, &e) }},
		{"not on 400 verdict", respond(400, nil, `{"error":"invalid_token"}`), func(err error) bool { return reasonOf(err) == accesstoken.ReasonRejected }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, v, clk, obs, _, tok := setup(t, time.Hour)
			srv.SetFailure(tc.failure)
			clk.Advance(maxTTL + time.Second)
			if _, err := v.Verify(t.Context(), tok); !tc.want(err) {
				t.Fatalf("err = %v", err)
			}
			if n := obs.stale.Load(); n != 0 {
				t.Errorf("StaleUse = %d, want 0", n)
			}
		})
	}
	for _, negTTL := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("inactive drops the stale entry (negative ttl %v)", negTTL), func(t *testing.T) {
			srv, v, clk, obs, _, tok := setup(t, time.Hour, func(c *Config) { c.CacheNegativeTTL = negTTL })
			srv.Revoke(tok)
			clk.Advance(maxTTL + time.Second)
			if _, err := v.Verify(t.Context(), tok); reasonOf(err) != accesstoken.ReasonInactive {
				t.Fatalf("err = %v, want inactive", err)
			}
			v.Wait()
			clk.Advance(DefaultCacheNegativeTTL) // past any negative entry
			srv.SetFailure(respond(503, nil, ""))
			var ue *UnavailableError
			if _, err := v.Verify(t.Context(), tok); !errors.As(err, &ue) {
				t.Fatalf("err = %v, want UnavailableError (no stale answer after inactive)", err)
			}
			if n := obs.stale.Load(); n != 0 {
				t.Errorf("StaleUse = %d, want 0", n)
			}
		})
	}
	t.Run("negative answers never stale", func(t *testing.T) {
		srv, v, clk, obs, _, _ := setup(t, time.Hour)
		srv.AddToken("elsewhere", map[string]any{"aud": "https://other.example.com"})
		if _, err := v.Verify(t.Context(), "elsewhere"); reasonOf(err) != accesstoken.ReasonAudience {
			t.Fatal(err)
		}
		v.Wait()
		clk.Advance(DefaultCacheNegativeTTL)
		srv.SetFailure(respond(503, nil, ""))
		var ue *UnavailableError
		if _, err := v.Verify(t.Context(), "elsewhere"); !errors.As(err, &ue) {
			t.Fatalf("err = %v, want UnavailableError", err)
		}
		if obs.stale.Load() != 0 {
			t.Error("a refusal was served stale")
		}
	})
	t.Run("off by default", func(t *testing.T) {
		srv, v, clk, obs, _, tok := setup(t, time.Hour, func(c *Config) { c.StaleIfError = 0 })
		srv.SetFailure(respond(503, nil, ""))
		clk.Advance(maxTTL)
		var ue *UnavailableError
		if _, err := v.Verify(t.Context(), tok); !errors.As(err, &ue) {
			t.Fatalf("err = %v, want UnavailableError", err)
		}
		if obs.stale.Load() != 0 {
			t.Error("stale answer served with StaleIfError off")
		}
	})
}

// refusingEndpoint returns the URL of a loopback port nobody listens on,
// and a function that starts serving h there.
func refusingEndpoint(t *testing.T) (string, func(h http.Handler)) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/introspect", func(h http.Handler) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("re-listen on %s: %v", addr, err)
			return
		}
		s := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
		s.Start()
		t.Cleanup(s.Close)
	}
}

// activeHandler answers every introspection with an active token for
// testResource, counting calls.
func activeHandler(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"active":true,"sub":"u","aud":%q}`, testResource)
	})
}

func TestRetry(t *testing.T) {
	newV := func(t *testing.T, endpoint string, obs Observer) *Verifier {
		v, err := New(t.Context(), Config{Endpoint: endpoint, ClientID: "c", ClientSecret: "s",
			Audiences: []string{testResource}, Timeout: 2 * time.Second, Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		return v
	}
	t.Run("connection refused then works: exactly one retry", func(t *testing.T) {
		endpoint, serve := refusingEndpoint(t)
		var calls atomic.Int64
		obs := newCountingObserver()
		v := newV(t, endpoint, obs)
		retries := 0
		v.beforeRetry = func() { retries++; serve(activeHandler(&calls)) }
		start := time.Now()
		if _, err := v.Verify(t.Context(), "tok"); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if retries != 1 || calls.Load() != 1 {
			t.Errorf("retries = %d, server calls = %d; want 1, 1", retries, calls.Load())
		}
		if got := obs.calls(); !slices.Equal(got, []string{"network", "active"}) {
			t.Errorf("outcomes = %q", got)
		}
		if d := time.Since(start); d < retryJitterMin {
			t.Errorf("retried after %v, want a pause of at least %v", d, retryJitterMin)
		}
	})
	t.Run("refused twice: one retry, then unavailable", func(t *testing.T) {
		endpoint, _ := refusingEndpoint(t)
		obs := newCountingObserver()
		v := newV(t, endpoint, obs)
		var ue *UnavailableError
		if _, err := v.Verify(t.Context(), "tok"); !errors.As(err, &ue) {
			t.Fatalf("err = %v", err)
		}
		if got := obs.calls(); !slices.Equal(got, []string{"network", "network"}) {
			t.Errorf("outcomes = %q, want two network attempts", got)
		}
	})
	t.Run("connection closed before any response: retried", func(t *testing.T) {
		var calls atomic.Int64
		var conns atomic.Int64
		s := httptest.NewUnstartedServer(activeHandler(&calls))
		s.Config.ConnState = func(c net.Conn, st http.ConnState) {
			if st == http.StateNew && conns.Add(1) == 1 {
				c.Close() // the first connection dies before answering
			}
		}
		s.Start()
		defer s.Close()
		obs := newCountingObserver()
		v := newV(t, s.URL+"/introspect", obs)
		if _, err := v.Verify(t.Context(), "tok"); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got := obs.calls(); !slices.Equal(got, []string{"network", "active"}) || calls.Load() != 1 {
			t.Errorf("outcomes = %q, handler calls = %d", got, calls.Load())
		}
	})
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		outcome string
	}{
		{"500 not retried", 500, "", "status"},
		{"503 not retried", 503, "", "status"},
		{"400 not retried", 400, `{"error":"invalid_request"}`, "rejected"},
		{"401 not retried", 401, "", "client_auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := introspecttest.New(t)
			srv.SetFailure(respond(tc.status, nil, tc.body))
			obs := newCountingObserver()
			v, _ := newTestVerifier(t, srv, func(c *Config) { c.Observer = obs })
			v.beforeRetry = func() { t.Error("retried") }
			if _, err := v.Verify(t.Context(), "tok"); err == nil {
				t.Fatal("no error")
			}
			if n := srv.Calls(); n != 1 {
				t.Errorf("calls = %d, want exactly 1", n)
			}
			if got := obs.calls(); !slices.Equal(got, []string{tc.outcome}) {
				t.Errorf("outcomes = %q", got)
			}
		})
	}
	t.Run("timeout not retried", func(t *testing.T) {
		srv := introspecttest.New(t)
		srv.SetLatency(5 * time.Second)
		v, _ := newTestVerifier(t, srv, func(c *Config) { c.Timeout = 100 * time.Millisecond })
		v.beforeRetry = func() { t.Error("retried") }
		_, _ = v.Verify(t.Context(), "tok")
		if n := srv.Calls(); n != 1 {
			t.Errorf("calls = %d, want 1", n)
		}
	})
	t.Run("no retry when the pause does not fit the deadline", func(t *testing.T) {
		endpoint, _ := refusingEndpoint(t)
		v := newV(t, endpoint, nil)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		ctx2, cancel2 := context.WithDeadline(ctx, time.Now().Add(retryJitterMin/2))
		defer cancel2()
		if v.waitRetry(ctx2) {
			t.Error("waitRetry waited past the deadline")
		}
	})
}

func TestRetryable(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name        string
		ctx         context.Context
		err         error
		gotResponse bool
		want        bool
	}{
		{"dial", ctx, &net.OpError{Op: "dial", Err: errors.New("x")}, false, true},
		{"refused", ctx, fmt.Errorf("post: %w", syscall.ECONNREFUSED), false, true},
		{"reset", ctx, fmt.Errorf("post: %w", syscall.ECONNRESET), false, true},
		{"closed before response", ctx, errors.New("http: server closed idle connection"), false, true},
		{"after response began", ctx, io.ErrUnexpectedEOF, true, false},
		{"timeout", ctx, context.DeadlineExceeded, false, false},
		{"net timeout", ctx, &net.OpError{Op: "dial", Err: timeoutErr{}}, false, false},
		{"ctx done", cancelled, &net.OpError{Op: "dial", Err: errors.New("x")}, false, false},
		{"certificate", ctx, &tls.CertificateVerificationError{Err: errors.New("x509")}, false, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.ctx, tt.err, tt.gotResponse); got != tt.want {
			t.Errorf("%s: retryable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestLoadShedding(t *testing.T) {
	t.Run("overloaded when all slots are busy", func(t *testing.T) {
		srv := introspecttest.New(t)
		release := make(chan struct{})
		entered := make(chan struct{}, 10)
		srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
			entered <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return false
		})
		obs := newCountingObserver()
		// 3 slots: 2 for unknown tokens, 1 kept for known ones.
		v, _ := newTestVerifier(t, srv, func(c *Config) { c.MaxConcurrency = 3; c.Observer = obs })
		v.shedWait = 10 * time.Millisecond
		a := srv.Issue("a", nil, testResource, time.Hour)
		b := srv.Issue("b", nil, testResource, time.Hour)
		c := srv.Issue("c", nil, testResource, time.Hour)
		var wg sync.WaitGroup
		for _, tok := range []string{a, b} {
			wg.Go(func() {
				if _, err := v.Verify(t.Context(), tok); err != nil {
					t.Errorf("in-flight token: %v", err)
				}
			})
		}
		<-entered
		<-entered // both slots unknown tokens may take are taken
		// Coalesced waiters on an in-flight token do not need a slot.
		for range 20 {
			wg.Go(func() {
				if _, err := v.Verify(t.Context(), a); err != nil {
					t.Errorf("coalesced waiter: %v", err)
				}
			})
		}
		_, err := v.Verify(t.Context(), c)
		var ue *UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, ErrOverloaded) || ue.RetryAfter != time.Second {
			t.Fatalf("err = %v, want UnavailableError{1s, ErrOverloaded}", err)
		}
		if errors.Is(err, auth.ErrInvalidToken) {
			t.Error("ErrOverloaded must not unwrap to auth.ErrInvalidToken")
		}
		if n := obs.shedCount("concurrency"); n != 1 {
			t.Errorf("Shed(concurrency) = %d, want 1", n)
		}
		close(release)
		wg.Wait()
		// Not cached, and the slots are free again.
		if _, err := v.Verify(t.Context(), c); err != nil {
			t.Fatalf("after load: %v", err)
		}
		if n := v.slots.inUse(); n != 0 {
			t.Errorf("%d slots still held", n)
		}
		if n := srv.Calls(); n != 3 {
			t.Errorf("calls = %d, want 3 (a, b, c once)", n)
		}
	})
	t.Run("caller context ends while waiting for a slot", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, _ := newTestVerifier(t, srv, func(c *Config) { c.MaxConcurrency = 1 })
		v.shedWait = time.Minute
		v.fillSlots(1)
		ctx, cancel := context.WithCancel(t.Context())
		v.beforeWait = cancel
		var ue *UnavailableError
		if _, err := v.Verify(ctx, "tok"); !errors.As(err, &ue) {
			t.Fatalf("err = %v", err)
		}
		v.beforeWait = nil
		v.release()
		tok := srv.Issue("u", nil, testResource, time.Hour)
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	})
}

// TestGarbageFloodSparesCachedTokens: a client flooding the gateway with
// random tokens while the authorization server is slow must not take down
// service for users whose tokens are cached.
func TestGarbageFloodSparesCachedTokens(t *testing.T) {
	const garbage, concurrency, burst, rps = 5000, 4, 10, 20
	run := func(t *testing.T, mod func(*Config), slow func(*introspecttest.Server) *atomic.Int64) (v *Verifier, srv *introspecttest.Server, elapsed time.Duration) {
		srv = introspecttest.New(t)
		v, _ = newTestVerifier(t, srv, func(c *Config) { c.MaxConcurrency = concurrency; mod(c) })
		valid := srv.Issue("alice", []string{"op:add"}, testResource, time.Hour)
		if _, err := v.Verify(t.Context(), valid); err != nil {
			t.Fatal(err)
		}
		v.Wait()
		maxInFlight := slow(srv)

		attacker := WithClient(t.Context(), "203.0.113.66")
		user := WithClient(t.Context(), "198.51.100.1")
		var flood sync.WaitGroup
		var limited, overloaded, invalid, other atomic.Int64
		start := time.Now()
		for i := range garbage {
			flood.Go(func() {
				_, err := v.Verify(attacker, fmt.Sprintf("garbage-%d-%x", i, i*7919))
				var rl *RateLimitError
				switch {
				case errors.As(err, &rl):
					limited.Add(1)
				case errors.Is(err, ErrOverloaded):
					overloaded.Add(1)
				case reasonOf(err) != "":
					invalid.Add(1)
				default:
					other.Add(1)
					t.Errorf("garbage token: err = %v", err)
				}
			})
		}
		floodDone := make(chan struct{})
		go func() { flood.Wait(); close(floodDone) }()

		var ok, failed int
		var slowest time.Duration
		for done := false; !done || ok < 200; {
			select {
			case <-floodDone:
				done = true
			default:
			}
			t0 := time.Now()
			info, err := v.Verify(user, valid)
			if d := time.Since(t0); d > slowest {
				slowest = d
			}
			if err != nil || info.UserID != "alice" {
				failed++
				t.Errorf("valid cached token failed during the flood: %v", err)
			} else {
				ok++
			}
		}
		elapsed = time.Since(start)
		t.Logf("flood of %d took %v: rate-limited %d, overloaded %d, invalid %d; valid token %d ok, %d failed, slowest %v; AS calls %d",
			garbage, elapsed, limited.Load(), overloaded.Load(), invalid.Load(), ok, failed, slowest, srv.Calls())
		if failed != 0 {
			t.Errorf("%d valid cached Verify calls failed", failed)
		}
		// Far below the AS latency times the queue the flood would build.
		if slowest > time.Second {
			t.Errorf("slowest cached Verify took %v", slowest)
		}
		if maxInFlight != nil {
			if m := maxInFlight.Load(); m > concurrency {
				t.Errorf("%d introspections in flight, MaxConcurrency %d", m, concurrency)
			}
		}
		return v, srv, elapsed
	}

	t.Run("rate limit and concurrency", func(t *testing.T) {
		_, srv, _ := run(t, func(c *Config) { c.RefusalRate, c.RefusalBurst = rps, burst },
			func(s *introspecttest.Server) *atomic.Int64 { s.SetLatency(50 * time.Millisecond); return nil })
		// The limiter runs on the test's frozen clock, so no refill:
		// the burst, plus the client's tokens in flight when the last
		// refusals were charged, plus the valid token's one call.
		if n, most := srv.Calls()-1, burst+concurrency/2; n > int64(most) {
			t.Errorf("AS saw %d garbage introspections, want <= %d", n, most)
		}
	})
	t.Run("concurrency only", func(t *testing.T) {
		run(t, func(c *Config) {}, func(s *introspecttest.Server) *atomic.Int64 {
			var cur, peak atomic.Int64
			s.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
				n := cur.Add(1)
				defer cur.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				tm := time.NewTimer(50 * time.Millisecond)
				defer tm.Stop()
				select {
				case <-tm.C:
				case <-r.Context().Done():
				}
				return false
			})
			return &peak
		})
	})
}

// TestRecovery: after the authorization server has been failing in every
// way, the next Verify succeeds; no state is left stuck (Ready, the
// singleflight key, the concurrency slots).
func TestRecovery(t *testing.T) {
	srv := introspecttest.New(t)
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.MaxConcurrency = 2; c.Timeout = 200 * time.Millisecond })
	tok := srv.Issue("u", nil, testResource, time.Hour)
	failures := []func(http.ResponseWriter, *http.Request) bool{
		respond(503, nil, ""),
		respond(401, nil, ""),
		respond(200, nil, "garbage"),
		func(w http.ResponseWriter, r *http.Request) bool { <-r.Context().Done(); return true }, // hangs past Timeout
	}
	for i, f := range failures {
		srv.SetFailure(f)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := v.Verify(t.Context(), tok); err == nil {
					t.Errorf("failure %d: Verify succeeded", i)
				}
			})
		}
		wg.Wait()
	}
	srv.SetFailure(nil)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if err := v.Ready(t.Context()); err != nil {
		t.Errorf("Ready after recovery: %v", err)
	}
	if n := v.slots.inUse(); n != 0 {
		t.Errorf("%d concurrency slots still held", n)
	}
}

// TestCloseStopsInflight: Close cancels a shared introspection that is
// waiting on a hung authorization server and returns promptly.
func TestCloseStopsInflight(t *testing.T) {
	srv := introspecttest.New(t)
	entered := make(chan struct{})
	srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
		close(entered)
		<-r.Context().Done()
		return true
	})
	v, err := New(t.Context(), Config{Endpoint: srv.IntrospectionURL(), ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		Audiences: []string{testResource}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := v.Verify(context.Background(), "tok"); errc <- err }()
	<-entered
	start := time.Now()
	v.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	var ue *UnavailableError
	if err := <-errc; !errors.As(err, &ue) {
		t.Errorf("in-flight Verify: err = %v, want UnavailableError", err)
	}
}

func TestNewValidationReliability(t *testing.T) {
	_, err := New(t.Context(), Config{Endpoint: "https://as.example.com/i", ClientID: "c", ClientSecret: "s", Audiences: []string{testResource},
		StaleIfError: -1, MaxConcurrency: -1, RefusalRate: -1, RefusalBurst: -1, ClientConcurrency: -1, KnownTokens: -1})
	for _, s := range []string{"StaleIfError", "MaxConcurrency", "RefusalRate", "RefusalBurst", "ClientConcurrency", "KnownTokens"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %s", err, s)
		}
	}
	v, err := New(t.Context(), Config{Endpoint: "https://as.example.com/i", ClientID: "c", ClientSecret: "s", Audiences: []string{testResource},
		RefusalRate: rate.Limit(2.5)})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.cfg.RefusalBurst != 3 || v.slots.size != DefaultMaxConcurrency || v.slots.reserved != DefaultMaxConcurrency/4 ||
		v.cfg.ClientConcurrency != DefaultMaxConcurrency/2 || v.cfg.KnownTokens != DefaultKnownTokens || v.cfg.Observer == nil {
		t.Errorf("defaults: burst %d, slots %d (%d reserved), client concurrency %d, known %d, observer %v",
			v.cfg.RefusalBurst, v.slots.size, v.slots.reserved, v.cfg.ClientConcurrency, v.cfg.KnownTokens, v.cfg.Observer)
	}
}
