package sharedcache

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: Close
// must stop the probe, the subscriber and go-redis's pub/sub goroutines,
// and the test helpers their processes and proxies.
// go-redis's process-wide logger is routed to a discarding slog.Logger,
// as the gateway routes it to its own log (its dial failures while Redis is
// down would otherwise fill the test output).
func TestMain(m *testing.M) {
	redis.SetLogger(LibraryLogger{Logger: slog.New(slog.DiscardHandler)})
	goleak.VerifyTestMain(m)
}

// testSecret is the KeySecret of every test Store.
var testSecret = []byte("0123456789abcdef-test-key-secret")

// recorder is an Observer that keeps every event.
type recorder struct {
	mu       sync.Mutex
	calls    map[string]int // "op/outcome" -> count
	circuits []bool
	open     atomic.Bool
}

func newRecorder() *recorder { return &recorder{calls: map[string]int{}} }

func (r *recorder) Call(op Op, outcome Outcome, _ time.Duration) {
	r.mu.Lock()
	r.calls[string(op)+"/"+string(outcome)]++
	r.mu.Unlock()
}

func (r *recorder) Circuit(open bool) {
	r.mu.Lock()
	r.circuits = append(r.circuits, open)
	r.mu.Unlock()
	r.open.Store(open)
}

func (r *recorder) count(op Op, outcome Outcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[string(op)+"/"+string(outcome)]
}

func (r *recorder) circuitEvents() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.circuits...)
}

// newStore opens a Store on url with the test secret, a recorder, and any
// changes mod makes to the Config; it is closed when the test ends. Its
// Timeout is 2s, not the 50 ms default, unless mod sets it: tests that are
// not about timeouts must not fail because a loaded machine paused one
// call past 50 ms (the failure tests use the default explicitly).
func newStore(t testing.TB, url string, mod ...func(*Config)) (*Store, *recorder) {
	t.Helper()
	rec := newRecorder()
	cfg := Config{URL: url, KeySecret: testSecret, Observer: rec, Timeout: 2 * time.Second}
	for _, f := range mod {
		f(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s, rec
}

// digest is the SHA-256 of a token, as the verifier computes it.
func digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// eventually polls cond every 5 ms until it holds or the deadline passes:
// only for effects that cross a real Redis process.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribed waits until s listens on both of its channels (the
// subscription is made in the background by New).
func subscribed(t testing.TB, s *Store) {
	t.Helper()
	eventually(t, 5*time.Second, "Store to subscribe", func() bool { return s.bus.subscriptions.Load() >= 2 })
}

// fakeClock is a settable clock, safe to read from the Store's goroutines.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
