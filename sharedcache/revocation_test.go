package sharedcache

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

// collector is a Subscribe handler that keeps what it receives.
type collector struct {
	mu  sync.Mutex
	got []Revocation
	ch  chan Revocation
}

func newCollector() *collector { return &collector{ch: make(chan Revocation, 1024)} }

func (c *collector) add(r Revocation) {
	c.mu.Lock()
	c.got = append(c.got, r)
	c.mu.Unlock()
	select {
	case c.ch <- r:
	default:
	}
}

func (c *collector) has(kind, value string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.got {
		if r.Kind == kind && r.Value == value {
			return true
		}
	}
	return false
}

// waitFor waits up to within for a revocation of kind/value and returns how
// long it took.
func (c *collector) waitFor(t *testing.T, kind, value string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for !c.has(kind, value) {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("revocation %s=%s not delivered within %v", kind, value, within)
		}
	}
	return time.Since(start)
}

// A revocation published at one machine reaches the others, and itself,
// within a second, for every kind.
func TestRevocationReachesEveryMachine(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newStore(t, srv.URL())
	b, _ := newStore(t, srv.URL())
	ca, cb := newCollector(), newCollector()
	defer a.Subscribe(ca.add)()
	defer b.Subscribe(cb.add)()
	subscribed(t, a)
	subscribed(t, b)
	ctx := context.Background()

	tokenID := a.ID(digest("stolen-token")).String()
	for _, r := range []Revocation{
		{Kind: KindToken, Value: tokenID},
		{Kind: KindSub, Value: "user-42"},
		{Kind: KindClientID, Value: "compromised-client"},
	} {
		start := time.Now()
		if err := a.Revoke(ctx, r, time.Minute); err != nil {
			t.Fatalf("Revoke %s: %v", r.Kind, err)
		}
		cb.waitFor(t, r.Kind, r.Value, time.Second)
		t.Logf("%s revocation delivered to the other machine %v after Revoke was called", r.Kind, time.Since(start))
		ca.waitFor(t, r.Kind, r.Value, time.Second)
	}
}

// A token revocation also removes the token's shared value: no machine
// can read it back from Redis.
func TestRevokeTokenDeletesSharedValue(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL())
	ctx := context.Background()
	d := digest("revoked-token")
	s.Set(ctx, d, []byte("claims"), time.Minute)
	if err := s.Revoke(ctx, Revocation{Kind: KindToken, Value: s.ID(d).String()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(ctx, d); ok {
		t.Fatal("revoked token's value still in Redis")
	}
}

// A token revocation that names the token by another ID than its value's
// (a JWT: by its signed content) deletes the value Purge names, and
// publishes only Kind, Value and At.
func TestRevokeTokenPurgesTheNamedValue(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL())
	ctx := context.Background()
	whole, signed := digest("header.payload.signature"), digest("header.payload")
	s.Set(ctx, whole, []byte("claims"), time.Minute)
	if err := s.Revoke(ctx, Revocation{Kind: KindToken, Value: s.ID(signed).String(), Purge: s.ID(whole)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(ctx, whole); ok {
		t.Fatal("the revoked token's value is still in Redis")
	}
	revs, err := s.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].Value != s.ID(signed).String() || revs[0].Purge != (ID{}) {
		t.Fatalf("records %+v, want the one revocation, by its Value, without Purge", revs)
	}
}

// A machine that starts after a revocation (it missed the message) still
// honours it: Revocations lists it and Subscribe replays it.
func TestLateMachineSeesEarlierRevocations(t *testing.T) {
	srv := redistest.Start(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	fc := newFakeClock(now)
	clock := fc.now
	a, _ := newStore(t, srv.URL(), func(c *Config) { c.Now = clock })
	ctx := context.Background()
	at := now.Add(-time.Second)
	if err := a.Revoke(ctx, Revocation{Kind: KindSub, Value: "alice", At: at}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, Revocation{Kind: KindClientID, Value: "evil-client"}, time.Minute); err != nil {
		t.Fatal(err)
	}

	late, _ := newStore(t, srv.URL(), func(c *Config) { c.Now = clock })
	rs, err := late.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("Revocations = %+v, want the 2 live records", rs)
	}
	for _, r := range rs {
		if r.Kind == KindSub && (r.Value != "alice" || !r.At.Equal(at)) {
			t.Errorf("record %+v, want alice at %v", r, at)
		}
		if r.Kind == KindClientID && !r.At.Equal(now) {
			t.Errorf("zero At not set to now: %+v", r)
		}
	}
	c := newCollector()
	defer late.Subscribe(c.add)()
	c.waitFor(t, KindSub, "alice", 5*time.Second)
	c.waitFor(t, KindClientID, "evil-client", 5*time.Second)

	// Records expire with their TTL (by the Store's clock).
	fc.add(2 * time.Minute)
	if rs, err := late.Revocations(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("after the TTL: %+v %v, want none", rs, err)
	}
}

func TestRevokeValidates(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL())
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		r    Revocation
		ttl  time.Duration
	}{
		{"unknown kind", Revocation{Kind: "phone_number", Value: "+15555550100"}, time.Minute},
		{"empty email", Revocation{Kind: KindEmail}, time.Minute},
		{"empty sub", Revocation{Kind: KindSub}, time.Minute},
		{"long sub", Revocation{Kind: KindSub, Value: strings.Repeat("x", 1025)}, time.Minute},
		{"not utf-8", Revocation{Kind: KindClientID, Value: "\xff"}, time.Minute},
		{"raw token", Revocation{Kind: KindToken, Value: "eyJhbGciOi.not-an-id"}, time.Minute},
		{"uppercase id", Revocation{Kind: KindToken, Value: strings.ToUpper(s.ID(digest("t")).String())}, time.Minute},
		{"no ttl", Revocation{Kind: KindSub, Value: "bob"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ie *InvalidError
			if err := s.Revoke(ctx, tt.r, tt.ttl); !errors.As(err, &ie) {
				t.Fatalf("Revoke = %v, want *InvalidError", err)
			}
		})
	}
	if rs, _ := s.Revocations(ctx); len(rs) != 0 {
		t.Fatalf("refused revocations were stored: %+v", rs)
	}
}

// Records that are not ours (another writer, a corrupted entry) are
// skipped, never delivered.
func TestMalformedRecordsSkipped(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL())
	raw := rawClient(t, srv.Addr)
	ctx := context.Background()
	c := newCollector()
	defer s.Subscribe(c.add)()
	subscribed(t, s)
	future := float64(time.Now().Add(time.Hour).UnixMilli())
	raw.ZAdd(ctx, s.keys.revocations(), redisZ(future, `not json`), redisZ(future, `{"kind":"sub","value":"","at":"2026-01-01T00:00:00Z"}`))
	raw.Publish(ctx, s.keys.revokeChan(), `{"kind":"nope"}`)
	if err := s.Revoke(ctx, Revocation{Kind: KindSub, Value: "good"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, KindSub, "good", time.Second)
	rs, err := s.Revocations(ctx)
	if err != nil || len(rs) != 1 || rs[0].Value != "good" {
		t.Fatalf("Revocations = %+v %v, want only the good record", rs, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.got {
		if r.Value != "good" {
			t.Fatalf("delivered a malformed record: %+v", r)
		}
	}
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

// When only the pub/sub connection drops (commands keep working, so the
// circuit never opens), go-redis resubscribes and the Store re-reads the
// records: a record whose message was missed is still delivered.
func TestResubscribeRereadsRecords(t *testing.T) {
	srv := redistest.Start(t)
	s, rec := newStore(t, srv.URL())
	raw := rawClient(t, srv.Addr)
	ctx := context.Background()
	// Let the reads made at subscription and at registration happen
	// first, so that only the resubscription can deliver the record below.
	subscribed(t, s)
	reads := func() int { return rec.count(OpRevocations, OutcomeOK) }
	eventually(t, 5*time.Second, "first read of the records", func() bool { return reads() >= 1 })
	n0 := reads()
	c := newCollector()
	defer s.Subscribe(c.add)()
	eventually(t, 5*time.Second, "read at registration", func() bool { return reads() > n0 })

	// A record whose message this machine never got.
	missed, _ := json.Marshal(Revocation{Kind: KindSub, Value: "missed", At: time.Now()})
	raw.ZAdd(ctx, s.keys.revocations(), redisZ(float64(time.Now().Add(time.Hour).UnixMilli()), string(missed)))
	subs := s.bus.subscriptions.Load()
	if err := raw.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, KindSub, "missed", 10*time.Second)
	if s.bus.subscriptions.Load() <= subs {
		t.Fatal("delivered without a resubscription")
	}
	if ev := rec.circuitEvents(); len(ev) != 0 {
		t.Fatalf("circuit changed (%v): the test must exercise the resubscription alone", ev)
	}
}

// RevocationsSynced is false until the records are read, and again from a
// failure that may have lost messages until they are read again.
func TestRevocationsSynced(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL(), func(c *Config) { c.Timeout = 100 * time.Millisecond })
	if s.RevocationsSynced() && s.bus.subscriptions.Load() == 0 {
		t.Fatal("synced before anything was read")
	}
	eventually(t, 5*time.Second, "first read of the records", s.RevocationsSynced)

	srv.Kill()
	eventually(t, 5*time.Second, "circuit to open", func() bool {
		s.Get(context.Background(), digest("x"))
		return !s.Healthy()
	})
	if s.RevocationsSynced() {
		t.Fatal("still synced while Redis is down")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "records read again after Redis came back", s.RevocationsSynced)
	s.Close()
	if s.RevocationsSynced() {
		t.Fatal("synced after Close")
	}
}
