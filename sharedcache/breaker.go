package sharedcache

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// firstBackoff is the pause before the first background probe of an
// unavailable Redis; it doubles up to Config.MaxBackoff.
const firstBackoff = 100 * time.Millisecond

// breaker is the circuit in front of Redis. After FailureThreshold
// consecutive tripping failures (failure()) it opens: every call returns at
// once as a miss, so an outage costs each request nothing instead of
// Timeout. While open, a background goroutine (probe) pings Redis with
// exponential backoff and closes the circuit on the first answer.
//
// It is hand-written rather than taken from sony/gobreaker because the
// probing is the point: gobreaker's half-open state lets a real request
// through as the probe, so a request pays Timeout on every retry period
// while Redis is down, and it has no backoff. Here no request ever pays for
// a probe.
type breaker struct {
	threshold int32
	fails     atomic.Int32
	open      atomic.Bool
	kick      chan struct{} // wakes the prober when the circuit opens
	onChange  func(open bool)
}

func newBreaker(threshold int, onChange func(open bool)) *breaker {
	return &breaker{threshold: int32(threshold), kick: make(chan struct{}, 1), onChange: onChange}
}

// allow reports whether a call may go to Redis.
func (b *breaker) allow() bool { return !b.open.Load() }

// success resets the count of consecutive failures.
func (b *breaker) success() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
}

// failure counts a tripping failure and opens the circuit at the threshold.
func (b *breaker) failure() {
	if b.fails.Add(1) >= b.threshold && b.open.CompareAndSwap(false, true) {
		b.onChange(true)
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// close closes the circuit after a successful probe.
func (b *breaker) close() {
	b.fails.Store(0)
	if b.open.CompareAndSwap(true, false) {
		b.onChange(false)
	}
}

// probe runs until stop is done: each time the circuit opens, it pings
// with ping (bounded by its own timeout) after 100 ms, 200 ms, ... up to
// maxBackoff (with ±20% jitter, so that machines do not probe in step)
// until one succeeds, then closes the circuit.
func (b *breaker) probe(stop context.Context, maxBackoff time.Duration, ping func(context.Context) error) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-b.kick:
		}
		for d := firstBackoff; b.open.Load(); d = min(2*d, maxBackoff) {
			timer.Reset(jitter(d))
			select {
			case <-stop.Done():
				return
			case <-timer.C:
			}
			if ping(stop) == nil {
				b.close()
			}
		}
	}
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + rand.N(2*d/5+1)
}
