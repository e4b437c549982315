// Package loadgen is a small load generator that speaks MCP Streamable HTTP
// (JSON response mode): every request is a JSON-RPC tools/call of the
// calculator's "add" operation, POSTed with the headers a real MCP client
// sends and a bearer token chosen per request. Every response is checked —
// HTTP 200, a JSON-RPC result with the request's id, not isError, and
// structuredContent.result equal to the expected sum — and only correct
// responses count as throughput.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProtocolVersion is sent in the MCP-Protocol-Version header.
const ProtocolVersion = "2025-11-25"

// TokenSource returns the bearer token for the seq-th request of worker
// (both from 0). It is called concurrently from every worker. An empty
// string sends no Authorization header.
type TokenSource func(worker, seq int) string

// Static returns a TokenSource that always answers tok.
func Static(tok string) TokenSource { return func(int, int) string { return tok } }

// Config describes one load run.
type Config struct {
	// URL is the MCP endpoint.
	URL string
	// Connections is the number of concurrent workers, each with at most
	// one request in flight (and so, with a client from NewClient, one
	// keep-alive connection each). Default 1.
	Connections int
	// Duration runs every worker until it has passed. Exactly one of
	// Duration and Requests must be set.
	Duration time.Duration
	// Requests is the total number of requests, spread evenly over the
	// workers (the first Requests%Connections workers do one more).
	Requests int
	// Token gives each request its bearer token. Required.
	Token TokenSource
	// WarmupToken, when set, makes every worker send one request with it
	// (not recorded, but checked) before all workers are released together.
	// With a client from NewClient this opens every connection beforehand,
	// so that a burst really is concurrent.
	WarmupToken string
	// Client makes the requests. Default NewClient(Connections).
	Client *http.Client
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration
	// Header, if set, is added to every request (e.g. Origin).
	Header http.Header
	// Rate, when > 0, makes the load open-loop: requests are sent at this
	// total rate (per second), spread evenly over the workers, whatever
	// the server's pace, and each latency is measured from the time the
	// request was due, not from when it was sent. A closed loop (Rate 0:
	// each worker sends as soon as its previous answer arrives) measures
	// throughput, but its latencies are only queue length over throughput
	// at saturation, and a slow server there looks faster than it is
	// because it is sent less (coordinated omission). Requires Duration.
	Rate float64
}

// Result is what a run measured.
type Result struct {
	// OK is the number of correct responses; only they are throughput.
	OK int
	// Errors is the number of requests that failed or were answered
	// wrongly; ErrorKinds counts them by kind, and ErrorSamples keeps the
	// first few messages.
	Errors       int
	ErrorKinds   map[string]int
	ErrorSamples []string
	// Elapsed is the wall-clock time from the release of the workers to
	// the end of the last request.
	Elapsed time.Duration
	// Latencies of the correct responses, sorted ascending.
	Latencies []time.Duration
	// Connections is the number of workers used.
	Connections int
	// Late counts the requests of an open-loop run (Config.Rate) that were
	// sent after they were due because their worker was still waiting on
	// the previous answer; their latencies include that wait.
	Late int
}

// RPS is correct responses per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0 < p <= 100) of the latencies of
// correct responses, nearest-rank, or 0 when there are none.
func (r *Result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(float64(n)*p/100+0.999999999) - 1
	rank = max(0, min(rank, n-1))
	return r.Latencies[rank]
}

// Max is the largest latency of a correct response.
func (r *Result) Max() time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[len(r.Latencies)-1]
}

// String is a one-line summary.
func (r *Result) String() string {
	s := fmt.Sprintf("%d ok in %v over %d conns: %.0f req/s, p50 %v p90 %v p99 %v max %v, %d errors",
		r.OK, r.Elapsed.Round(time.Millisecond), r.Connections, r.RPS(),
		fmtDur(r.Percentile(50)), fmtDur(r.Percentile(90)), fmtDur(r.Percentile(99)), fmtDur(r.Max()), r.Errors)
	if r.Late > 0 {
		s += fmt.Sprintf(", %d sent late", r.Late)
	}
	if r.Errors > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k, n := range r.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		}
		sort.Strings(kinds)
		s += " (" + strings.Join(kinds, " ") + ")"
	}
	return s
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// NewClient returns an HTTP/1.1 client tuned for conns concurrent requests
// to one host: that many idle keep-alive connections are kept, no proxy,
// no compression.
func NewClient(conns int) *http.Client {
	conns = max(conns, 1)
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     4 << 10,
		ReadBufferSize:      4 << 10,
	}
	return &http.Client{Transport: t}
}

// Run executes the load described by cfg. ctx cancels it early (the result
// so far is returned along with ctx's error).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.URL == "" {
		return nil, errors.New("loadgen: URL is required")
	}
	if cfg.Token == nil {
		return nil, errors.New("loadgen: Token is required")
	}
	if (cfg.Duration > 0) == (cfg.Requests > 0) {
		return nil, errors.New("loadgen: set exactly one of Duration and Requests")
	}
	if cfg.Rate < 0 || (cfg.Rate > 0 && cfg.Duration <= 0) {
		return nil, errors.New("loadgen: Rate must be positive and needs Duration")
	}
	conns := max(cfg.Connections, 1)
	if cfg.Requests > 0 {
		conns = min(conns, cfg.Requests)
	}
	client := cfg.Client
	if client == nil {
		client = NewClient(conns)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}

	workers := make([]*worker, conns)
	for i := range workers {
		n := 0
		if cfg.Requests > 0 {
			n = cfg.Requests / conns
			if i < cfg.Requests%conns {
				n++
			}
		}
		workers[i] = &worker{id: i, conns: conns, cfg: &cfg, client: client, timeout: timeout, quota: n}
		if n > 0 {
			workers[i].lat = make([]time.Duration, 0, n)
		} else {
			workers[i].lat = make([]time.Duration, 0, 1024)
		}
	}

	var ready, done sync.WaitGroup
	release := make(chan struct{})
	var start, deadline time.Time
	for _, w := range workers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			if cfg.WarmupToken != "" {
				w.warmup(ctx)
			}
			ready.Done()
			select {
			case <-release:
			case <-ctx.Done():
				return
			}
			w.run(ctx, start, deadline)
		}()
	}
	ready.Wait()
	start = time.Now()
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	close(release) // publishes deadline to the workers
	done.Wait()
	elapsed := time.Since(start)

	res := &Result{Elapsed: elapsed, Connections: conns, ErrorKinds: map[string]int{}}
	total := 0
	for _, w := range workers {
		total += len(w.lat)
	}
	res.Latencies = make([]time.Duration, 0, total)
	for _, w := range workers {
		res.Latencies = append(res.Latencies, w.lat...)
		res.Errors += w.errors
		res.Late += w.late
		for k, n := range w.kinds {
			res.ErrorKinds[k] += n
		}
		for _, s := range w.samples {
			if len(res.ErrorSamples) < 5 {
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
	}
	res.OK = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res, ctx.Err()
}

type worker struct {
	id      int
	conns   int
	cfg     *Config
	client  *http.Client
	timeout time.Duration
	quota   int

	lat     []time.Duration
	errors  int
	late    int
	kinds   map[string]int
	samples []string

	body []byte // reused request body buffer
	resp bytes.Buffer
}

func (w *worker) warmup(ctx context.Context) {
	// Warm-up failures are not recorded: the measured run will show them.
	_, _ = w.do(ctx, w.cfg.WarmupToken, -1)
}

func (w *worker) run(ctx context.Context, start, deadline time.Time) {
	var timer *time.Timer
	if w.cfg.Rate > 0 {
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
	}
	for seq := 0; ; seq++ {
		var due time.Time
		if timer != nil {
			// The seq-th request of worker id is the (seq*conns+id)-th
			// of the whole run.
			due = start.Add(time.Duration(float64(seq*w.conns+w.id) / w.cfg.Rate * float64(time.Second)))
			if !due.Before(deadline) {
				return
			}
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			} else if wait < -time.Millisecond {
				w.late++
			}
		}
		if w.quota > 0 {
			if seq >= w.quota {
				return
			}
		} else if timer == nil && !time.Now().Before(deadline) {
			// Open loop sends every request due before the deadline,
			// even late: dropping them would hide a slow server.
			return
		}
		if ctx.Err() != nil {
			return
		}
		tok := w.cfg.Token(w.id, seq)
		t0 := time.Now()
		if !due.IsZero() {
			t0 = due
		}
		kind, err := w.do(ctx, tok, seq)
		d := time.Since(t0)
		if err != nil {
			w.fail(kind, err)
			continue
		}
		w.lat = append(w.lat, d)
	}
}

func (w *worker) fail(kind string, err error) {
	w.errors++
	if w.kinds == nil {
		w.kinds = map[string]int{}
	}
	w.kinds[kind]++
	if len(w.samples) < 3 {
		w.samples = append(w.samples, kind+": "+err.Error())
	}
}

// rpcResponse is the part of a JSON-RPC response the check reads.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  *struct {
		IsError           bool `json:"isError"`
		StructuredContent *struct {
			Result *float64 `json:"result"`
		} `json:"structuredContent"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends one tools/call and checks its answer. The request id and the
// operands are derived from the worker and seq, so that a response meant
// for another request cannot pass the check.
func (w *worker) do(ctx context.Context, token string, seq int) (kind string, err error) {
	id := int64(w.id)<<32 | int64(uint32(seq))
	a, b := int64(w.id), int64(seq)
	w.body = appendCall(w.body[:0], id, a, b)

	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(w.body))
	if err != nil {
		return "request", err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{"application/json, text/event-stream"}
	req.Header["Mcp-Protocol-Version"] = []string{ProtocolVersion}
	if token != "" {
		req.Header["Authorization"] = []string{"Bearer " + token}
	}
	for k, v := range w.cfg.Header {
		req.Header[k] = v
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return "transport", err
	}
	w.resp.Reset()
	_, err = w.resp.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return "transport", err
	}
	body := w.resp.Bytes()
	if resp.StatusCode != http.StatusOK {
		return "http_" + strconv.Itoa(resp.StatusCode), fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncate(body))
	}
	var r rpcResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "bad_json", fmt.Errorf("%v: %s", err, truncate(body))
	}
	if r.Error != nil {
		return "rpc_error", fmt.Errorf("JSON-RPC error %d: %s", r.Error.Code, r.Error.Message)
	}
	if r.JSONRPC != "2.0" || string(r.ID) != strconv.FormatInt(id, 10) {
		return "wrong_id", fmt.Errorf("response id %s, want %d: %s", r.ID, id, truncate(body))
	}
	if r.Result == nil {
		return "no_result", fmt.Errorf("no result: %s", truncate(body))
	}
	if r.Result.IsError {
		return "tool_error", fmt.Errorf("tool error: %s", truncate(body))
	}
	if r.Result.StructuredContent == nil || r.Result.StructuredContent.Result == nil {
		return "no_structured_result", fmt.Errorf("no structuredContent.result: %s", truncate(body))
	}
	if got, want := *r.Result.StructuredContent.Result, float64(a+b); got != want {
		return "wrong_result", fmt.Errorf("result %v, want %v", got, want)
	}
	return "", nil
}

// appendCall appends the JSON-RPC tools/call "calculator add a b".
func appendCall(dst []byte, id, a, b int64) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","a":`...)
	dst = strconv.AppendInt(dst, a, 10)
	dst = append(dst, `,"b":`...)
	dst = strconv.AppendInt(dst, b, 10)
	dst = append(dst, `}}}`...)
	return dst
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
