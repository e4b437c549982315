package sharedcache

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// LockResult says what a Lock call found, and so what its caller does next.
type LockResult int

const (
	// LockUnavailable: Redis could not be asked (down, slow, full, circuit
	// open, closed). The caller proceeds alone: introspects and Sets,
	// without waiting for anyone.
	LockUnavailable LockResult = iota
	// LockWon: the caller holds the lock. It introspects, then calls
	// Lease.Fill with the answer, or Lease.Release if it has none.
	LockWon
	// LockHeld: another caller, on this machine or another, holds the
	// lock. The caller Awaits its answer and introspects itself only if
	// none lands in time.
	LockHeld
	// LockFilled: a value was stored since the caller's Get missed. The
	// caller Gets it.
	LockFilled
)

func (r LockResult) String() string {
	switch r {
	case LockWon:
		return "won"
	case LockHeld:
		return "held"
	case LockFilled:
		return "filled"
	}
	return "unavailable"
}

// lockScript takes the lock unless the value is already there, atomically:
// checking the value first closes the window in which a caller's Get
// missed, the winner then filled and released, and the caller would win a
// second lock and introspect again. KEYS: value, lock. ARGV: owner token,
// ttl in ms. Returns 2 filled, 1 won, 0 held.
var lockScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`)

// fillScript stores the value, releases the lock if this owner still holds
// it, and wakes the waiters, in one round trip. KEYS: value, lock. ARGV:
// owner token, value, ttl in ms, channel, message.
var fillScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`)

// releaseScript deletes the lock only if this owner still holds it (after
// its TTL another caller may have taken it: deleting that one would let a
// third caller in), and wakes the waiters so they stop waiting for an answer
// that will not come. KEYS: lock. ARGV: owner token, channel, message.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`)

// Lease is a won lock. Its methods are safe to call on a nil Lease (they do
// nothing), so a caller can defer Release unconditionally; Release after
// Fill does nothing.
type Lease struct {
	s     *Store
	id    ID
	token string // random, identifies this owner
	done  atomic.Bool
}

// Lock tries to become the one caller, across all machines, that computes
// the value for digest: the cross-machine half of request coalescing (the
// in-process half stays singleflight). ttl bounds how long the lock can
// outlive a crashed owner; it should cover one introspection (the
// introspection timeout). The Lease is non-nil only with LockWon. It
// returns within Timeout; any failure is LockUnavailable.
func (s *Store) Lock(ctx context.Context, digest [32]byte, ttl time.Duration) (LockResult, *Lease) {
	if ttl <= 0 || !s.begin(OpLock) {
		return LockUnavailable, nil
	}
	id := s.keys.id(&digest)
	token := rand.Text()
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	n, err := lockScript.Run(cctx, s.rdb, []string{s.keys.value(&id), s.keys.lock(&id)},
		token, ttl.Milliseconds()).Int()
	cancel()
	if err != nil {
		s.end(ctx, OpLock, start, err, OutcomeError)
		return LockUnavailable, nil
	}
	switch n {
	case 1:
		s.end(ctx, OpLock, start, nil, OutcomeWon)
		return LockWon, &Lease{s: s, id: id, token: token}
	case 2:
		s.end(ctx, OpLock, start, nil, OutcomeFilled)
		return LockFilled, nil
	}
	s.end(ctx, OpLock, start, nil, OutcomeHeld)
	return LockHeld, nil
}

// Fill stores value for ttl (like Set), releases the lease and wakes every
// machine Awaiting it, in one round trip. Best effort: on failure the lease
// is released if possible, and the waiters fall back to polling and then
// to introspecting themselves. A non-positive ttl or an oversized value is
// a Release.
func (l *Lease) Fill(ctx context.Context, value []byte, ttl time.Duration) {
	if l == nil {
		return
	}
	s := l.s
	if ttl <= 0 || len(value) > s.cfg.MaxValueBytes {
		if ttl > 0 {
			s.obs.Call(OpFill, OutcomeInvalid, 0)
		}
		l.Release()
		return
	}
	if l.done.Load() || !s.begin(OpFill) {
		return
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err := fillScript.Run(cctx, s.rdb, []string{s.keys.value(&l.id), s.keys.lock(&l.id)},
		l.token, s.keys.seal(&l.id, s.cfg.Now(), value), ttl.Milliseconds(), s.keys.filledChan(), l.id.String()).Err()
	cancel()
	if s.end(ctx, OpFill, start, err, OutcomeOK) == OutcomeOK {
		l.done.Store(true)
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// Redis answered but refused the write (OOM): the lock can
		// still be deleted, which spares the waiters their maxWait.
		l.Release()
	}
}

// Release gives the lock up without a value (the introspection failed, or
// the caller gave up), waking the waiters so they proceed on their own at
// once. It runs detached from any request context, within Timeout.
func (l *Lease) Release() {
	if l == nil || !l.done.CompareAndSwap(false, true) {
		return
	}
	s := l.s
	if !s.begin(OpRelease) {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	err := releaseScript.Run(ctx, s.rdb, []string{s.keys.lock(&l.id)},
		l.token, s.keys.filledChan(), l.id.String()).Err()
	cancel()
	s.end(context.Background(), OpRelease, start, err, OutcomeOK)
}

// Await waits, at most maxWait, for the value of digest that a lock holder
// on any machine is computing. It is woken by the holder's Fill or Release
// through pub/sub and, in case a message is lost (pub/sub reconnecting),
// polls every maxWait/10 (10 to 100 ms). It returns early with a miss when
// the lock is gone without a value (released, or expired with its crashed
// owner): the caller then introspects itself. Each poll is bounded by
// Timeout; a failure is a miss at once.
func (s *Store) Await(ctx context.Context, digest [32]byte, maxWait time.Duration) (Hit, bool) {
	if maxWait <= 0 || !s.begin(OpAwait) {
		return Hit{}, false
	}
	id := s.keys.id(&digest)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	w := s.bus.wait(id)
	defer s.bus.unwait(id, w)
	poll := min(max(maxWait/10, 10*time.Millisecond), 100*time.Millisecond)
	if s.awaitPoll > 0 {
		poll = s.awaitPoll
	}
	timer := time.NewTimer(poll)
	defer timer.Stop()
	keys := []string{s.keys.value(&id), s.keys.lock(&id)}
	for {
		h, found, pending, err := s.peek(wctx, &id, keys)
		switch {
		case err != nil:
			if wctx.Err() != nil { // maxWait or the caller ended it, not Redis
				s.obs.Call(OpAwait, OutcomeMiss, time.Since(start))
			} else {
				s.end(ctx, OpAwait, start, err, OutcomeError)
			}
			return Hit{}, false
		case found:
			s.end(ctx, OpAwait, start, nil, OutcomeHit)
			return h, true
		case !pending:
			s.end(ctx, OpAwait, start, nil, OutcomeMiss)
			return Hit{}, false
		}
		if s.awaitHook != nil {
			s.awaitHook()
		}
		select {
		case <-w:
		case <-timer.C:
			timer.Reset(poll)
		case <-wctx.Done():
			s.obs.Call(OpAwait, OutcomeMiss, time.Since(start))
			return Hit{}, false
		}
		if !s.br.allow() || s.closed.Load() {
			// Redis failed for other calls meanwhile (or Close): stop
			// waiting for it.
			s.obs.Call(OpAwait, OutcomeSkipped, time.Since(start))
			return Hit{}, false
		}
	}
}

// peek reads the value and the lock in one MGET: found is a usable value;
// pending says the lock is still held (worth waiting).
func (s *Store) peek(ctx context.Context, id *ID, keys []string) (h Hit, found, pending bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	vals, err := s.rdb.MGet(cctx, keys...).Result()
	cancel()
	if err != nil {
		return Hit{}, false, false, err
	}
	if len(vals) != 2 {
		return Hit{}, false, false, errors.New("MGET answered " + strconv.Itoa(len(vals)) + " values for 2 keys")
	}
	if v, ok := vals[0].(string); ok {
		if h, ok := s.keys.open(id, []byte(v), s.cfg.MaxValueBytes); ok {
			return h, true, false, nil
		}
	}
	return Hit{}, false, vals[1] != nil, nil
}
