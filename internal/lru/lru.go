// Package lru is a bounded map that forgets its least recently used
// entries: the one table the gateway keeps of things an outsider can make
// it remember (clients, codes, limiters ...), so that none of them grows
// with what a client sends.
//
// It is not safe for concurrent use; every owner guards its Map with a
// mutex. A plain map plus container/list is used rather than ristretto
// because an entry must be visible to the very next call (ristretto's Set is
// asynchronous and may be refused: a flooding client would get a fresh
// limiter), and because these tables are small and touched off the hot path.
package lru

import "container/list"

// Map is a map of at most Max entries in least-recently-used order.
type Map[K comparable, V any] struct {
	max   int
	order *list.List // front is the least recently used entry
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns an empty Map holding at most bound entries (at least 1).
func New[K comparable, V any](bound int) *Map[K, V] {
	return &Map[K, V]{max: max(bound, 1), order: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value stored under k without changing its position.
func (m *Map[K, V]) Get(k K) (V, bool) {
	if e, ok := m.items[k]; ok {
		return e.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Touch marks k as the most recently used entry.
func (m *Map[K, V]) Touch(k K) {
	if e, ok := m.items[k]; ok {
		m.order.MoveToBack(e)
	}
}

// Put stores v under k as the most recently used entry and evicts the
// least recently used entries while the map is over its bound. It returns
// how many entries it evicted.
func (m *Map[K, V]) Put(k K, v V) (evicted int) {
	if e, ok := m.items[k]; ok {
		e.Value.(*entry[K, V]).val = v
		m.order.MoveToBack(e)
		return 0
	}
	m.items[k] = m.order.PushBack(&entry[K, V]{key: k, val: v})
	for m.order.Len() > m.max {
		m.removeElement(m.order.Front())
		evicted++
	}
	return evicted
}

// Remove deletes k and returns the value it held.
func (m *Map[K, V]) Remove(k K) (V, bool) {
	if e, ok := m.items[k]; ok {
		v := e.Value.(*entry[K, V]).val
		m.removeElement(e)
		return v, true
	}
	var zero V
	return zero, false
}

// RemoveIf deletes every entry for which f reports true and returns how
// many it deleted.
func (m *Map[K, V]) RemoveIf(f func(K, V) bool) int {
	n := 0
	for e := m.order.Front(); e != nil; {
		next := e.Next()
		ent := e.Value.(*entry[K, V])
		if f(ent.key, ent.val) {
			m.removeElement(e)
			n++
		}
		e = next
	}
	return n
}

// DropOldestWhile deletes entries from the least recently used end while f
// reports true for them: a cheap sweep of expired entries when entries
// expire roughly in the order they were last used.
func (m *Map[K, V]) DropOldestWhile(f func(V) bool) {
	for e := m.order.Front(); e != nil && f(e.Value.(*entry[K, V]).val); e = m.order.Front() {
		m.removeElement(e)
	}
}

// Oldest returns the key of the least recently used entry.
func (m *Map[K, V]) Oldest() (K, bool) {
	if e := m.order.Front(); e != nil {
		return e.Value.(*entry[K, V]).key, true
	}
	var zero K
	return zero, false
}

// Newest returns the key of the most recently used entry.
func (m *Map[K, V]) Newest() (K, bool) {
	if e := m.order.Back(); e != nil {
		return e.Value.(*entry[K, V]).key, true
	}
	var zero K
	return zero, false
}

// Len is the number of entries.
func (m *Map[K, V]) Len() int { return m.order.Len() }

func (m *Map[K, V]) removeElement(e *list.Element) {
	delete(m.items, e.Value.(*entry[K, V]).key)
	m.order.Remove(e)
}
