package introspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

func TestSlotsReserve(t *testing.T) {
	for _, tt := range []struct{ size, reserved int }{
		{1, 0}, {2, 1}, {3, 1}, {4, 1}, {5, 2}, {8, 2}, {64, 16},
	} {
		s := newSlots(tt.size)
		if s.reserved != tt.reserved {
			t.Errorf("newSlots(%d).reserved = %d, want %d", tt.size, s.reserved, tt.reserved)
		}
		unknown := 0
		for s.tryAcquire(laneUnknown) {
			unknown++
		}
		known := 0
		for s.tryAcquire(laneKnown) {
			known++
		}
		if unknown != tt.size-tt.reserved || known != tt.reserved {
			t.Errorf("size %d: unknown tokens took %d slots, known tokens then %d; want %d and %d",
				tt.size, unknown, known, tt.size-tt.reserved, tt.reserved)
		}
	}
}

// waiting is how many callers wait in lane l.
func (s *slots) waiting(l lane) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queues[l].Len()
}

// TestSlotsPriority: a freed slot goes to a waiting known token before an
// unknown one that waited longer, and an unknown token never takes the
// reserved slot.
func TestSlotsPriority(t *testing.T) {
	s := newSlots(2) // one slot reserved for known tokens
	if !s.tryAcquire(laneUnknown) || s.tryAcquire(laneUnknown) || !s.tryAcquire(laneKnown) {
		t.Fatal("setup: want one unknown and one known slot")
	}
	never := make(chan time.Time)
	got := make(chan lane, 2)
	wait := func(l lane) {
		go func() {
			if s.acquire(t.Context(), l, never) {
				got <- l
			}
		}()
		deadline := time.Now().Add(5 * time.Second)
		for s.waiting(l) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("waiter never queued")
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait(laneUnknown) // first in line
	wait(laneKnown)
	s.release()
	if l := <-got; l != laneKnown {
		t.Fatalf("first freed slot went to lane %d, want the known token", l)
	}
	// One slot in use (the known token's): the other free slot is the
	// reserved one, which the unknown token may not take.
	s.release()
	select {
	case l := <-got:
		t.Fatalf("lane %d got the reserved slot", l)
	default:
	}
	s.release()
	if l := <-got; l != laneUnknown {
		t.Fatalf("got lane %d, want the unknown token", l)
	}
	if n := s.inUse(); n != 1 {
		t.Errorf("in use = %d, want 1", n)
	}

	// With one slot nothing is reserved: the order alone puts the known
	// token first.
	s = newSlots(1)
	if !s.tryAcquire(laneUnknown) {
		t.Fatal("setup")
	}
	wait(laneUnknown)
	wait(laneKnown)
	s.release()
	if l := <-got; l != laneKnown {
		t.Fatalf("the one slot went to lane %d, want the known token", l)
	}
	s.release()
	if l := <-got; l != laneUnknown {
		t.Fatalf("got lane %d, want the unknown token", l)
	}
}

// TestSlotsGiveUp: a waiter whose deadline fires leaves the queue, and an
// unknown waiter stuck behind a known one that left gets the slot.
func TestSlotsGiveUp(t *testing.T) {
	s := newSlots(4) // 3 for unknown tokens
	s.tryAcquire(laneUnknown)
	s.tryAcquire(laneUnknown)
	s.tryAcquire(laneKnown)
	s.tryAcquire(laneKnown)
	fire := make(chan time.Time)
	knownDone := make(chan bool)
	go func() { knownDone <- s.acquire(t.Context(), laneKnown, fire) }()
	for s.waiting(laneKnown) == 0 {
		time.Sleep(time.Millisecond)
	}
	unknownDone := make(chan bool)
	never := make(chan time.Time)
	go func() { unknownDone <- s.acquire(t.Context(), laneUnknown, never) }()
	for s.waiting(laneUnknown) == 0 {
		time.Sleep(time.Millisecond)
	}
	close(fire)
	if <-knownDone {
		t.Fatal("known waiter got a slot although none was freed")
	}
	s.release() // 3 in use: all an unknown token may use
	if s.waiting(laneUnknown) != 1 {
		t.Fatal("unknown waiter granted a reserved slot")
	}
	s.release() // 2 in use
	if !<-unknownDone {
		t.Fatal("unknown waiter not granted")
	}
	if s.waiting(laneKnown)+s.waiting(laneUnknown) != 0 || s.inUse() != 3 {
		t.Errorf("waiting %d/%d, in use %d", s.waiting(laneKnown), s.waiting(laneUnknown), s.inUse())
	}
	// A caller whose context ends leaves too.
	if !s.tryAcquire(laneKnown) {
		t.Fatal("the last slot is not free for a known token")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s.acquire(ctx, laneKnown, never) {
		t.Error("acquire with a cancelled context and no free slot succeeded")
	}
}

func TestKnownTokensBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k := newKnownTokens(5)
	d := func(i int) *[32]byte { return digestOf(fmt.Sprint("tok-", i)) }
	for i := range 10 {
		k.remember(d(i), now.Add(time.Hour), now)
	}
	// Two generations of 2: the four most recent are known, no more.
	if n := k.len(); n != 4 {
		t.Fatalf("len = %d, want 4", n)
	}
	for i := range 6 {
		if _, ok := k.lookup(d(i), now); ok {
			t.Errorf("token %d of 10 is still known past the bound", i)
		}
	}
	// Seen again, a token of the older generation outlives newer ones.
	k.lookup(d(6), now)
	k.remember(d(10), now.Add(time.Hour), now)
	if _, ok := k.lookup(d(6), now); !ok {
		t.Error("a token looked up lately was forgotten before those accepted earlier")
	}
	if _, ok := k.lookup(d(7), now); ok {
		t.Error("the least recently seen token is still known")
	}
	if _, ok := k.lookup(d(0), now); ok {
		t.Error("the least recently accepted token is still known")
	}
	exp, ok := k.lookup(d(9), now)
	if !ok || !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("lookup = %v %v", exp, ok)
	}
	// Remembered past exp (so that it is refused at once), then dropped.
	if _, ok := k.lookup(d(9), now.Add(time.Hour+knownExpiredGrace-time.Second)); !ok {
		t.Error("forgotten within the grace after exp")
	}
	n0 := k.len()
	if _, ok := k.lookup(d(9), now.Add(time.Hour+knownExpiredGrace)); ok {
		t.Error("still known after exp + grace")
	}
	if n := k.len(); n != n0-1 {
		t.Errorf("len = %d after the lookup past keep, want %d", n, n0-1)
	}
	// No exp: known for a day after acceptance, with no exp to refuse by.
	k.remember(d(100), time.Time{}, now)
	if exp, ok := k.lookup(d(100), now.Add(knownNoExpiry-time.Second)); !ok || !exp.IsZero() {
		t.Errorf("token without exp: %v %v", exp, ok)
	}
	if _, ok := k.lookup(d(100), now.Add(knownNoExpiry)); ok {
		t.Error("token without exp known past knownNoExpiry")
	}
	k.forget(d(8))
	if _, ok := k.lookup(d(8), now); ok {
		t.Error("forgotten token still known")
	}
}

func TestClientsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newClients(1, 1, 2, 100)
	for i := range 10_000 {
		c.get(fmt.Sprint("addr-", i), now).charge(now)
		if n := c.len(); n > 100 {
			t.Fatalf("after %d addresses the table holds %d clients, max 100", i+1, n)
		}
	}
	// The most recent client is still limited...
	if _, ok := c.get("addr-9999", now).mayAsk(now); ok {
		t.Error("recent client's bucket was dropped")
	}
	// ...a busy one is kept past the idle period...
	busy := c.get("busy", now)
	busy.places <- struct{}{}
	// ...and idle ones expire.
	later := now.Add(clientIdle)
	if _, ok := c.get("fresh", later).mayAsk(later); !ok {
		t.Error("new client limited")
	}
	if n := c.len(); n != 2 {
		t.Errorf("after the idle period %d clients remain, want 2 (busy, fresh)", n)
	}
	if got := c.get("busy", later); got != busy {
		t.Error("a client with tokens in flight was forgotten")
	}
	if d := newClients(0.001, 10, 1, 1).idle; d < 10_000*time.Second {
		t.Errorf("idle = %v, shorter than the bucket's refill time", d)
	}
}

// TestRefusalsCharged: a client's bucket is emptied only by refused
// tokens; new valid tokens, known tokens and cache hits are never charged
// or limited.
func TestRefusalsCharged(t *testing.T) {
	srv := introspecttest.New(t)
	obs := newCountingObserver()
	v, clk := newTestVerifier(t, srv, func(c *Config) {
		c.RefusalRate = 0.01 // one refusal per 100s
		c.RefusalBurst = 3
		c.CacheMaxTTL = time.Second
		c.ClockSkew = 0
		c.Observer = obs
	})
	alice := WithClient(t.Context(), "198.51.100.7")
	bob := WithClient(t.Context(), "198.51.100.8")
	tokens := func() float64 { return v.clients.get("198.51.100.7", clk.Now()).lim.TokensAt(clk.Now()) }

	// Many users behind one address: 200 new valid tokens, no charge.
	var known, shortLived string
	for i := range 200 {
		tok := srv.Issue(fmt.Sprint("user-", i), nil, testResource, time.Hour)
		if _, err := v.Verify(alice, tok); err != nil {
			t.Fatalf("valid token %d: %v", i, err)
		}
		known = tok
	}
	shortLived = srv.Issue("short", nil, testResource, 3*time.Second)
	if _, err := v.Verify(alice, shortLived); err != nil {
		t.Fatal(err)
	}
	if got := tokens(); got != 3 {
		t.Fatalf("bucket = %v after valid tokens only, want 3 (full)", got)
	}
	// Three refusals empty it; the fourth unknown token is not asked about.
	for i := range 3 {
		if _, err := v.Verify(alice, fmt.Sprint("garbage-", i)); reasonOf(err) != accesstoken.ReasonInactive {
			t.Fatalf("garbage %d: %v", i, err)
		}
	}
	v.Wait()
	calls := srv.Calls()
	_, err := v.Verify(alice, "garbage-new")
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 100*time.Second {
		t.Fatalf("err = %v, want RateLimitError{100s}", err)
	}
	if srv.Calls() != calls || obs.shedCount("rate") != 1 {
		t.Errorf("rate-limited miss: %d calls, Shed(rate) %d; want none, 1", srv.Calls()-calls, obs.shedCount("rate"))
	}
	// A new valid token from the flooding address waits for the bucket
	// too: that address has proven hostile.
	if _, err := v.Verify(alice, srv.Issue("newcomer", nil, testResource, time.Hour)); !errors.As(err, &rl) {
		t.Errorf("new token from an emptied bucket: %v, want RateLimitError", err)
	}
	// Cache hits, positive and negative, are never limited.
	for range 50 {
		if _, err := v.Verify(alice, known); err != nil {
			t.Fatalf("cache hit limited: %v", err)
		}
		if _, err := v.Verify(alice, "garbage-0"); reasonOf(err) != accesstoken.ReasonInactive {
			t.Fatalf("negative cache hit limited: %v", err)
		}
	}
	// A known token whose answer aged out is re-checked, not limited.
	clk.Advance(2 * time.Second)
	calls = srv.Calls()
	if _, err := v.Verify(alice, known); err != nil {
		t.Fatalf("known token re-check: %v", err)
	}
	if srv.Calls() != calls+1 {
		t.Errorf("known token re-check made %d calls, want 1", srv.Calls()-calls)
	}
	// Revoked: refused, forgotten, and not charged (it was known).
	srv.Revoke(known)
	clk.Advance(2 * time.Second)
	before := tokens()
	if _, err := v.Verify(alice, known); reasonOf(err) != accesstoken.ReasonInactive {
		t.Fatalf("revoked known token: %v", err)
	}
	if got := tokens(); got != before {
		t.Errorf("bucket %v -> %v: a known token's refusal was charged", before, got)
	}
	if _, ok := v.seen.lookup(digestOf(known), clk.Now()); ok {
		t.Error("a refused token is still known")
	}
	// Expired since it was accepted: refused at once, no call, no charge.
	calls = srv.Calls()
	if _, err := v.Verify(alice, shortLived); reasonOf(err) != accesstoken.ReasonExpired {
		t.Fatalf("expired known token: %v", err)
	}
	if srv.Calls() != calls || tokens() != before {
		t.Errorf("expired known token: %d calls, bucket %v; want none, %v", srv.Calls()-calls, tokens(), before)
	}
	// Another client, and requests naming no client, are not affected.
	if _, err := v.Verify(bob, "garbage-bob"); reasonOf(err) != accesstoken.ReasonInactive {
		t.Fatalf("other client: %v", err)
	}
	for i := range 10 {
		if _, err := v.Verify(t.Context(), fmt.Sprint("anon-", i)); reasonOf(err) != accesstoken.ReasonInactive {
			t.Fatalf("no client: %v", err)
		}
	}
	// Not cached: once the bucket refills, the same token is introspected.
	clk.Advance(100 * time.Second)
	srv.AddToken("garbage-new", map[string]any{"aud": testResource})
	if _, err := v.Verify(alice, "garbage-new"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

// TestClientConcurrency: against a hanging authorization server one
// client holds at most ClientConcurrency unknown tokens in flight; the
// rest are shed at once (503, never 429), and another client still gets a
// slot.
func TestClientConcurrency(t *testing.T) {
	srv := introspecttest.New(t)
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	obs := newCountingObserver()
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.MaxConcurrency = 8; c.ClientConcurrency = 3; c.Observer = obs })
	v.shedWait = 20 * time.Millisecond
	alice := WithClient(t.Context(), "198.51.100.7")
	bob := WithClient(t.Context(), "198.51.100.8")

	var wg sync.WaitGroup
	var shed, other atomic.Int64
	for i := range 7 {
		wg.Go(func() {
			_, err := v.Verify(alice, fmt.Sprint("unknown-", i))
			var rl *RateLimitError
			switch {
			case errors.As(err, &rl):
				t.Errorf("429 for a client that sent nothing refused: %v", err)
			case errors.Is(err, ErrOverloaded):
				shed.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	for range 3 {
		<-entered
	}
	// The other four are shed after shedWait, without reaching the AS.
	deadline := time.Now().Add(5 * time.Second)
	for shed.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d shed, want 4", shed.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if n := srv.Calls(); n != 3 {
		t.Errorf("AS calls = %d with alice's places full, want 3", n)
	}
	if n := obs.shedCount(string(ShedClientConcurrency)); n != 4 {
		t.Errorf("Shed(client_concurrency) = %d, want 4", n)
	}
	// Bob is not held up by alice.
	bobDone := make(chan error, 1)
	go func() { _, err := v.Verify(bob, "bob-unknown"); bobDone <- err }()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("bob's unknown token never reached the authorization server")
	}
	close(release)
	wg.Wait()
	if err := <-bobDone; reasonOf(err) != accesstoken.ReasonInactive {
		t.Errorf("bob: %v", err)
	}
	if other.Load() != 3 {
		t.Errorf("%d of alice's tokens answered, want 3", other.Load())
	}
	if n := len(v.clients.get("198.51.100.7", time.Now()).places); n != 0 {
		t.Errorf("alice still holds %d places", n)
	}
	if n := v.slots.inUse(); n != 0 {
		t.Errorf("%d slots still held", n)
	}
}

// TestKnownTokenAheadOfFlood: unknown tokens hanging at the authorization
// server fill every slot they may take; a known token's re-check still
// gets the reserved slot and is answered at once.
func TestKnownTokenAheadOfFlood(t *testing.T) {
	srv := introspecttest.New(t)
	release := make(chan struct{})
	var garbageIn atomic.Int64
	srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.PostForm.Get("token"), "garbage-") {
			garbageIn.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return false
	})
	v, clk := newTestVerifier(t, srv, func(c *Config) { c.MaxConcurrency = 4; c.CacheMaxTTL = time.Second })
	v.shedWait = 50 * time.Millisecond
	tok := srv.Issue("alice", nil, testResource, time.Hour)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second) // aged out of the cache: known, not fresh

	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	for i := range 10 {
		wg.Go(func() { _, _ = v.Verify(t.Context(), fmt.Sprint("garbage-", i)) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for garbageIn.Load() < 3 { // the unknown tokens' share: 4 - 1 reserved
		if time.Now().After(deadline) {
			t.Fatalf("%d garbage introspections in flight, want 3", garbageIn.Load())
		}
		time.Sleep(time.Millisecond)
	}
	for range 20 {
		info, err := v.Verify(t.Context(), tok)
		if err != nil || info.UserID != "alice" {
			t.Fatalf("known token during the flood: %v", err)
		}
		clk.Advance(2 * time.Second)
	}
	if n := garbageIn.Load(); n != 3 {
		t.Errorf("%d garbage introspections reached the AS, want 3", n)
	}
}
