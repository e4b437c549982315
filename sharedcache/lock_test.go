package sharedcache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

// The coalescing case: a burst of 500 concurrent misses of one new
// token, spread over two machines (two Stores), makes exactly one caller
// compute the value; every other caller gets it from Redis.
func TestLockOneWinnerAcrossMachines(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newStore(t, srv.URL())
	b, _ := newStore(t, srv.URL())
	machines := []*Store{a, b}
	ctx := context.Background()
	d := digest("burst-token")
	const callers = 500

	// The winner's "introspection" lasts until every caller has had its
	// Lock answered, so that a lock that let a second caller in would show
	// as a second introspection rather than be hidden by a quick Fill.
	var introspections atomic.Int32
	var locked atomic.Int32
	allLocked := make(chan struct{})
	onLock := func() {
		if locked.Add(1) == callers {
			close(allLocked)
		}
	}
	introspect := func() {
		introspections.Add(1)
		select {
		case <-allLocked:
		case <-time.After(10 * time.Second):
		}
	}
	results := make(chan string, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		s := machines[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results <- missPath(ctx, s, d, onLock, introspect)
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	if n := introspections.Load(); n != 1 {
		t.Fatalf("%d introspections for one token, want exactly 1", n)
	}
	for r := range results {
		if r != "claims" {
			t.Fatalf("a caller got %q", r)
		}
	}
}

// missPath is the miss path the verifier is meant to follow (see the
// package's wiring notes): Get, then Lock; the winner introspects and
// Fills, the others Await; Filled means Get again. A caller whose Get hits
// counts as locked too.
func missPath(ctx context.Context, s *Store, d [32]byte, onLock, introspect func()) string {
	if h, ok := s.Get(ctx, d); ok {
		onLock()
		return string(h.Value)
	}
	res, lease := s.Lock(ctx, d, 20*time.Second)
	onLock()
	switch res {
	case LockWon:
		defer lease.Release()
		introspect()
		lease.Fill(ctx, []byte("claims"), time.Minute)
		return "claims"
	case LockHeld:
		if h, ok := s.Await(ctx, d, 20*time.Second); ok {
			return string(h.Value)
		}
		return "await timed out"
	case LockFilled:
		if h, ok := s.Get(ctx, d); ok {
			return string(h.Value)
		}
		return "filled but not found"
	}
	return "unavailable"
}

// A lock holder that gives up (its introspection failed) wakes the
// waiters at once, on every machine, instead of leaving them to maxWait.
func TestReleaseWakesWaiters(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newStore(t, srv.URL())
	b, _ := newStore(t, srv.URL())
	ctx := context.Background()
	d := digest("failing-introspection")

	res, lease := a.Lock(ctx, d, time.Minute)
	if res != LockWon {
		t.Fatalf("Lock = %v", res)
	}
	if res, _ := b.Lock(ctx, d, time.Minute); res != LockHeld {
		t.Fatalf("second Lock = %v, want held", res)
	}
	// No polling: only the notification can end the wait before maxWait.
	subscribed(t, b)
	b.awaitPoll = time.Hour
	waiting := make(chan struct{}, 1)
	b.awaitHook = func() { waiting <- struct{}{} }
	done := make(chan bool)
	go func() {
		_, ok := b.Await(ctx, d, time.Hour)
		done <- ok
	}()
	<-waiting
	lease.Release()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Await found a value that was never stored")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Await not woken by Release")
	}
	// The lock is free again: the next caller wins.
	if res, l := b.Lock(ctx, d, time.Minute); res != LockWon {
		t.Fatalf("Lock after Release = %v", res)
	} else {
		l.Release()
	}
}

// Release deletes only its own lock: once its TTL has passed and another
// caller holds the lock, a late Release must not free that caller's lock.
func TestReleaseOnlyOwnLock(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL())
	raw := rawClient(t, srv.Addr)
	ctx := context.Background()
	d := digest("slow-owner")
	id := s.ID(d)

	res, first := s.Lock(ctx, d, 20*time.Millisecond)
	if res != LockWon {
		t.Fatalf("Lock = %v", res)
	}
	eventually(t, 2*time.Second, "first lock to expire", func() bool {
		return raw.Exists(ctx, s.keys.lock(&id)).Val() == 0
	})
	res, second := s.Lock(ctx, d, time.Minute)
	if res != LockWon {
		t.Fatalf("Lock after expiry = %v", res)
	}
	first.Release()
	first.Fill(ctx, []byte("late"), time.Minute) // after Release: nothing
	if raw.Exists(ctx, s.keys.lock(&id)).Val() != 1 {
		t.Fatal("an expired owner's Release deleted the current owner's lock")
	}
	if _, ok := s.Get(ctx, d); ok {
		t.Fatal("Fill after Release stored a value")
	}
	second.Release()
	if raw.Exists(ctx, s.keys.lock(&id)).Val() != 0 {
		t.Fatal("the owner's Release did not delete its lock")
	}
	var nilLease *Lease
	nilLease.Release() // safe
	nilLease.Fill(ctx, []byte("v"), time.Minute)
}

// A value stored with a plain Set (no notification) still reaches a waiter,
// by polling: a lost pub/sub message costs at most one poll interval.
func TestAwaitPollsWithoutNotification(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL())
	ctx := context.Background()
	d := digest("set-without-fill")
	res, lease := s.Lock(ctx, d, time.Minute)
	if res != LockWon {
		t.Fatalf("Lock = %v", res)
	}
	defer lease.Release()
	waiting := make(chan struct{}, 1)
	s.awaitHook = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	got := make(chan Hit, 1)
	go func() {
		h, _ := s.Await(ctx, d, 10*time.Second)
		got <- h
	}()
	<-waiting
	s.Set(ctx, d, []byte("polled"), time.Minute)
	select {
	case h := <-got:
		if string(h.Value) != "polled" {
			t.Fatalf("Await = %q", h.Value)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Await did not find a value Set without notification")
	}
}

// Await gives up after maxWait, and at once when there is no lock at all.
func TestAwaitBounds(t *testing.T) {
	srv := redistest.Start(t)
	s, rec := newStore(t, srv.URL())
	ctx := context.Background()

	start := time.Now()
	if _, ok := s.Await(ctx, digest("nobody-holds-it"), 10*time.Second); ok {
		t.Fatal("hit")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Await without a lock took %v, want an immediate miss", took)
	}

	d := digest("held-forever")
	_, lease := s.Lock(ctx, d, time.Minute)
	defer lease.Release()
	for _, maxWait := range []time.Duration{30 * time.Millisecond, 150 * time.Millisecond} {
		t.Run(fmt.Sprint(maxWait), func(t *testing.T) {
			start := time.Now()
			if _, ok := s.Await(ctx, d, maxWait); ok {
				t.Fatal("hit")
			}
			if took := time.Since(start); took < maxWait || took > maxWait+100*time.Millisecond {
				t.Fatalf("Await took %v, want about maxWait %v", took, maxWait)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := s.Await(cctx, d, time.Second); ok {
		t.Fatal("hit with a cancelled context")
	}
	if !s.Healthy() || rec.count(OpAwait, OutcomeError) != 0 {
		t.Fatalf("waiting out maxWait counted as a Redis failure: healthy=%v %v", s.Healthy(), rec.calls)
	}
}

// A Fill on one machine wakes a waiter on another through pub/sub (not a
// poll) and hands it the value.
func TestFillWakesWaiterOnOtherMachine(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newStore(t, srv.URL())
	b, _ := newStore(t, srv.URL())
	ctx := context.Background()
	d := digest("filled-elsewhere")
	res, lease := a.Lock(ctx, d, time.Minute)
	if res != LockWon {
		t.Fatalf("Lock = %v", res)
	}
	subscribed(t, b)
	b.awaitPoll = time.Hour
	waiting := make(chan struct{}, 1)
	b.awaitHook = func() { waiting <- struct{}{} }
	got := make(chan Hit)
	go func() {
		h, _ := b.Await(ctx, d, time.Hour)
		got <- h
	}()
	<-waiting
	lease.Fill(ctx, []byte("from a"), time.Minute)
	select {
	case h := <-got:
		if string(h.Value) != "from a" {
			t.Fatalf("Await = %q", h.Value)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Fill did not wake the waiter on the other machine")
	}
}
