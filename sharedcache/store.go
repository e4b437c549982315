// Package sharedcache is the gateway's second cache tier and revocation bus,
// on Redis (or Valkey, or a managed Redis such as Upstash).
//
// Machines of one deployment share verified token claims through it, so a
// token is introspected once per CACHE_MAX_TTL for the whole deployment
// rather than once per machine; they coalesce concurrent misses of one new
// token across machines (Lock, Lease, Await); and they carry revocations
// (Revoke, Subscribe) to every machine within a second, with a record that
// a machine which missed the message reads when it (re)connects.
//
// Redis is an optimisation, never a dependency: every call is bounded by
// Config.Timeout, a failure is a miss (or "proceed alone"), and after
// repeated failures a circuit skips Redis entirely while a background probe
// waits for it to come back. No call ever panics or returns later than
// Timeout plus scheduling overhead.
//
// Keys are HMAC-SHA256(KeySecret, token digest) (see ID): Redis never holds
// a token, a token digest, or anything a dump could be matched with. Values
// are opaque bytes to this package: the caller stores verified claims,
// never the raw token.
package sharedcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store is a connection to the shared tier. It is safe for concurrent use.
// Create it with New and release it with Close.
type Store struct {
	cfg  Config // with defaults applied
	rdb  *redis.Client
	keys *keyer
	br   *breaker
	log  *slog.Logger
	obs  Observer

	closed  atomic.Bool
	stop    context.Context // cancelled by Close
	stopNow context.CancelFunc
	wg      sync.WaitGroup // background goroutines

	bus *bus

	// awaitPoll, when set (tests only), replaces Await's poll interval;
	// awaitHook, when set, runs each time Await starts waiting.
	awaitPoll time.Duration
	awaitHook func()
}

// New validates cfg and connects. It does not fail when Redis is down or
// unreachable: the shared tier is an optimisation, so the Store starts with
// its circuit open and a background probe connects when Redis answers.
// It fails only on configuration errors (all reported at once). The first
// connection attempt is bounded by ctx and by one second.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	opt, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:  cfg,
		rdb:  redis.NewClient(opt),
		keys: newKeyer(cfg.KeySecret, cfg.Prefix),
		log:  cfg.Logger,
		obs:  cfg.Observer,
	}
	s.br = newBreaker(cfg.FailureThreshold, s.circuitChanged)
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.bus = newBus(s)
	if plaintextRemote(cfg.URL) {
		s.log.Warn("shared cache: Redis is reached without TLS; use rediss:// unless the network is private",
			"url", redactedURL(cfg.URL))
	}

	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.br.probe(s.stop, cfg.MaxBackoff, s.probeOnce)
	}()
	go func() {
		defer s.wg.Done()
		s.bus.run()
	}()

	// The first contact dials and handshakes: it gets connectTimeout, not
	// Timeout (a refused connection still fails at once).
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	err = s.ping(pctx, connectTimeout)
	cancel()
	if err != nil {
		s.log.Warn("shared cache: Redis unavailable at start; continuing without it and retrying in the background",
			"url", redactedURL(cfg.URL), "err", err)
		s.openNow()
	}
	return s, nil
}

// openNow opens the circuit at once (a failed first contact): requests
// skip Redis from the start instead of each paying Timeout.
func (s *Store) openNow() {
	for s.br.allow() {
		s.br.failure()
	}
}

func (s *Store) circuitChanged(open bool) {
	s.obs.Circuit(open)
	// Messages may be lost while Redis fails: until the records are read
	// again, this machine may not know every revocation.
	s.bus.lost()
	if open {
		s.log.Warn("shared cache: Redis unavailable; skipping it and probing in the background",
			"url", redactedURL(s.cfg.URL))
		return
	}
	s.log.Info("shared cache: Redis available again", "url", redactedURL(s.cfg.URL))
	// Commands failed while the circuit was open; pub/sub may have kept
	// its connection, or lost and regained it. Re-reading the revocation
	// records either way costs one read and closes any gap.
	s.bus.requestReload()
}

// probeOnce is the background probe. The first PING may have to dial and
// handshake (TCP, TLS, HELLO), which a request's Timeout is not meant to
// cover, so it gets connectTimeout; the second must answer within Timeout,
// so that a Redis that answers but slowly does not close the circuit only
// to open it again at the expense of the next requests.
func (s *Store) probeOnce(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, connectTimeout)
	err := s.rdb.Ping(wctx).Err()
	cancel()
	if err != nil {
		return err
	}
	ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.rdb.Ping(ctx).Err()
}

// connectTimeout bounds the calls that may include opening a connection
// and are on no request's path: New's first contact and the probe's first
// PING.
const connectTimeout = time.Second

// begin says whether op may go to Redis, reporting a skipped call if not.
func (s *Store) begin(op Op) bool {
	if s.closed.Load() || !s.br.allow() {
		s.obs.Call(op, OutcomeSkipped, 0)
		return false
	}
	return true
}

// end classifies err for op (started at start), feeds the circuit and the
// Observer, and returns the outcome. okOutcome is reported when err is nil
// or redis.Nil.
func (s *Store) end(parent context.Context, op Op, start time.Time, err error, okOutcome Outcome) Outcome {
	outcome, tripping := failure(parent, err)
	switch {
	case outcome == "":
		outcome = okOutcome
		s.br.success()
	case tripping:
		s.br.failure()
	default:
		// A reply from Redis (OOM, READONLY...) still proves it answers.
		if parent.Err() == nil {
			s.br.success()
		}
	}
	s.obs.Call(op, outcome, time.Since(start))
	if outcome == OutcomeError {
		s.log.Debug("shared cache: call failed", "op", op, "err", err)
	}
	return outcome
}

// ID is the keyed identity of a token digest: what Revocation.Value holds
// for a token revocation (as ID.String) and what the caller's in-process
// entries should remember to match such revocations.
func (s *Store) ID(digest [32]byte) ID { return s.keys.id(&digest) }

// Get returns the value stored for digest. It never fails: Redis being
// down, slow or closed, or the value being malformed or too large, is a
// miss (and is reported to the Observer). It returns within Timeout.
func (s *Store) Get(ctx context.Context, digest [32]byte) (Hit, bool) {
	h, ok, _ := s.Fetch(ctx, digest)
	return h, ok
}

// Fetch is Get that also says why nothing was found: err is an
// *UnavailableError when Redis could not be asked or did not answer in
// time (circuit open, closed, timeout, connection failure), nil for a
// plain miss or a value that was not ours. A caller on a request's path
// uses it to skip its further Redis calls for that request: a failing
// Redis then costs the request one Timeout at most.
func (s *Store) Fetch(ctx context.Context, digest [32]byte) (Hit, bool, error) {
	if !s.begin(OpGet) {
		return Hit{}, false, s.skipped(OpGet)
	}
	id := s.keys.id(&digest)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	b, err := s.rdb.Get(cctx, s.keys.value(&id)).Bytes()
	cancel()
	if err != nil {
		if s.end(ctx, OpGet, start, err, OutcomeMiss) == OutcomeMiss {
			return Hit{}, false, nil
		}
		return Hit{}, false, &UnavailableError{Op: string(OpGet), Err: err}
	}
	h, ok := s.keys.open(&id, b, s.cfg.MaxValueBytes)
	if !ok {
		s.end(ctx, OpGet, start, nil, OutcomeInvalid)
		return Hit{}, false, nil
	}
	s.end(ctx, OpGet, start, nil, OutcomeHit)
	return h, true, nil
}

// skipped is the error of a call not attempted (begin said no).
func (s *Store) skipped(op Op) error {
	if s.closed.Load() {
		return &UnavailableError{Op: string(op), Err: ErrClosed}
	}
	return &UnavailableError{Op: string(op), Err: ErrCircuitOpen}
}

// Set stores value for digest for ttl, stamped with Config.Now (see
// Hit.StoredAt). Best effort: a failure (Redis down, full, slow) is only
// reported to the Observer; a lost Set costs another machine one
// introspection. A non-positive ttl, or a value over MaxValueBytes, stores
// nothing. It returns within Timeout.
//
// Set does not wake machines waiting in Await; a lock holder uses
// Lease.Fill for that.
func (s *Store) Set(ctx context.Context, digest [32]byte, value []byte, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	if len(value) > s.cfg.MaxValueBytes {
		s.obs.Call(OpSet, OutcomeInvalid, 0)
		return
	}
	if !s.begin(OpSet) {
		return
	}
	id := s.keys.id(&digest)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err := s.rdb.Set(cctx, s.keys.value(&id), s.keys.seal(&id, s.cfg.Now(), value), ttl).Err()
	cancel()
	s.end(ctx, OpSet, start, err, OutcomeOK)
}

// RevocationsSynced reports whether this machine has every revocation
// record Redis holds: false from New until the first read of the records,
// and again from any event that may have lost a message (a resubscription
// after a lost connection, the circuit opening or closing) until they are
// read again. A caller that judges values read from Redis against
// revocations (the verifier) does not use them while it is false: a
// machine that restarted or was partitioned must not take a value verified
// before a revocation it has not heard of yet.
func (s *Store) RevocationsSynced() bool { return !s.closed.Load() && s.bus.synced() }

// Healthy reports whether Redis is in use: false while the circuit is open
// (Redis failed repeatedly and is being probed) or after Close. For logs,
// metrics and the doctor; never for readiness (Redis is an optimisation).
func (s *Store) Healthy() bool { return !s.closed.Load() && s.br.allow() }

// Ping asks Redis for a PONG within Timeout, whatever the circuit's state,
// and feeds the result to the circuit. It is the doctor's check; the
// error (an *UnavailableError) says what failed without the URL's password.
func (s *Store) Ping(ctx context.Context) error { return s.ping(ctx, s.cfg.Timeout) }

func (s *Store) ping(ctx context.Context, timeout time.Duration) error {
	if s.closed.Load() {
		return &UnavailableError{Op: string(OpPing), Err: ErrClosed}
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := s.rdb.Ping(cctx).Err()
	cancel()
	if s.end(ctx, OpPing, start, err, OutcomeOK) == OutcomeOK {
		s.br.close()
		return nil
	}
	if err == nil {
		err = errors.New("no answer")
	}
	return &UnavailableError{Op: string(OpPing), Err: err}
}

// Close stops the background goroutines (probe, subscriber), closes the
// connections and makes every later call a skipped miss. Calls in flight
// end with an error. It is idempotent.
func (s *Store) Close() {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	s.stopNow()
	s.wg.Wait()
	if err := s.rdb.Close(); err != nil {
		s.log.Debug("shared cache: close", "err", err)
	}
	s.bus.wakeAll()
}

// bulkTimeout bounds reads that are not on a request's path and may carry
// many records (Revocations): long enough for MaxRevocations records over a
// slow link, short enough that a stuck read is retried.
func (s *Store) bulkTimeout() time.Duration { return max(20*s.cfg.Timeout, time.Second) }

func (s *Store) String() string { return fmt.Sprintf("sharedcache.Store(%s)", redactedURL(s.cfg.URL)) }
