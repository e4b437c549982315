package sharedcache

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestRevocationSet(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	id := newKeyer(testSecret, DefaultPrefix).id(&[32]byte{1})
	other := newKeyer(testSecret, DefaultPrefix).id(&[32]byte{2})
	type check struct {
		id         ID
		sub, cid   string
		verifiedAt time.Time
		email      string
		want       bool
	}
	for _, tt := range []struct {
		name   string
		add    []Revocation
		now    time.Time // when the records are added and checked
		checks []check
	}{
		{
			name: "empty set revokes nothing",
			now:  t0,
			checks: []check{
				{id, "alice", "app", t0.Add(-time.Hour), "", false},
			},
		},
		{
			name: "token: older entries refused, newer ones and other tokens kept",
			add:  []Revocation{{Kind: KindToken, Value: id.String(), At: t0}},
			now:  t0,
			checks: []check{
				{id, "", "", t0.Add(-time.Second), "", true},
				{id, "", "", t0, "", true}, // verified at the very instant: refused
				{id, "", "", t0.Add(time.Millisecond), "", false},
				{other, "", "", t0.Add(-time.Second), "", false},
			},
		},
		{
			name: "sub and client_id",
			add: []Revocation{
				{Kind: KindSub, Value: "alice", At: t0},
				{Kind: KindClientID, Value: "evil", At: t0},
			},
			now: t0,
			checks: []check{
				{other, "alice", "good", t0.Add(-time.Second), "", true},
				{other, "bob", "evil", t0.Add(-time.Second), "", true},
				{other, "bob", "good", t0.Add(-time.Second), "", false},
				{other, "", "", t0.Add(-time.Second), "", false}, // empty names match nothing
				{other, "alice", "", t0.Add(time.Second), "", false},
			},
		},
		{
			name: "learned late: judged by the receipt time, not At",
			add:  []Revocation{{Kind: KindSub, Value: "alice", At: t0}},
			now:  t0.Add(10 * time.Second),
			checks: []check{
				{id, "alice", "", t0.Add(5 * time.Second), "", true},
				{id, "alice", "", t0.Add(11 * time.Second), "", false},
			},
		},
		{
			name: "far-future At clamped to now",
			add:  []Revocation{{Kind: KindSub, Value: "alice", At: t0.Add(24 * time.Hour)}},
			now:  t0,
			checks: []check{
				{id, "alice", "", t0.Add(-time.Second), "", true},
				{id, "alice", "", t0.Add(time.Second), "", false},
			},
		},
		{
			name: "email, compared case-insensitively",
			add:  []Revocation{{Kind: KindEmail, Value: "Alice@Example.COM", At: t0}},
			now:  t0,
			checks: []check{
				{other, "", "", t0.Add(-time.Second), "alice@example.com", true},
				{other, "", "", t0.Add(-time.Second), "ALICE@example.com", true},
				{other, "alice@example.com", "", t0.Add(-time.Second), "", false}, // a sub is not an email
				{other, "", "", t0.Add(-time.Second), "bob@example.com", false},
				{other, "", "", t0.Add(time.Second), "alice@example.com", false},
			},
		},
		{
			name: "invalid records ignored",
			add: []Revocation{
				{Kind: "phone", Value: "+1555", At: t0},
				{Kind: KindEmail, Value: "", At: t0},
				{Kind: KindToken, Value: "not-hex", At: t0},
				{Kind: KindSub, Value: "alice"}, // no At
			},
			now: t0,
			checks: []check{
				{id, "alice", "", t0.Add(-time.Second), "", false},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock(tt.now)
			rs := NewRevocationSet(time.Minute, 100, clock.now)
			for _, r := range tt.add {
				rs.Add(r)
			}
			for _, c := range tt.checks {
				if got := rs.Revoked(c.id, Principal{Sub: c.sub, ClientID: c.cid, Email: c.email}, c.verifiedAt); got != c.want {
					t.Errorf("Revoked(%.8s, %q, %q, %q, %v) = %v, want %v", c.id, c.sub, c.cid, c.email, c.verifiedAt.Sub(t0), got, c.want)
				}
			}
		})
	}
}

// A replay of a known record (Subscribe re-reads records after every
// reconnection) must not move its effective time forward, which would
// refuse entries verified after the revocation, every time.
func TestRevocationSetReplayIsIdempotent(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	rs := NewRevocationSet(time.Minute, 100, clock.now)
	id := ID{9}
	r := Revocation{Kind: KindSub, Value: "alice", At: t0}
	tr := Revocation{Kind: KindToken, Value: id.String(), At: t0}
	rs.Add(r)
	rs.Add(tr)
	if rs.Generation() != 2 {
		t.Fatalf("Generation = %d after two records, want 2", rs.Generation())
	}
	clock.add(10 * time.Second)
	if rs.Apply(r) || rs.Apply(tr) { // replayed after a reconnection
		t.Fatal("Apply says a replay was new")
	}
	if rs.Generation() != 2 {
		t.Fatalf("Generation = %d after replays, want 2", rs.Generation())
	}
	if rs.Revoked(ID{}, Principal{Sub: "alice"}, t0.Add(5*time.Second)) || rs.Revoked(id, Principal{}, t0.Add(5*time.Second)) {
		t.Fatal("a replay moved the revocation forward")
	}
	// A newer revocation of the same subject does move it.
	rs.Add(Revocation{Kind: KindSub, Value: "alice", At: t0.Add(10 * time.Second)})
	if !rs.Revoked(ID{}, Principal{Sub: "alice"}, t0.Add(5*time.Second)) {
		t.Fatal("a newer revocation was ignored")
	}
}

// Records expire ttl after their effective time, and the set never holds
// more than max.
func TestRevocationSetBounds(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	rs := NewRevocationSet(time.Minute, 10, clock.now)
	rs.Add(Revocation{Kind: KindSub, Value: "first", At: t0})
	clock.add(2 * time.Minute)
	if rs.Revoked(ID{}, Principal{Sub: "first"}, t0.Add(-time.Second)) {
		t.Fatal("record still applies after its ttl")
	}
	for i := range 25 {
		clock.add(time.Millisecond)
		rs.Add(Revocation{Kind: KindClientID, Value: fmt.Sprint("c", i), At: clock.now()})
	}
	if rs.Len() > 10 {
		t.Fatalf("set holds %d records, max 10", rs.Len())
	}
	if !rs.Revoked(ID{}, Principal{ClientID: "c24"}, t0) {
		t.Fatal("the newest record was dropped")
	}
	if rs.Revoked(ID{}, Principal{ClientID: "c0"}, t0) {
		t.Fatal("the oldest record was kept past max")
	}
}

func FuzzDecodeRevocation(f *testing.F) {
	good, _ := json.Marshal(Revocation{Kind: KindSub, Value: "alice", At: time.Unix(1700000000, 5)})
	f.Add(string(good))
	f.Add(`{"kind":"token","value":"` + ID{1}.String() + `","at":"2026-01-01T00:00:00Z"}`)
	f.Add(`{"kind":"client_id","value":"","at":"2026-01-01T00:00:00Z"}`)
	f.Add(`{"kind":"sub","value":"a","at":"not a time"}`)
	f.Add(`{"kind":"sub","value":"a","at":"2026-01-01T00:00:00Z","extra":[1,2,3]}`)
	f.Add(`[]`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := decodeRevocation(s)
		if err != nil {
			return
		}
		if r.validate() != nil {
			t.Fatalf("decoded an invalid record: %+v", r)
		}
		if _, ok := r.tokenID(); ok != (r.Kind == KindToken) {
			t.Fatalf("token ID of %+v", r)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeRevocation(string(b))
		if err != nil || r2.Kind != r.Kind || r2.Value != r.Value || !r2.At.Equal(r.At) {
			t.Fatalf("round trip %+v -> %+v %v", r, r2, err)
		}
		NewRevocationSet(time.Minute, 10, nil).Add(r)
	})
}

func FuzzDecodeValue(f *testing.F) {
	k := newKeyer(testSecret, DefaultPrefix)
	id := ID{1}
	f.Add(k.seal(&id, time.Unix(1700000000, 0), []byte(`{"sub":"a"}`)))
	f.Add([]byte{})
	f.Add(make([]byte, headerLen))
	f.Add(append([]byte{valueFormat, 0x80, 0, 0, 0, 0, 0, 0, 1}, make([]byte, macLen+1)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := k.open(&id, b, 64)
		if !ok {
			return
		}
		if len(h.Value) > 64 || h.StoredAt.UnixNano() <= 0 {
			t.Fatalf("accepted %d bytes stored at %v", len(h.Value), h.StoredAt)
		}
		if got := k.seal(&id, h.StoredAt, h.Value); string(got) != string(b) {
			t.Fatalf("round trip changed the value")
		}
		other := ID{2}
		if _, ok := k.open(&other, b, 64); ok {
			t.Fatalf("a value opens under another ID")
		}
	})
}

// The "filled" channel's payload comes from Redis: anything but 64 hex
// digits is ignored, and a valid one wakes exactly that ID's waiters.
func FuzzWakePayload(f *testing.F) {
	f.Add(ID{7}.String())
	f.Add("zz")
	f.Add("")
	f.Fuzz(func(t *testing.T, payload string) {
		b := newBus(nil)
		id := ID{7}
		ch := b.wait(id)
		b.wake(payload)
		woken := len(ch) == 1
		if woken != (payload == id.String() || payload == fmt.Sprintf("%X", id[:])) {
			t.Fatalf("payload %q woke=%v", payload, woken)
		}
	})
}

func TestRevocationMatches(t *testing.T) {
	id, other := ID{1}, ID{2}
	who := Principal{Sub: "alice", ClientID: "app", Email: "Alice@Example.com"}
	for _, tc := range []struct {
		r    Revocation
		want bool
	}{
		{Revocation{Kind: KindToken, Value: id.String()}, true},
		{Revocation{Kind: KindToken, Value: other.String()}, false},
		{Revocation{Kind: KindSub, Value: "alice"}, true},
		{Revocation{Kind: KindSub, Value: "bob"}, false},
		{Revocation{Kind: KindClientID, Value: "app"}, true},
		{Revocation{Kind: KindEmail, Value: "alice@example.COM"}, true},
		{Revocation{Kind: "phone", Value: "alice"}, false},
	} {
		if got := tc.r.Matches(id, who); got != tc.want {
			t.Errorf("%+v.Matches = %v, want %v", tc.r, got, tc.want)
		}
	}
	if (Revocation{Kind: KindSub, Value: ""}).Matches(id, Principal{}) {
		t.Error("an empty subject matched")
	}
}
