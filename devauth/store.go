package devauth

import "container/list"

// lru is a bounded map that remembers insertion (or last touch) order. When
// it holds more than max entries, put evicts the oldest ones. It is not safe
// for concurrent use; the Server guards every lru with its mutex.
type lru[K comparable, V any] struct {
	max   int
	order *list.List // front is the oldest entry
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: make(map[K]*list.Element)}
}

// get returns the value stored under k without changing its position.
func (c *lru[K, V]) get(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// touch marks k as the most recently used entry.
func (c *lru[K, V]) touch(k K) {
	if e, ok := c.items[k]; ok {
		c.order.MoveToBack(e)
	}
}

// put stores v under k as the newest entry and evicts the oldest entries
// while the map is over its bound. It returns how many entries it evicted.
func (c *lru[K, V]) put(k K, v V) (evicted int) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToBack(e)
		return 0
	}
	c.items[k] = c.order.PushBack(&lruEntry[K, V]{key: k, val: v})
	for c.order.Len() > c.max {
		c.removeElement(c.order.Front())
		evicted++
	}
	return evicted
}

// remove deletes k and returns the value it held.
func (c *lru[K, V]) remove(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		v := e.Value.(*lruEntry[K, V]).val
		c.removeElement(e)
		return v, true
	}
	var zero V
	return zero, false
}

// removeIf deletes every entry for which f reports true and returns how many
// it deleted.
func (c *lru[K, V]) removeIf(f func(K, V) bool) int {
	n := 0
	for e := c.order.Front(); e != nil; {
		next := e.Next()
		ent := e.Value.(*lruEntry[K, V])
		if f(ent.key, ent.val) {
			c.removeElement(e)
			n++
		}
		e = next
	}
	return n
}

// dropOldestWhile deletes entries from the old end while f reports true for
// them. It is a cheap sweep of expired entries when entries expire roughly in
// insertion order.
func (c *lru[K, V]) dropOldestWhile(f func(V) bool) {
	for e := c.order.Front(); e != nil && f(e.Value.(*lruEntry[K, V]).val); e = c.order.Front() {
		c.removeElement(e)
	}
}

func (c *lru[K, V]) len() int { return c.order.Len() }

func (c *lru[K, V]) removeElement(e *list.Element) {
	delete(c.items, e.Value.(*lruEntry[K, V]).key)
	c.order.Remove(e)
}
