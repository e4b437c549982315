package sharedcache

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Revocation kinds.
const (
	// KindToken revokes one token; Value is its ID (Store.ID) in hex, never
	// the token or its plain digest.
	KindToken = "token"
	// KindSub revokes every token of a subject ("sub", the TokenInfo's
	// UserID): a user whose access was removed, or an OpenID Shared
	// Signals (RFC 8935 / CAEP, RISC) event about them.
	KindSub = "sub"
	// KindClientID revokes every token issued to an OAuth client
	// ("client_id"): a compromised client.
	KindClientID = "client_id"
	// KindEmail revokes every token whose "email" claim is this address
	// (compared case-insensitively): an OpenID Shared Signals event that
	// names its subject by email (RFC 9493 §3.2.2).
	KindEmail = "email"
)

// AllKinds lists every revocation kind in a stable order (a metric's label
// set).
func AllKinds() []string { return []string{KindToken, KindSub, KindClientID, KindEmail} }

// Bounds on a revocation record, checked on Revoke and on every record read
// from Redis (whoever else can write there must not make us parse or keep
// anything large).
const (
	maxRevocationValue = 1024
	maxRevocationJSON  = 2048
)

// Revocation tells every machine to stop trusting cached answers, for a
// token, a subject or a client, that were verified at or before At. It is
// not a verdict: the next request with such a token is introspected again,
// so a token that is still good gets in after one introspection.
type Revocation struct {
	Kind  string    `json:"kind"`
	Value string    `json:"value"`
	At    time.Time `json:"at"`
	// Purge, on a token revocation, is the ID of the shared value to delete
	// with it, when that is not Value's: a JWT is revoked by its signed
	// content (tokendigest.Revocation), but its verdict is stored under
	// the digest of the whole token. Zero: Value's. Only the machine that
	// calls Revoke reads it; it is not part of the record.
	Purge ID `json:"-"`
}

// Validate reports what is wrong with r (an *InvalidError), by the rules
// Revoke, Subscribe and RevocationSet apply: a caller can refuse a bad
// revocation before applying it anywhere.
func (r Revocation) Validate() error { return r.validate() }

// Matches reports whether r names the token with this ID or who it is
// about (an email case-insensitively), whatever the times: for things that
// carry no verification time, such as an open stream, which a revocation
// ends.
func (r Revocation) Matches(id ID, who Principal) bool {
	switch r.Kind {
	case KindToken:
		return r.Value == id.String()
	case KindSub:
		return who.Sub != "" && r.Value == who.Sub
	case KindClientID:
		return who.ClientID != "" && r.Value == who.ClientID
	case KindEmail:
		return who.Email != "" && strings.EqualFold(r.Value, who.Email)
	}
	return false
}

// validate checks a revocation before it is sent or after it is read.
func (r *Revocation) validate() error {
	switch r.Kind {
	case KindToken:
		if len(r.Value) != 2*len(ID{}) {
			return &InvalidError{Reason: "token revocation value must be a 64-digit hex ID"}
		}
		for _, c := range []byte(r.Value) {
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return &InvalidError{Reason: "token revocation value must be lowercase hex"}
			}
		}
	case KindSub, KindClientID, KindEmail:
		if r.Value == "" || len(r.Value) > maxRevocationValue || !utf8.ValidString(r.Value) {
			return &InvalidError{Reason: r.Kind + " revocation value must be 1 to 1024 bytes of UTF-8"}
		}
	default:
		return &InvalidError{Reason: "revocation kind must be token, sub, client_id or email"}
	}
	if r.At.IsZero() {
		return &InvalidError{Reason: "revocation time is missing"}
	}
	return nil
}

// tokenID returns the ID of a (validated) token revocation.
func (r *Revocation) tokenID() (ID, bool) {
	var id ID
	if r.Kind != KindToken {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(r.Value))
	return id, err == nil
}

// decodeRevocation parses a record read from Redis (a published message or
// a sorted-set member).
func decodeRevocation(s string) (Revocation, error) {
	if len(s) > maxRevocationJSON {
		return Revocation{}, &InvalidError{Reason: "revocation record too long"}
	}
	var r Revocation
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Revocation{}, &InvalidError{Reason: "revocation record is not JSON"}
	}
	if err := r.validate(); err != nil {
		return Revocation{}, err
	}
	return r, nil
}

// revokeScript records a revocation and publishes it, atomically, so that a
// machine either receives the message or finds the record when it next
// reads them. It prunes expired records, trims the set to ARGV[6] records
// (dropping those closest to expiry), keeps the set key alive as long as
// its longest-lived record, and for a token revocation deletes the token's
// shared value. KEYS: the sorted set[, the token's value key]. ARGV: expiry
// (Unix ms, the score), record, now (Unix ms), ttl (ms), channel, max.
var revokeScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[6])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
if KEYS[2] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[5], ARGV[2])
return 1`)

// Revoke records r for ttl and publishes it to every machine, this one
// included (through Subscribe). ttl must cover the longest time an entry
// verified before r.At can still be cached anywhere: CACHE_MAX_TTL. A zero
// r.At is set to now. A token revocation also deletes the token's shared
// value, so no machine can read it back from Redis.
//
// It is bounded by one second (or Timeout if longer): it is an admin
// action, not on a request's path. Unlike the cache calls it returns an error (*InvalidError, or
// *UnavailableError when Redis is down or the circuit open) so that an
// admin API can say the revocation did not reach other machines; the
// caller applies it locally either way.
func (s *Store) Revoke(ctx context.Context, r Revocation, ttl time.Duration) error {
	if r.At.IsZero() {
		r.At = s.cfg.Now()
	}
	if err := r.validate(); err != nil {
		return err
	}
	if ttl <= 0 {
		return &InvalidError{Reason: "revocation ttl must be positive"}
	}
	if err := s.unavailable(OpRevoke); err != nil {
		return err
	}
	rec, err := json.Marshal(r)
	if err != nil {
		return &InvalidError{Reason: "revocation cannot be encoded"}
	}
	keys := []string{s.keys.revocations()}
	if id, ok := r.tokenID(); ok {
		if r.Purge != (ID{}) {
			id = r.Purge
		}
		keys = append(keys, s.keys.value(&id))
	}
	now := s.cfg.Now()
	start := time.Now()
	// Not on a request's path: an admin action may wait for a connection
	// to be made, but not for long.
	cctx, cancel := context.WithTimeout(ctx, max(s.cfg.Timeout, connectTimeout))
	err = revokeScript.Run(cctx, s.rdb, keys,
		now.Add(ttl).UnixMilli(), string(rec), now.UnixMilli(), ttl.Milliseconds(),
		s.keys.revokeChan(), s.cfg.MaxRevocations).Err()
	cancel()
	if s.end(ctx, OpRevoke, start, err, OutcomeOK) != OutcomeOK {
		return &UnavailableError{Op: string(OpRevoke), Err: err}
	}
	return nil
}

// Revocations returns every live revocation record (at most
// MaxRevocations), for a machine that starts or reconnects and so may have
// missed messages. Subscribe calls it by itself; it is exported for the
// doctor and tests. Records that do not parse are skipped.
func (s *Store) Revocations(ctx context.Context) ([]Revocation, error) {
	if err := s.unavailable(OpRevocations); err != nil {
		return nil, err
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.bulkTimeout())
	// ZRANGE ... BYSCORE (Redis 6.2+, Valkey, Upstash): live records are
	// those whose expiry score is after now.
	members, err := s.rdb.ZRangeArgs(cctx, redis.ZRangeArgs{
		Key:     s.keys.revocations(),
		Start:   "(" + strconv.FormatInt(s.cfg.Now().UnixMilli(), 10),
		Stop:    "+inf",
		ByScore: true,
		Count:   int64(s.cfg.MaxRevocations),
	}).Result()
	cancel()
	if s.end(ctx, OpRevocations, start, err, OutcomeOK) != OutcomeOK {
		return nil, &UnavailableError{Op: string(OpRevocations), Err: err}
	}
	out := make([]Revocation, 0, len(members))
	for _, m := range members {
		r, err := decodeRevocation(m)
		if err != nil {
			s.log.Debug("shared cache: skipping a malformed revocation record", "err", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// unavailable is the error for a call that must report why it did not go
// to Redis, or nil when it may.
func (s *Store) unavailable(op Op) error {
	switch {
	case s.closed.Load():
		s.obs.Call(op, OutcomeSkipped, 0)
		return &UnavailableError{Op: string(op), Err: ErrClosed}
	case !s.br.allow():
		s.obs.Call(op, OutcomeSkipped, 0)
		return &UnavailableError{Op: string(op), Err: ErrCircuitOpen}
	}
	return nil
}

// Subscribe registers fn to receive every revocation published by any
// machine, this one included, from now until the returned cancel is called.
// Right after registering, and again each time the pub/sub connection is
// (re)established (Redis restarted, network back) or the circuit closes,
// fn also receives every live record (Revocations), so that nothing
// published while this machine was not listening is missed. A record can
// therefore arrive more than once: fn must be idempotent (RevocationSet
// is). Calls to every fn are serial, from one goroutine: fn must be quick
// and must not call back into the Store.
func (s *Store) Subscribe(fn func(Revocation)) (cancel func()) {
	key := s.bus.addHandler(fn)
	s.bus.requestReload()
	return func() { s.bus.removeHandler(key) }
}
