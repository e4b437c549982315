package sharedcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

// testTimeout is the Timeout of the failure tests (the production
// default), and overhead what a call may take beyond it: scheduling of ~80
// goroutines on a loaded 2-core machine under the race detector (measured
// up to ~42 ms there with a load average of 16; a few ms on an idle one).
const (
	testTimeout = DefaultTimeout
	overhead    = 50 * time.Millisecond
)

// op is one Store call as a request would make it; it reports whether
// Redis served it.
type op struct {
	name string
	call func(ctx context.Context, s *Store, i int) bool
}

var requestOps = []op{
	{"get", func(ctx context.Context, s *Store, i int) bool {
		_, ok := s.Get(ctx, digest(fmt.Sprint("k", i)))
		return ok
	}},
	{"set", func(ctx context.Context, s *Store, i int) bool {
		s.Set(ctx, digest(fmt.Sprint("k", i)), []byte("v"), time.Minute)
		return false
	}},
	{"lock", func(ctx context.Context, s *Store, i int) bool {
		r, l := s.Lock(ctx, digest(fmt.Sprint("lock", i)), time.Second)
		l.Release()
		return r != LockUnavailable
	}},
	{"await", func(ctx context.Context, s *Store, i int) bool {
		_, ok := s.Await(ctx, digest(fmt.Sprint("k", i)), time.Second)
		return ok
	}},
}

// everyCallBounded runs every request operation n times concurrently on
// each store and fails the test if any took longer than Timeout plus
// overhead or was served by Redis. It returns the slowest call.
func everyCallBounded(t *testing.T, n int, stores ...*Store) time.Duration {
	t.Helper()
	var mu sync.Mutex
	var slowest time.Duration
	var wg sync.WaitGroup
	for _, s := range stores {
		for _, o := range requestOps {
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					served := o.call(context.Background(), s, i)
					took := time.Since(start)
					mu.Lock()
					defer mu.Unlock()
					slowest = max(slowest, took)
					if served {
						t.Errorf("%s %d was served by an unavailable Redis", o.name, i)
					}
					if took > testTimeout+overhead {
						t.Errorf("%s %d took %v, more than Timeout %v + %v", o.name, i, took, testTimeout, overhead)
					}
				}()
			}
		}
	}
	wg.Wait()
	return slowest
}

func TestRedisKilledAndRestarted(t *testing.T) {
	srv := redistest.Start(t)
	a, recA := newStore(t, srv.URL(), func(c *Config) { c.Timeout = testTimeout })
	b, recB := newStore(t, srv.URL(), func(c *Config) { c.Timeout = testTimeout })
	cb := newCollector()
	defer b.Subscribe(cb.add)()
	subscribed(t, a)
	subscribed(t, b)
	ctx := context.Background()
	a.Set(ctx, digest("k0"), []byte("v"), time.Minute)

	srv.Kill()
	slowest := everyCallBounded(t, 10, a, b)
	t.Logf("Redis killed: slowest call %v", slowest)
	for name, s := range map[string]*Store{"a": a, "b": b} {
		if s.Healthy() {
			t.Errorf("%s: circuit still closed after Redis died", name)
		}
	}
	if ev := recA.circuitEvents(); len(ev) == 0 || !ev[0] {
		t.Fatalf("circuit events %v, want it to open", ev)
	}
	// Open circuit: calls return at once without touching the network.
	start := time.Now()
	for i := range 100 {
		a.Get(ctx, digest(fmt.Sprint("skip", i)))
	}
	if took := time.Since(start); took > 20*time.Millisecond {
		t.Errorf("100 Gets with the circuit open took %v", took)
	}
	if recA.count(OpGet, OutcomeSkipped) < 100 {
		t.Errorf("skipped Gets not observed: %v", recA.calls)
	}
	var ue *UnavailableError
	if err := a.Revoke(ctx, Revocation{Kind: KindSub, Value: "x"}, time.Minute); !errors.As(err, &ue) || !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Revoke with the circuit open = %v", err)
	}

	subsBefore := b.bus.subscriptions.Load()
	reloadsBefore := recB.count(OpRevocations, OutcomeOK)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both circuits to close", func() bool { return a.Healthy() && b.Healthy() })
	eventually(t, 10*time.Second, "b to resubscribe and re-read revocations", func() bool {
		return b.bus.subscriptions.Load() >= subsBefore+2 && recB.count(OpRevocations, OutcomeOK) > reloadsBefore
	})
	if ev := recA.circuitEvents(); ev[len(ev)-1] {
		t.Fatalf("circuit events %v, want it closed last", ev)
	}

	a.Set(ctx, digest("after"), []byte("v2"), time.Minute)
	if h, ok := b.Get(ctx, digest("after")); !ok || string(h.Value) != "v2" {
		t.Fatalf("shared tier not back after restart: %q %v", h.Value, ok)
	}
	start = time.Now()
	if err := a.Revoke(ctx, Revocation{Kind: KindSub, Value: "after-restart"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	cb.waitFor(t, KindSub, "after-restart", time.Second)
	t.Logf("revocation after restart delivered in %v", time.Since(start))
}

// A machine cut off from Redis misses a published revocation; when the
// network heals it resubscribes and reads the record, so it honours the
// revocation anyway.
func TestPartitionedMachineCatchesUp(t *testing.T) {
	srv := redistest.Start(t)
	p := redistest.NewProxy(t, srv.Addr)
	a, _ := newStore(t, srv.URL(), func(c *Config) { c.Timeout = testTimeout })
	b, _ := newStore(t, "redis://"+p.Addr, func(c *Config) { c.Timeout = testTimeout })
	cb := newCollector()
	defer b.Subscribe(cb.add)()
	subscribed(t, b)
	ctx := context.Background()

	p.Cut()
	if err := a.Revoke(ctx, Revocation{Kind: KindClientID, Value: "during-partition"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	slowest := everyCallBounded(t, 5, b)
	t.Logf("partitioned: slowest call %v", slowest)
	if cb.has(KindClientID, "during-partition") {
		t.Fatal("the partition let the message through; the test proves nothing")
	}
	p.Heal()
	took := cb.waitFor(t, KindClientID, "during-partition", 10*time.Second)
	t.Logf("partition healed: missed revocation read %v later", took)
	eventually(t, 10*time.Second, "b's circuit to close", b.Healthy)
}

// A slow Redis (every byte delayed well past Timeout) costs each call at
// most Timeout, then nothing once the circuit opens; when it is fast again
// the probe brings it back.
func TestRedisSlowBoundedByTimeout(t *testing.T) {
	srv := redistest.Start(t)
	p := redistest.NewProxy(t, srv.Addr)
	s, rec := newStore(t, "redis://"+p.Addr, func(c *Config) { c.Timeout = testTimeout })
	subscribed(t, s)
	ctx := context.Background()
	s.Set(ctx, digest("k0"), []byte("v"), time.Minute)

	p.SetDelay(250 * time.Millisecond)
	// One at a time first, so each call meets the delay before the circuit
	// opens.
	for _, o := range requestOps {
		start := time.Now()
		if o.call(ctx, s, 0) {
			t.Errorf("%s served through a 250ms delay", o.name)
		}
		if took := time.Since(start); took > testTimeout+overhead {
			t.Errorf("%s took %v, more than Timeout %v + %v", o.name, took, testTimeout, overhead)
		} else {
			t.Logf("slow Redis: %s returned in %v", o.name, took)
		}
	}
	if s.Healthy() {
		t.Fatal("circuit still closed after repeated timeouts")
	}
	if rec.count(OpGet, OutcomeTimeout)+rec.count(OpSet, OutcomeTimeout)+rec.count(OpLock, OutcomeTimeout) < DefaultFailureThreshold {
		t.Errorf("timeouts not observed: %v", rec.calls)
	}
	everyCallBounded(t, 10, s)

	p.SetDelay(0)
	eventually(t, 10*time.Second, "circuit to close once Redis is fast", s.Healthy)
	if h, ok := s.Get(ctx, digest("k0")); !ok || string(h.Value) != "v" {
		t.Fatal("value not served after recovery")
	}
}

// A full Redis (maxmemory with noeviction) refuses writes with OOM: Set,
// Fill, Lock and Revoke fail cleanly and at once; reads still hit; and the
// circuit stays closed because Redis does answer.
func TestRedisFull(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
	s, rec := newStore(t, srv.URL(), func(c *Config) { c.Timeout = testTimeout })
	raw := rawClient(t, srv.Addr)
	ctx := context.Background()
	s.Set(ctx, digest("before"), []byte("v"), time.Hour)

	// Small writes, so that it is the data (not one large command's query
	// buffer) that reaches maxmemory: then every write is refused.
	filler := strings.Repeat("x", 4096)
	var oom error
	for i := 0; i < 10_000 && oom == nil; i++ {
		if raw.Set(ctx, fmt.Sprint("filler:", i), filler, 0).Err() != nil {
			// Full for a small write too, not only for this command?
			oom = raw.Set(ctx, fmt.Sprint("probe:", i), "v", 0).Err()
		}
	}
	if oom == nil || !strings.Contains(oom.Error(), "OOM") {
		t.Fatalf("Redis did not fill up: %v", oom)
	}

	start := time.Now()
	s.Set(ctx, digest("after"), []byte("v"), time.Hour)
	res, lease := s.Lock(ctx, digest("after"), time.Second)
	revokeErr := s.Revoke(ctx, Revocation{Kind: KindSub, Value: "u"}, time.Minute)
	if took := time.Since(start); took > testTimeout+overhead {
		t.Errorf("writes to a full Redis took %v", took)
	}
	if rec.count(OpSet, OutcomeError) != 1 {
		t.Errorf("OOM on Set not observed: %v", rec.calls)
	}
	if res != LockUnavailable || lease != nil {
		t.Errorf("Lock on a full Redis = %v, want unavailable (proceed alone)", res)
	}
	var ue *UnavailableError
	if !errors.As(revokeErr, &ue) || !strings.Contains(revokeErr.Error(), "OOM") {
		t.Errorf("Revoke on a full Redis = %v, want *UnavailableError naming OOM", revokeErr)
	}
	if _, ok := s.Get(ctx, digest("after")); ok {
		t.Error("a refused Set is readable")
	}
	if _, ok := s.Get(ctx, digest("before")); !ok {
		t.Error("reads stopped working on a full Redis")
	}
	if !s.Healthy() {
		t.Error("OOM replies opened the circuit; Redis answers, it is only full")
	}
}

// New does not fail when Redis is down: the Store starts with its circuit
// open, costs requests nothing, and connects (commands and pub/sub) when
// Redis appears.
func TestNewWhileRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	start := time.Now()
	s, _ := newStore(t, srv.URL(), func(c *Config) { c.Timeout = testTimeout })
	if took := time.Since(start); took > testTimeout+overhead {
		t.Errorf("New took %v with Redis down", took)
	}
	if s.Healthy() {
		t.Fatal("healthy without Redis")
	}
	c := newCollector()
	defer s.Subscribe(c.add)()
	everyCallBounded(t, 5, s)

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Store to connect", s.Healthy)
	subscribed(t, s)
	ctx := context.Background()
	if err := s.Revoke(ctx, Revocation{Kind: KindSub, Value: "late"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, KindSub, "late", time.Second)
}

// After Close every call is an immediate miss and Close is idempotent.
func TestClose(t *testing.T) {
	srv := redistest.Start(t)
	s, rec := newStore(t, srv.URL())
	ctx := context.Background()
	s.Set(ctx, digest("k"), []byte("v"), time.Minute)
	s.Close()
	s.Close()
	if _, ok := s.Get(ctx, digest("k")); ok {
		t.Fatal("hit after Close")
	}
	if r, _ := s.Lock(ctx, digest("k"), time.Second); r != LockUnavailable {
		t.Fatalf("Lock after Close = %v", r)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close = %v", err)
	}
	if s.Healthy() || rec.count(OpGet, OutcomeSkipped) != 1 {
		t.Fatalf("closed Store healthy=%v calls=%v", s.Healthy(), rec.calls)
	}
}
