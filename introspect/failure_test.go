package introspect

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// silentListener accepts connections, reads whatever is sent and never
// answers. Closed by t.Cleanup.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + l.Addr().String() + "/introspect"
}

// TestFailureMatrix drives every way the authorization server can fail and
// checks, for each: the error type (and RetryAfter), the Observer outcome,
// that nothing was cached (the next call asks again), and, where the
// server can come back, that the next Verify then succeeds.
func TestFailureMatrix(t *testing.T) {
	const timeout = 300 * time.Millisecond
	httpDate := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)

	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	defer other.Close()

	// A 50 MB streamed body; stopped reports that the handler saw the
	// client stop reading before it had written it all.
	stopped := make(chan struct{}, 1)
	huge := func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		chunk := []byte(strings.Repeat(`{"active":true,"x":"`, 1) + strings.Repeat("x", 32<<10))
		for written := 0; written < 50<<20; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				stopped <- struct{}{}
				return true
			}
			chunk = []byte(strings.Repeat("x", 32<<10))
		}
		return true
	}

	tests := []struct {
		name string
		// failure is installed on a fake AS; endpoint, when set, replaces
		// the AS altogether (no recovery step then).
		failure  func(http.ResponseWriter, *http.Request) bool
		endpoint func(t *testing.T) string
		latency  time.Duration
		outcome  []string // Observer outcomes of the first Verify
		retry    time.Duration
		check    func(t *testing.T)
	}{
		{name: "refuses connections", endpoint: func(t *testing.T) string { e, _ := refusingEndpoint(t); return e },
			outcome: []string{"network", "network"}},
		{name: "accepts and never answers", endpoint: silentListener, outcome: []string{"timeout"}},
		{name: "answers after the timeout", latency: 2 * timeout, outcome: []string{"timeout"}},
		{name: "500", failure: respond(500, nil, "oops"), outcome: []string{"status"}, retry: DefaultRetryAfter},
		{name: "502", failure: respond(502, nil, ""), outcome: []string{"status"}, retry: DefaultRetryAfter},
		{name: "503 Retry-After seconds", failure: respond(503, map[string]string{"Retry-After": "7"}, ""), outcome: []string{"status"}, retry: 7 * time.Second},
		{name: "503 Retry-After capped", failure: respond(503, map[string]string{"Retry-After": "86400"}, ""), outcome: []string{"status"}, retry: maxRetryAfter},
		{name: "429 Retry-After HTTP-date", failure: respond(429, map[string]string{"Retry-After": httpDate}, ""), outcome: []string{"status"}, retry: -1},
		{name: "200 non-JSON", failure: respond(200, nil, "<html>"), outcome: []string{"bad_response"}},
		{name: "JSON missing active", failure: respond(200, nil, `{"sub":"x","aud":"`+testResource+`"}`), outcome: []string{"bad_response"}},
		{name: "active as a string", failure: respond(200, nil, `{"active":"true","aud":"`+testResource+`"}`), outcome: []string{"bad_response"}},
		{name: "50 MB body", failure: huge, outcome: []string{"bad_response"}, check: func(t *testing.T) {
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				t.Error("the handler never saw the client stop reading")
			}
		}},
		{name: "redirect to another host", failure: respond(307, map[string]string{"Location": other.URL + "/introspect"}, ""), outcome: []string{"bad_response"},
			check: func(t *testing.T) {
				if n := otherHits.Load(); n != 0 {
					t.Errorf("the other host got %d requests", n)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := introspecttest.New(t)
			tok := srv.Issue("u", nil, testResource, time.Hour)
			srv.SetFailure(tt.failure)
			srv.SetLatency(tt.latency)
			obs := newCountingObserver()
			v, _ := newTestVerifier(t, srv, func(c *Config) {
				c.Observer = obs
				c.Timeout = timeout
				if tt.endpoint != nil {
					c.Endpoint = tt.endpoint(t)
				}
			})
			start := time.Now()
			_, err := v.Verify(t.Context(), tok)
			elapsed := time.Since(start)
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v (%T), want *UnavailableError", err, err)
			}
			if errors.Is(err, auth.ErrInvalidToken) {
				t.Error("unwraps to auth.ErrInvalidToken")
			}
			if elapsed > 3*timeout {
				t.Errorf("Verify took %v, Timeout %v", elapsed, timeout)
			}
			switch {
			case tt.retry > 0 && ue.RetryAfter != tt.retry:
				t.Errorf("RetryAfter = %v, want %v", ue.RetryAfter, tt.retry)
			case tt.retry < 0 && (ue.RetryAfter < 15*time.Second || ue.RetryAfter > 20*time.Second):
				t.Errorf("RetryAfter = %v, want ~20s from the HTTP-date", ue.RetryAfter)
			case ue.RetryAfter <= 0 || ue.RetryAfter > maxRetryAfter:
				t.Errorf("RetryAfter = %v out of range", ue.RetryAfter)
			}
			if got := obs.calls(); !slices.Equal(got, tt.outcome) {
				t.Errorf("outcomes = %q, want %q", got, tt.outcome)
			}
			if tt.check != nil {
				tt.check(t)
			}

			// Nothing cached: the next call asks again.
			v.Wait()
			n := len(obs.calls())
			if _, err := v.Verify(t.Context(), tok); err == nil && tt.endpoint == nil {
				t.Error("the second Verify succeeded while the server is still failing")
			}
			if len(obs.calls()) == n {
				t.Error("the failure was cached: the second Verify made no introspection")
			}
			if tt.endpoint != nil {
				return
			}
			// The AS comes back: the next Verify succeeds.
			srv.SetFailure(nil)
			srv.SetLatency(0)
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
			if err := v.Ready(t.Context()); err != nil {
				t.Errorf("Ready after recovery: %v", err)
			}
		})
	}
}

// TestNeverCached checks that no error other than a verdict about the
// token is remembered: the second identical Verify asks again.
func TestNeverCached(t *testing.T) {
	tests := []struct {
		name  string
		setup func(v *Verifier)
		mod   func(*Config)
		check func(error) bool
	}{
		{"unavailable", func(v *Verifier) {}, nil, func(err error) bool { var e *UnavailableError; return errors.As(err, &e) }},
		{"client auth", func(v *Verifier) {}, func(c *Config) { c.ClientSecret = "wrong" }, func(err error) bool { var e *ClientAuthError; return errors.As(err, &e) }},
		{"overloaded", func(v *Verifier) { v.fillSlots(1); v.shedWait = time.Millisecond },
			func(c *Config) { c.MaxConcurrency = 1 }, func(err error) bool { return errors.Is(err, ErrOverloaded) }},
		{"rate limited", func(v *Verifier) {}, func(c *Config) { c.RefusalRate = 1e-9; c.RefusalBurst = 1 },
			func(err error) bool { var e *RateLimitError; return errors.As(err, &e) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := introspecttest.New(t)
			tok := srv.Issue("u", nil, testResource, time.Hour)
			if tt.name == "unavailable" {
				srv.SetFailure(respond(503, nil, ""))
			}
			mods := []func(*Config){}
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			v, _ := newTestVerifier(t, srv, mods...)
			ctx := WithClient(t.Context(), "192.0.2.1")
			if tt.name == "rate limited" {
				_, _ = v.Verify(ctx, "spend-the-burst") // refused: empties the bucket
			}
			tt.setup(v)
			_, err := v.Verify(ctx, tok)
			if !tt.check(err) {
				t.Fatalf("err = %v", err)
			}
			v.Wait()
			if e, _ := v.lookup(digestOf(tok), time.Now()); e != nil {
				t.Errorf("%v was cached", err)
			}
		})
	}
}
