package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeMCP answers calculator tools/call like the SDK in JSON response mode.
// mode changes the answer to exercise the checks.
type fakeMCP struct {
	mode   string
	mu     sync.Mutex
	tokens map[string]int
	n      atomic.Int64
}

func (f *fakeMCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.n.Add(1)
	if f.mode == "slow" {
		time.Sleep(5 * time.Millisecond) // the server's service time
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Accept") != "application/json, text/event-stream" ||
		r.Header.Get("MCP-Protocol-Version") != ProtocolVersion {
		http.Error(w, "bad headers", http.StatusBadRequest)
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	f.tokens[tok]++
	f.mu.Unlock()
	if f.mode == "401" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	var req struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int64  `json:"id"`
		Method  string `json:"method"`
		Params  struct {
			Name      string `json:"name"`
			Arguments struct {
				Operation string  `json:"operation"`
				A         float64 `json:"a"`
				B         float64 `json:"b"`
			} `json:"arguments"`
		} `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Method != "tools/call" || req.Params.Name != "calculator" || req.Params.Arguments.Operation != "add" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	sum := req.Params.Arguments.A + req.Params.Arguments.B
	isError := false
	switch f.mode {
	case "wrong":
		sum++
	case "iserror":
		isError = true
	case "rpcerror":
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"error":{"code":-32602,"message":"nope"}}`, req.ID)
		return
	case "wrongid":
		req.ID++
	}
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"%v"}],"structuredContent":{"operation":"add","result":%v},"isError":%v}}`, req.ID, sum, sum, isError)
}

func newFake(mode string) (*fakeMCP, *httptest.Server) {
	f := &fakeMCP{mode: mode, tokens: map[string]int{}}
	return f, httptest.NewServer(f)
}

func TestRunRequestsAllCorrect(t *testing.T) {
	f, srv := newFake("")
	defer srv.Close()
	var calls atomic.Int64
	res, err := Run(context.Background(), Config{
		URL:         srv.URL,
		Connections: 4,
		Requests:    103,
		Token: func(w, s int) string {
			calls.Add(1)
			return fmt.Sprintf("tok-%d-%d", w, s)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 103 || res.Errors != 0 {
		t.Fatalf("ok=%d errors=%d %v", res.OK, res.Errors, res.ErrorSamples)
	}
	if calls.Load() != 103 || len(f.tokens) != 103 {
		t.Errorf("token source called %d times, %d distinct tokens seen", calls.Load(), len(f.tokens))
	}
	if res.Percentile(50) <= 0 {
		t.Errorf("no latency measured: %s", res)
	}
}

func TestRunDuration(t *testing.T) {
	_, srv := newFake("")
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Connections: 3, Duration: 100 * time.Millisecond, Token: Static("x")})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 || res.Errors != 0 {
		t.Fatalf("%s %v", res, res.ErrorSamples)
	}
	if res.Elapsed < 100*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Errorf("elapsed %v", res.Elapsed)
	}
}

// An open-loop run sends exactly the requests that fall due before the
// deadline: with 4 workers at 400/s over 250ms, the run's requests 0..99.
func TestRunRateSendsWhatFallsDue(t *testing.T) {
	f, srv := newFake("")
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Connections: 4, Duration: 250 * time.Millisecond, Rate: 400, Token: Static("x")})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 100 || res.Errors != 0 || f.n.Load() != 100 {
		t.Fatalf("ok=%d errors=%d served=%d, want 100 each: %s", res.OK, res.Errors, f.n.Load(), res)
	}
}

// A server slower than the rate gets every due request anyway, late, and
// the latencies count the wait from when each was due: 50 requests due
// within 49ms on one connection to a server taking 5ms each end at least
// 250ms after the first was due, so the last waited at least ~200ms.
func TestRunRateMeasuresFromDueTime(t *testing.T) {
	_, srv := newFake("slow")
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Connections: 1, Duration: 50 * time.Millisecond, Rate: 1000, Token: Static("x")})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 50 {
		t.Fatalf("ok=%d, want 50: %s %v", res.OK, res, res.ErrorSamples)
	}
	if res.Late < 40 || res.Max() < 150*time.Millisecond {
		t.Errorf("late=%d max=%v: the wait behind a slow server is not counted", res.Late, res.Max())
	}
}

func TestRunWarmup(t *testing.T) {
	f, srv := newFake("")
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Connections: 5, Requests: 5, Token: Static("burst"), WarmupToken: "warm"})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 5 || f.tokens["warm"] != 5 || f.tokens["burst"] != 5 {
		t.Fatalf("ok=%d tokens=%v", res.OK, f.tokens)
	}
}

func TestRunDetectsWrongAnswers(t *testing.T) {
	for mode, kind := range map[string]string{
		"401":      "http_401",
		"wrong":    "wrong_result",
		"iserror":  "tool_error",
		"rpcerror": "rpc_error",
		"wrongid":  "wrong_id",
	} {
		t.Run(mode, func(t *testing.T) {
			_, srv := newFake(mode)
			defer srv.Close()
			res, err := Run(context.Background(), Config{URL: srv.URL, Connections: 2, Requests: 6, Token: Static("x")})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != 0 || res.Errors != 6 || res.ErrorKinds[kind] != 6 {
				t.Fatalf("ok=%d errors=%d kinds=%v", res.OK, res.Errors, res.ErrorKinds)
			}
			if !strings.Contains(res.String(), kind) {
				t.Errorf("summary lacks %s: %s", kind, res)
			}
		})
	}
}

func TestRunTransportError(t *testing.T) {
	_, srv := newFake("")
	url := srv.URL
	srv.Close()
	res, err := Run(context.Background(), Config{URL: url, Connections: 1, Requests: 2, Token: Static("x")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 || res.ErrorKinds["transport"] != 2 {
		t.Fatalf("%s", res)
	}
}

func TestRateValidation(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://x", Token: Static("x"), Requests: 5, Rate: 10},
		{URL: "http://x", Token: Static("x"), Duration: time.Second, Rate: -1},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Token: Static("x"), Requests: 1},
		{URL: "http://x", Requests: 1},
		{URL: "http://x", Token: Static("x")},
		{URL: "http://x", Token: Static("x"), Requests: 1, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestPercentile(t *testing.T) {
	r := &Result{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 90: 90 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := r.Percentile(p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if (&Result{}).Percentile(50) != 0 {
		t.Error("empty percentile not 0")
	}
}
