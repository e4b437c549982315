package lru

import (
	"slices"
	"testing"
)

func keys(m *Map[string, int]) []string {
	var out []string
	for e := m.order.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(*entry[string, int]).key)
	}
	return out
}

func TestMap(t *testing.T) {
	m := New[string, int](3)
	for i, k := range []string{"a", "b", "c"} {
		if ev := m.Put(k, i); ev != 0 {
			t.Fatalf("Put(%s) evicted %d", k, ev)
		}
	}
	m.Touch("a") // b is now the least recently used
	if ev := m.Put("d", 3); ev != 1 {
		t.Fatalf("Put(d) evicted %d, want 1", ev)
	}
	if _, ok := m.Get("b"); ok {
		t.Error("b survived, want it evicted as least recently used")
	}
	if got, want := keys(m), []string{"c", "a", "d"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if k, _ := m.Oldest(); k != "c" {
		t.Errorf("Oldest = %q, want c", k)
	}
	m.Put("c", 10) // replace moves to most recent
	if v, _ := m.Get("c"); v != 10 {
		t.Errorf("Get(c) = %d, want 10", v)
	}
	if got, want := keys(m), []string{"a", "d", "c"}; !slices.Equal(got, want) {
		t.Errorf("order after replace %v, want %v", got, want)
	}
	if v, ok := m.Remove("d"); !ok || v != 3 {
		t.Errorf("Remove(d) = %d, %v", v, ok)
	}
	if n := m.RemoveIf(func(k string, v int) bool { return v >= 10 }); n != 1 || m.Len() != 1 {
		t.Errorf("RemoveIf removed %d, left %d", n, m.Len())
	}
	m.Put("e", 5)
	m.DropOldestWhile(func(v int) bool { return v < 5 })
	if got, want := keys(m), []string{"e"}; !slices.Equal(got, want) {
		t.Errorf("after DropOldestWhile %v, want %v", got, want)
	}
	if New[int, int](0).max != 1 {
		t.Error("a bound below 1 is not raised to 1")
	}
}

func TestNewest(t *testing.T) {
	m := New[string, int](2)
	if _, ok := m.Newest(); ok {
		t.Error("empty map has a newest entry")
	}
	m.Put("a", 1)
	m.Put("b", 2)
	m.Touch("a")
	if k, _ := m.Newest(); k != "a" {
		t.Errorf("Newest = %q, want a", k)
	}
}
