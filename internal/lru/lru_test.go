package lru

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRefusesNoCapacity(t *testing.T) {
	for _, capacity := range []int{0, -1} {
		if _, err := New[string, int](capacity); err == nil {
			t.Errorf("New(%d): no error", capacity)
		}
	}
}

// op is one step of a scripted scenario: Add (with the eviction it should
// report), Get, Peek or Remove (with the presence it should report).
type op struct {
	do   string // "add", "get", "peek", "remove"
	key  string
	val  int
	want bool // evicted for add, found for the others
	// wantVal is checked for found get/peek.
	wantVal int
}

func TestScenarios(t *testing.T) {
	tests := []struct {
		name      string
		capacity  int
		ops       []op
		wantOrder []string // keys from oldest to newest after the ops
	}{
		{
			name: "fills then evicts the oldest", capacity: 2,
			ops: []op{
				{do: "add", key: "a", val: 1},
				{do: "add", key: "b", val: 2},
				{do: "add", key: "c", val: 3, want: true},
				{do: "peek", key: "a", want: false},
				{do: "peek", key: "b", want: true, wantVal: 2},
			},
			wantOrder: []string{"b", "c"},
		},
		{
			name: "get promotes, so the other one is evicted", capacity: 2,
			ops: []op{
				{do: "add", key: "a", val: 1},
				{do: "add", key: "b", val: 2},
				{do: "get", key: "a", want: true, wantVal: 1},
				{do: "add", key: "c", val: 3, want: true},
				{do: "peek", key: "b", want: false},
			},
			wantOrder: []string{"a", "c"},
		},
		{
			name: "peek does not promote", capacity: 2,
			ops: []op{
				{do: "add", key: "a", val: 1},
				{do: "add", key: "b", val: 2},
				{do: "peek", key: "a", want: true, wantVal: 1},
				{do: "add", key: "c", val: 3, want: true},
				{do: "peek", key: "a", want: false},
			},
			wantOrder: []string{"b", "c"},
		},
		{
			name: "re-adding replaces and promotes without evicting", capacity: 2,
			ops: []op{
				{do: "add", key: "a", val: 1},
				{do: "add", key: "b", val: 2},
				{do: "add", key: "a", val: 10, want: false},
				{do: "get", key: "a", want: true, wantVal: 10},
			},
			wantOrder: []string{"b", "a"},
		},
		{
			name: "remove frees a slot", capacity: 2,
			ops: []op{
				{do: "add", key: "a", val: 1},
				{do: "add", key: "b", val: 2},
				{do: "remove", key: "a", want: true},
				{do: "remove", key: "a", want: false},
				{do: "add", key: "c", val: 3, want: false},
			},
			wantOrder: []string{"b", "c"},
		},
		{
			name: "capacity one", capacity: 1,
			ops: []op{
				{do: "add", key: "a", val: 1},
				{do: "add", key: "b", val: 2, want: true},
				{do: "get", key: "a", want: false},
			},
			wantOrder: []string{"b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New[string, int](tt.capacity)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range tt.ops {
				var got bool
				var val int
				switch o.do {
				case "add":
					got = c.Add(o.key, o.val)
				case "get":
					val, got = c.Get(o.key)
				case "peek":
					val, got = c.Peek(o.key)
				case "remove":
					got = c.Remove(o.key)
				}
				if got != o.want {
					t.Fatalf("op %d %s(%q) = %v, want %v", i, o.do, o.key, got, o.want)
				}
				if got && (o.do == "get" || o.do == "peek") && val != o.wantVal {
					t.Fatalf("op %d %s(%q) value = %d, want %d", i, o.do, o.key, val, o.wantVal)
				}
			}
			if got := drainOrder(t, c); !slices.Equal(got, tt.wantOrder) {
				t.Errorf("order oldest->newest = %v, want %v", got, tt.wantOrder)
			}
		})
	}
}

// drainOrder empties c through RemoveOldest, checking Oldest agrees at each
// step, and returns the keys from oldest to newest.
func drainOrder(t *testing.T, c *Cache[string, int]) []string {
	t.Helper()
	var keys []string
	for c.Len() > 0 {
		k, v, ok := c.Oldest()
		if !ok {
			t.Fatal("Oldest: not ok on a non-empty cache")
		}
		k2, v2, ok := c.RemoveOldest()
		if !ok || k2 != k || v2 != v {
			t.Fatalf("RemoveOldest = %q,%d,%v; Oldest said %q,%d", k2, v2, ok, k, v)
		}
		keys = append(keys, k)
	}
	if _, _, ok := c.Oldest(); ok {
		t.Error("Oldest on an empty cache: ok")
	}
	if _, _, ok := c.RemoveOldest(); ok {
		t.Error("RemoveOldest on an empty cache: ok")
	}
	return keys
}

// TestAgainstModel runs random operations against the Cache and against a
// slice that keeps keys in recency order (the obvious, slow LRU), and checks
// they agree after every step.
func TestAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		capacity := 1 + rng.IntN(8)
		c, err := New[int, int](capacity)
		if err != nil {
			t.Fatal(err)
		}
		var model []int // oldest first
		vals := map[int]int{}
		touch := func(k int) {
			model = slices.DeleteFunc(model, func(x int) bool { return x == k })
			model = append(model, k)
		}
		for step := range 500 {
			k := rng.IntN(12)
			switch rng.IntN(4) {
			case 0:
				_, present := vals[k]
				wantEvict := !present && len(model) == capacity
				if wantEvict {
					delete(vals, model[0])
					model = model[1:]
				}
				vals[k] = step
				touch(k)
				if got := c.Add(k, step); got != wantEvict {
					t.Fatalf("round %d step %d: Add(%d) evicted = %v, want %v", round, step, k, got, wantEvict)
				}
			case 1:
				want, ok := vals[k]
				if ok {
					touch(k)
				}
				if got, gotOK := c.Get(k); gotOK != ok || got != want {
					t.Fatalf("round %d step %d: Get(%d) = %d,%v want %d,%v", round, step, k, got, gotOK, want, ok)
				}
			case 2:
				want, ok := vals[k]
				if got, gotOK := c.Peek(k); gotOK != ok || got != want {
					t.Fatalf("round %d step %d: Peek(%d) = %d,%v want %d,%v", round, step, k, got, gotOK, want, ok)
				}
			case 3:
				_, ok := vals[k]
				delete(vals, k)
				model = slices.DeleteFunc(model, func(x int) bool { return x == k })
				if got := c.Remove(k); got != ok {
					t.Fatalf("round %d step %d: Remove(%d) = %v want %v", round, step, k, got, ok)
				}
			}
			if c.Len() != len(model) {
				t.Fatalf("round %d step %d: Len = %d, model %d", round, step, c.Len(), len(model))
			}
			if len(model) > 0 {
				if k, _, _ := c.Oldest(); k != model[0] {
					t.Fatalf("round %d step %d: Oldest = %d, model %d", round, step, k, model[0])
				}
			}
		}
	}
}

// TestConcurrentUse is for the race detector: many goroutines on one Cache,
// and the capacity bound holds throughout.
func TestConcurrentUse(t *testing.T) {
	c, err := New[int, int](16)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := (g*31 + i) % 40
				c.Add(k, i)
				c.Get(k + 1)
				c.Peek(k + 2)
				if i%7 == 0 {
					c.Remove(k)
				}
				if i%11 == 0 {
					c.RemoveOldest()
				}
				if n := c.Len(); n > c.Cap() {
					t.Errorf("Len %d > Cap %d", n, c.Cap())
					return
				}
			}
		})
	}
	wg.Wait()
}
