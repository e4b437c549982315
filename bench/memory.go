package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-gateway/mcp-gateway/introspect"
)

// heapAlloc is the live heap after two full collections (the second one
// also empties sync.Pool victim caches).
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// fillResult is what one fill of a fresh verifier measured.
type fillResult struct {
	Heap     int64 // live heap growth caused by the fill
	Cached   int   // tokens answered from the cache afterwards (-1: not counted)
	Duration time.Duration
}

// fill builds a verifier exactly as main.go does (with CACHE_MAX_BYTES =
// maxBytes), has it verify n never-seen valid tokens through real Verify
// calls against the zero-latency fake AS, and measures the live heap the
// cache then holds. With count, every token is verified again and those
// that need no introspection are counted as cached.
func (b *bench) fill(ctx context.Context, maxBytes int64, n int, ns string, count bool) (fillResult, error) {
	v, err := newVerifier(ctx, b.as.URL, b.gw.URL, maxBytes, benchLogger(), nil, true, introspect.SharedTier{})
	if err != nil {
		return fillResult{}, err
	}
	defer v.Close()
	if err := v.Ready(ctx); err != nil {
		return fillResult{}, err
	}
	const workers = 32
	// Open the verifier's connections to the AS before measuring, so that
	// their buffers are not counted as cache: a short latency makes the
	// warm-up calls overlap. These 32 cached answers are in the baseline.
	b.as.SetLatency(5 * time.Millisecond)
	if err := verifyAll(ctx, v, workers, workers, func(i int64) string { return tokenAt(ns+"w", i) }); err != nil {
		b.as.SetLatency(0)
		return fillResult{}, err
	}
	b.as.SetLatency(0)

	before := heapAlloc()
	start := time.Now()
	if err := verifyAll(ctx, v, workers, n, func(i int64) string { return tokenAt(ns, i) }); err != nil {
		return fillResult{}, err
	}
	// Every accepted answer is in the cache when Verify returns (the
	// verifier waits for ristretto to apply its own Set).
	r := fillResult{Duration: time.Since(start), Cached: -1}
	r.Heap = int64(heapAlloc()) - int64(before)

	if count {
		calls := b.as.Calls()
		if err := verifyAll(ctx, v, 1, n, func(i int64) string { return tokenAt(ns, i) }); err != nil {
			return r, err
		}
		r.Cached = n - int(b.as.Calls()-calls)
	}
	runtime.KeepAlive(v)
	return r, nil
}

// verifyAll verifies tokens tok(1..n) with the given concurrency; every one
// must be accepted.
func verifyAll(ctx context.Context, v *introspect.Verifier, workers, n int, tok func(int64) string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil {
					return
				}
				if _, err := v.Verify(ctx, tok(i)); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

func (b *bench) memory(ctx context.Context) error {
	n := b.o.MemTokens
	fmt.Fprintf(b.out, "[5] memory: %d tokens into a fresh verifier (CACHE_MAX_BYTES 1 GiB so none is evicted), then a bounded one\n", n)
	a, err := b.fill(ctx, 1<<30, n, b.ns+"m", true)
	if err != nil {
		return err
	}
	if a.Cached <= 0 {
		return fmt.Errorf("no token was cached (%d verified)", n)
	}
	per := float64(a.Heap) / float64(a.Cached)
	b.logf("filled %d tokens in %v: heap +%.1f MiB, %d cached, %.0f B per cached token", n, a.Duration.Round(time.Millisecond), float64(a.Heap)/(1<<20), a.Cached, per)
	b.add(row{ID: "5a", Target: fmt.Sprintf("heap per cached token (%d tokens)", n),
		Measured: fmt.Sprintf("%.0f B (heap +%.1f MiB, %d of %d cached)", per, float64(a.Heap)/(1<<20), a.Cached, n),
		Goal:     "<= 1024 B", Verdict: verdict(per <= 1024 && a.Cached >= n*99/100), Enforced: true})

	bound := b.o.BoundMaxBytes
	nb := int(3 * float64(bound) / per)
	bb, err := b.fill(ctx, bound, nb, b.ns+"b", false)
	if err != nil {
		return err
	}
	held := float64(bb.Heap) / per
	b.logf("bounded: %d tokens (3x what %d bytes hold) in %v: heap +%.2f MiB (~%.0f entries)", nb, bound, bb.Duration.Round(time.Millisecond), float64(bb.Heap)/(1<<20), held)
	b.add(row{ID: "5b", Target: fmt.Sprintf("cache heap with CACHE_MAX_BYTES=%d, %d tokens offered", bound, nb),
		Measured: fmt.Sprintf("+%.2f MiB (~%.0f entries kept)", float64(bb.Heap)/(1<<20), held),
		Goal:     fmt.Sprintf("<= %.2f MiB", float64(bound)/(1<<20)), Verdict: verdict(bb.Heap <= bound), Enforced: true})
	return nil
}
