// Package lru is a fixed-capacity map that forgets its least recently used
// entry when a new one would not fit. It is safe for concurrent use.
//
// It is deliberately small: no expiry, no callbacks, no statistics. A caller
// that needs entries to expire stores the deadline in the value and checks it
// (Oldest and RemoveOldest let it drop expired entries from the old end when
// entries are added in deadline order). A caller that needs several
// operations to be atomic together (check, then add) holds its own lock
// around them; the Cache's lock only makes each call safe on its own.
package lru

import (
	"container/list"
	"errors"
	"sync"
)

// Cache holds at most Cap entries. The zero value is not usable; call New.
type Cache[K comparable, V any] struct {
	mu       sync.Mutex
	capacity int
	order    *list.List // of *entry[K, V]; front = most recently used
	items    map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns an empty Cache holding at most capacity entries. A capacity
// below 1 is an error: a cache that can hold nothing would silently turn
// every Add into a no-op.
func New[K comparable, V any](capacity int) (*Cache[K, V], error) {
	if capacity < 1 {
		return nil, errors.New("lru: capacity must be at least 1")
	}
	return &Cache[K, V]{
		capacity: capacity,
		order:    list.New(),
		items:    make(map[K]*list.Element, min(capacity, 1024)),
	}, nil
}

// Get returns the value stored for key and marks it most recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).val, true
}

// Peek returns the value stored for key without changing its recency.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	return el.Value.(*entry[K, V]).val, true
}

// Add stores val for key and marks it most recently used, replacing any
// value already stored. If the cache was full and key was new, the least
// recently used entry is removed and evicted is true.
func (c *Cache[K, V]) Add(key K, val V) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*entry[K, V]).val = val
		c.order.MoveToFront(el)
		return false
	}
	if c.order.Len() >= c.capacity {
		c.removeElement(c.order.Back())
		evicted = true
	}
	c.items[key] = c.order.PushFront(&entry[K, V]{key: key, val: val})
	return evicted
}

// Remove deletes key and reports whether it was present.
func (c *Cache[K, V]) Remove(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if ok {
		c.removeElement(el)
	}
	return ok
}

// Oldest returns the least recently used entry without changing its
// recency; ok is false when the cache is empty.
func (c *Cache[K, V]) Oldest() (key K, val V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.order.Back(); el != nil {
		e := el.Value.(*entry[K, V])
		return e.key, e.val, true
	}
	return key, val, false
}

// RemoveOldest deletes and returns the least recently used entry; ok is
// false when the cache is empty.
func (c *Cache[K, V]) RemoveOldest() (key K, val V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.order.Back(); el != nil {
		e := el.Value.(*entry[K, V])
		c.removeElement(el)
		return e.key, e.val, true
	}
	return key, val, false
}

// Len is the number of entries stored.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Cap is the capacity given to New.
func (c *Cache[K, V]) Cap() int { return c.capacity }

func (c *Cache[K, V]) removeElement(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*entry[K, V]).key)
}
