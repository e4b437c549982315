package sharedcache

import (
	"context"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pub/sub health: go-redis pings the subscription connection after this
// long without a message and reconnects (then resubscribes) if the ping
// fails within pubsubPingTimeout. A silently dead connection (a partition,
// no RST) is thus noticed within about two seconds.
const (
	pubsubHealthCheck = time.Second
	pubsubPingTimeout = time.Second
	// pubsubBuffer is go-redis's delivery channel size: a burst of
	// revocations or fills is absorbed while a handler runs.
	pubsubBuffer = 1024
	// reloadRetryMin and reloadRetryMax bound the pause before re-reading
	// revocation records after a failed read.
	reloadRetryMin = 250 * time.Millisecond
	reloadRetryMax = 10 * time.Second
)

// bus is the Store's one pub/sub connection, shared by the revocation
// channel and the "filled" channel, and the local fan-out of both:
// revocations to Subscribe's handlers, fills to the Awaits of this machine.
// One connection per Store, not one per waiter: a burst of waiters must not
// open a connection each.
type bus struct {
	s      *Store
	reload chan struct{} // requests a re-read of the revocation records
	// subscriptions counts subscribe confirmations (two per connection:
	// both channels), for tests that must not publish before a Store
	// listens.
	subscriptions atomic.Int64
	// losses counts the events that may have lost revocation messages
	// (start, a resubscription, the circuit opening or closing); covered
	// is the count a completed read of the records started after. They
	// are equal when every record was delivered since the last loss (see
	// Store.RevocationsSynced).
	losses, covered atomic.Uint64

	mu       sync.Mutex
	handlers map[uint64]func(Revocation)
	next     uint64
	waiters  map[ID]map[chan struct{}]struct{}
}

func newBus(s *Store) *bus {
	b := &bus{
		s:        s,
		reload:   make(chan struct{}, 1),
		handlers: map[uint64]func(Revocation){},
		waiters:  map[ID]map[chan struct{}]struct{}{},
	}
	b.lost() // nothing is known before the first read
	return b
}

// lost records an event that may have lost revocation messages.
func (b *bus) lost() { b.losses.Add(1) }

// cover records that every record published before the n-th loss has been
// delivered.
func (b *bus) cover(n uint64) {
	for {
		c := b.covered.Load()
		if c >= n || b.covered.CompareAndSwap(c, n) {
			return
		}
	}
}

func (b *bus) synced() bool { return b.covered.Load() == b.losses.Load() }

func (b *bus) requestReload() {
	b.lost()
	select {
	case b.reload <- struct{}{}:
	default: // one is already pending
	}
}

func (b *bus) addHandler(fn func(Revocation)) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	b.handlers[b.next] = fn
	return b.next
}

func (b *bus) removeHandler(k uint64) {
	b.mu.Lock()
	delete(b.handlers, k)
	b.mu.Unlock()
}

// deliver hands r to every handler, serially, on the bus goroutine.
func (b *bus) deliver(r Revocation) {
	b.mu.Lock()
	fns := make([]func(Revocation), 0, len(b.handlers))
	for _, fn := range b.handlers {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(r)
	}
}

// wait registers a waiter for id's fill; the channel receives (at most one
// buffered) wake-up per fill or release.
func (b *bus) wait(id ID) chan struct{} {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	m := b.waiters[id]
	if m == nil {
		m = map[chan struct{}]struct{}{}
		b.waiters[id] = m
	}
	m[ch] = struct{}{}
	b.mu.Unlock()
	return ch
}

func (b *bus) unwait(id ID, ch chan struct{}) {
	b.mu.Lock()
	if m := b.waiters[id]; m != nil {
		delete(m, ch)
		if len(m) == 0 {
			delete(b.waiters, id)
		}
	}
	b.mu.Unlock()
}

// wake signals every waiter for the ID in a "filled" message. The message
// is 64 hex digits; anything else is ignored.
func (b *bus) wake(payload string) {
	var id ID
	if len(payload) != 2*len(id) {
		return
	}
	if _, err := hex.Decode(id[:], []byte(payload)); err != nil {
		return
	}
	b.mu.Lock()
	for ch := range b.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
}

// wakeAll wakes every waiter (Close): they then find the Store closed.
func (b *bus) wakeAll() {
	b.mu.Lock()
	for _, m := range b.waiters {
		for ch := range m {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	b.mu.Unlock()
}

// run is the bus goroutine. go-redis's PubSub reconnects and resubscribes by
// itself after any connection failure, and ChannelWithSubscriptions hands
// us the server's subscribe confirmation each time: that is the signal that
// messages may have been missed, so the revocation records are re-read.
func (b *bus) run() {
	s := b.s
	revokeChan, filledChan := s.keys.revokeChan(), s.keys.filledChan()
	// Subscribe connects now if it can; if Redis is down, go-redis keeps
	// retrying in the background and confirms when it succeeds.
	ps := s.rdb.Subscribe(s.stop, revokeChan, filledChan)
	defer ps.Close()
	msgs := ps.ChannelWithSubscriptions(
		redis.WithChannelSize(pubsubBuffer),
		redis.WithChannelHealthCheckInterval(pubsubHealthCheck),
		redis.WithChannelPingTimeout(pubsubPingTimeout),
		redis.WithChannelReconnectTimeout(max(s.cfg.Timeout, time.Second)),
	)

	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := reloadRetryMin
	reload := func() {
		losses := b.losses.Load() // the records read now cover these
		ctx, cancel := context.WithTimeout(s.stop, s.bulkTimeout())
		defer cancel()
		rs, err := s.Revocations(ctx)
		if err != nil {
			s.log.Debug("shared cache: cannot read revocation records yet; will retry", "err", err, "in", backoff)
			retry.Reset(jitter(backoff))
			backoff = min(2*backoff, reloadRetryMax)
			return
		}
		backoff = reloadRetryMin
		retry.Stop()
		for _, r := range rs {
			b.deliver(r)
		}
		b.cover(losses)
	}

	for {
		select {
		case <-s.stop.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					b.subscriptions.Add(1)
				}
				if m.Kind == "subscribe" && m.Channel == revokeChan {
					s.log.Debug("shared cache: subscribed to revocations")
					b.lost()
					reload()
				}
			case *redis.Message:
				switch m.Channel {
				case filledChan:
					b.wake(m.Payload)
				case revokeChan:
					r, err := decodeRevocation(m.Payload)
					if err != nil {
						s.log.Warn("shared cache: ignoring a malformed revocation message", "err", err)
						continue
					}
					b.deliver(r)
				}
			}
		case <-b.reload:
			reload()
		case <-retry.C:
			reload()
		}
	}
}
