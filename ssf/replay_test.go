package ssf

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestReplayCache(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	ttl := time.Minute
	c, err := newReplayCache(2, ttl)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		op      string // "reserve", "release", "seen"
		jti     string
		at      time.Duration // after t0
		wantErr error         // for reserve: nil, errReplay, or a *errFull (matched by type)
		seen    bool          // for "seen"
	}{
		{name: "first", op: "reserve", jti: "a", at: 0},
		{name: "replay", op: "reserve", jti: "a", at: time.Second, wantErr: errReplay},
		{name: "seen", op: "seen", jti: "a", at: time.Second, seen: true},
		{name: "second", op: "reserve", jti: "b", at: 2 * time.Second},
		{name: "full of live entries: refused, nothing evicted", op: "reserve", jti: "c", at: 3 * time.Second, wantErr: &errFull{}},
		{name: "a still remembered", op: "reserve", jti: "a", at: 4 * time.Second, wantErr: errReplay},
		{name: "a expired frees a slot", op: "reserve", jti: "c", at: ttl},
		{name: "a forgotten after expiry", op: "seen", jti: "a", at: ttl, seen: false},
		{name: "b still live", op: "reserve", jti: "b", at: ttl + time.Second, wantErr: errReplay},
		{name: "release forgets", op: "release", jti: "b", at: ttl + time.Second},
		{name: "b accepted again after release", op: "reserve", jti: "b", at: ttl + time.Second},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		switch s.op {
		case "reserve":
			err := c.reserve(s.jti, now)
			var full *errFull
			switch want := s.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("%s: reserve(%q) = %v, want nil", s.name, s.jti, err)
				}
			case *errFull:
				if !errors.As(err, &full) {
					t.Fatalf("%s: reserve(%q) = %v, want *errFull", s.name, s.jti, err)
				}
				if full.wait <= 0 || full.wait > ttl {
					t.Fatalf("%s: wait %v", s.name, full.wait)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("%s: reserve(%q) = %v, want %v", s.name, s.jti, err, want)
				}
			}
		case "release":
			c.release(s.jti)
		case "seen":
			if got := c.seenAt(s.jti, now); got != s.seen {
				t.Fatalf("%s: seenAt(%q) = %v, want %v", s.name, s.jti, got, s.seen)
			}
		}
	}
}

// TestReplayCacheConcurrentReserve: of many goroutines reserving one jti at
// once, exactly one succeeds.
func TestReplayCacheConcurrentReserve(t *testing.T) {
	c, err := newReplayCache(100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	for round := range 20 {
		jti := fmt.Sprint("jti-", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 16 {
			wg.Go(func() {
				if c.reserve(jti, now) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("round %d: %d reservations succeeded, want 1", round, ok)
		}
	}
}
