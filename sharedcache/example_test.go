package sharedcache_test

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// The verifier's miss path with the shared tier, after its in-process cache
// missed and inside its in-process singleflight (so one call per machine
// per token reaches Redis). introspect stands for the RFC 7662 call; the
// value is the verified claims the verifier serialises, never the token.
func Example() {
	ctx := context.Background()
	secret, _ := sharedcache.DeriveKeySecret("the INTROSPECTION_CLIENT_SECRET, or CACHE_KEY_SECRET")
	store, err := sharedcache.New(ctx, sharedcache.Config{
		URL:       "redis://localhost:6379/0", // REDIS_URL
		KeySecret: secret,
		Timeout:   50 * time.Millisecond, // REDIS_TIMEOUT
	})
	if err != nil {
		return // configuration error: refuse to start
	}
	defer store.Close()

	// Revocations from any machine invalidate older in-process entries.
	revoked := sharedcache.NewRevocationSet(time.Minute /* CACHE_MAX_TTL */, 0, nil)
	defer store.Subscribe(revoked.Add)()

	introspect := func() ([]byte, time.Duration, error) { return []byte(`{"sub":"alice"}`), time.Minute, nil }
	d := sha256.Sum256([]byte("the bearer token"))

	if hit, ok := store.Get(ctx, d); ok && !revoked.Revoked(store.ID(d), sharedcache.Principal{Sub: "alice", ClientID: "client"}, hit.StoredAt) {
		_ = hit.Value // decode, re-check exp/nbf/aud/scopes, keep in process
		return
	}
	switch res, lease := store.Lock(ctx, d, 5*time.Second /* the introspection timeout */); res {
	case sharedcache.LockWon:
		defer lease.Release() // no-op after Fill
		if v, ttl, err := introspect(); err == nil {
			lease.Fill(ctx, v, ttl)
		}
	case sharedcache.LockHeld:
		if hit, ok := store.Await(ctx, d, 5*time.Second); ok {
			_ = hit // as a Get hit
			return
		}
		// Nothing landed in time: introspect alone.
	case sharedcache.LockFilled:
		// Another machine answered meanwhile: Get it (as above).
	case sharedcache.LockUnavailable:
		// Redis is down, slow or full: introspect alone, then Set
		// (skipped at once while the circuit is open).
		if v, ttl, err := introspect(); err == nil {
			store.Set(ctx, d, v, ttl)
		}
	}
}
