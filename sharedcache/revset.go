package sharedcache

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxFutureSkew bounds how far in this machine's future a revocation's At
// may be. A record from a machine whose clock runs ahead, or a bad record,
// would otherwise refuse every cached answer for its subject until At +
// ttl: the time is clamped to now instead.
const maxFutureSkew = time.Minute

// RevocationSet is the in-process index of live revocations that the
// verifier consults on every cache hit (in-process or from Redis) when it is
// not empty. Feed it from Store.Subscribe (and from a local admin action
// when there is no Redis); ask it with Revoked.
//
// The rule: a cached answer verified at or before a revocation's effective
// time is not used (the token is introspected again). The effective time
// is max(At, the moment this machine learned of it): judging by the local
// receipt time makes clock skew between machines harmless (an entry this
// machine verified before it heard of the revocation is always refused),
// at the cost of one extra introspection for a token verified between At
// and receipt. A record is forgotten ttl (CACHE_MAX_TTL) after its
// effective time: by then every answer verified before it has left every
// cache.
//
// It is safe for concurrent use; Revoked on an empty set is one atomic
// load.
type RevocationSet struct {
	ttl time.Duration
	max int
	now func() time.Time

	n   atomic.Int64  // number of records, read without the lock
	gen atomic.Uint64 // records added (replays excluded), see Generation
	mu  sync.RWMutex
	// Tokens are keyed by ID so that a hit needs no hex encoding;
	// subjects and clients by their string.
	tokens  map[ID]revEntry
	subs    map[string]revEntry
	clients map[string]revEntry
	emails  map[string]revEntry // keyed by the lowercased address
}

// Principal names who a cached answer is about: its "sub", "client_id"
// and "email" claims. An empty field matches nothing.
type Principal struct {
	Sub, ClientID, Email string
}

// revEntry is one record: the At it came with (to recognise a replay of
// the same record) and the effective time it is judged by.
type revEntry struct {
	at, effective time.Time
}

// NewRevocationSet returns an empty set whose records live ttl past their
// effective time, holding at most max records (when full, expired records
// are dropped, then the oldest). now is the clock (nil: time.Now).
func NewRevocationSet(ttl time.Duration, max int, now func() time.Time) *RevocationSet {
	if now == nil {
		now = time.Now
	}
	if max <= 0 {
		max = DefaultMaxRevocations
	}
	return &RevocationSet{
		ttl: ttl, max: max, now: now,
		tokens: map[ID]revEntry{}, subs: map[string]revEntry{}, clients: map[string]revEntry{},
		emails: map[string]revEntry{},
	}
}

// Add records r. A record already known with the same or a later At is a
// replay (Subscribe re-reads records after every reconnection) and changes
// nothing; an invalid record is ignored.
func (rs *RevocationSet) Add(r Revocation) { rs.Apply(r) }

// Apply is Add, and reports whether r was new: false for a replay or an
// invalid record.
func (rs *RevocationSet) Apply(r Revocation) bool {
	if r.validate() != nil {
		return false
	}
	now := rs.now()
	at := r.At
	if at.After(now.Add(maxFutureSkew)) {
		at = now
	}
	eff := at
	if now.After(eff) {
		eff = now
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var added bool
	switch r.Kind {
	case KindToken:
		id, _ := r.tokenID()
		added = addTo(rs, rs.tokens, id, at, eff, now)
	case KindSub:
		added = addTo(rs, rs.subs, r.Value, at, eff, now)
	case KindClientID:
		added = addTo(rs, rs.clients, r.Value, at, eff, now)
	case KindEmail:
		// Email addresses have no canonical form (RFC 9493 §3.2.2);
		// folding case can only revoke more, which costs an
		// introspection, never a false accept.
		added = addTo(rs, rs.emails, strings.ToLower(r.Value), at, eff, now)
	}
	if added {
		rs.gen.Add(1)
	}
	rs.n.Store(int64(rs.size()))
	return added
}

func (rs *RevocationSet) size() int {
	return len(rs.tokens) + len(rs.subs) + len(rs.clients) + len(rs.emails)
}

func addTo[K comparable](rs *RevocationSet, m map[K]revEntry, k K, at, eff, now time.Time) bool {
	if old, ok := m[k]; ok && !at.After(old.at) {
		return false
	}
	rs.makeRoom(now)
	m[k] = revEntry{at: at, effective: eff}
	return true
}

// makeRoom, with the lock held, drops expired records when the set is
// full, and then the record with the oldest effective time if it is still
// full.
func (rs *RevocationSet) makeRoom(now time.Time) {
	if rs.size() < rs.max {
		return
	}
	cutoff := now.Add(-rs.ttl)
	expired := func(e revEntry) bool { return !e.effective.After(cutoff) }
	maps.DeleteFunc(rs.tokens, func(_ ID, e revEntry) bool { return expired(e) })
	maps.DeleteFunc(rs.subs, func(_ string, e revEntry) bool { return expired(e) })
	maps.DeleteFunc(rs.clients, func(_ string, e revEntry) bool { return expired(e) })
	maps.DeleteFunc(rs.emails, func(_ string, e revEntry) bool { return expired(e) })
	if rs.size() < rs.max {
		return
	}
	var oldest time.Time
	var drop func()
	consider := func(e revEntry, del func()) {
		if drop == nil || e.effective.Before(oldest) {
			oldest, drop = e.effective, del
		}
	}
	for k, e := range rs.tokens {
		consider(e, func() { delete(rs.tokens, k) })
	}
	for k, e := range rs.subs {
		consider(e, func() { delete(rs.subs, k) })
	}
	for k, e := range rs.clients {
		consider(e, func() { delete(rs.clients, k) })
	}
	for k, e := range rs.emails {
		consider(e, func() { delete(rs.emails, k) })
	}
	if drop != nil {
		drop()
	}
}

// Revoked reports whether an answer for the token with this ID, about
// who, verified at verifiedAt, must not be used.
func (rs *RevocationSet) Revoked(id ID, who Principal, verifiedAt time.Time) bool {
	if rs.n.Load() == 0 {
		return false
	}
	cutoff := rs.now().Add(-rs.ttl)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	applies := func(e revEntry, ok bool) bool {
		return ok && !verifiedAt.After(e.effective) && e.effective.After(cutoff)
	}
	if e, ok := rs.tokens[id]; applies(e, ok) {
		return true
	}
	if who.Sub != "" {
		if e, ok := rs.subs[who.Sub]; applies(e, ok) {
			return true
		}
	}
	if who.ClientID != "" {
		if e, ok := rs.clients[who.ClientID]; applies(e, ok) {
			return true
		}
	}
	if who.Email != "" && len(rs.emails) > 0 {
		if e, ok := rs.emails[strings.ToLower(who.Email)]; applies(e, ok) {
			return true
		}
	}
	return false
}

// Generation counts the records added so far (replays of known records
// excluded). A caller that coalesces work, such as the verifier's
// per-token introspection, keys it by generation, so that a request made
// after a revocation never shares the answer of a call that started
// before it.
func (rs *RevocationSet) Generation() uint64 { return rs.gen.Load() }

// Len is the number of records held (expired ones included until they are
// dropped), for metrics and tests.
func (rs *RevocationSet) Len() int { return int(rs.n.Load()) }
