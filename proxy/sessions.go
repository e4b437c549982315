package proxy

import (
	"container/list"
	"sync"
	"time"
)

// Session ids the proxy accepts from an upstream. MCP ("Session
// Management") says a session id must contain only visible ASCII
// (0x21 to 0x7E); the length bound keeps the table's memory bounded.
const maxSessionIDLen = 256

func validSessionID(id string) bool {
	if id == "" || len(id) > maxSessionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7E {
			return false
		}
	}
	return true
}

// session is one upstream session and the caller it was issued to.
type session struct {
	id       string
	owner    *caller
	lastUsed time.Time
	inFlight int           // requests using it now; it is not idle while >0
	elem     *list.Element // in sessions.idle
}

// limitError says which bound refused a request: per user (429) or in
// total (503), both with Retry-After.
type limitError struct {
	what    string // "sessions" or "streams"
	perUser bool
}

func (e *limitError) Error() string {
	if e.perUser {
		return "proxy: too many " + e.what + " for this user"
	}
	return "proxy: too many " + e.what
}

// sessions binds the session ids an upstream issues to the caller they
// were issued to, so that a session id cannot be used by anyone else
// (MCP security best practices, "Session Hijacking": the server must not
// rely on a session id alone, and binds it to the user). It is the
// proxy's own table, because the upstream cannot tell callers apart other
// than by headers the proxy sets.
//
// The table is bounded in total and per user, and forgets a session idle
// for longer than idle. Sessions are ordered by last use in a list, so
// that the idle ones are found at its back without a background sweep.
type sessions struct {
	mu          sync.Mutex
	byID        map[string]*session
	idle        list.List // front: most recently used
	perUser     map[userKey]int
	pending     map[userKey]int // initialize requests admitted, not yet answered
	pendingAll  int
	max, maxPer int
	idleAfter   time.Duration
	now         func() time.Time
	onEvict     func(*session) // told of sessions forgotten for idleness
}

func newSessions(max, maxPer int, idleAfter time.Duration, now func() time.Time, onEvict func(*session)) *sessions {
	return &sessions{
		byID:      make(map[string]*session),
		perUser:   make(map[userKey]int),
		pending:   make(map[userKey]int),
		max:       max,
		maxPer:    maxPer,
		idleAfter: idleAfter,
		now:       now,
		onEvict:   onEvict,
	}
}

// use looks up a session id the caller presents and marks it in use until
// done is called. It fails for an id never issued through this proxy, one
// forgotten (ended, idle, or lost with a restart of the gateway), and one
// issued to another caller: all three look the same to the caller, who
// must start a new session (MCP "Session Management": 404 for an unknown
// session).
func (s *sessions) use(id string, c *caller) (done func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictIdle()
	sess := s.byID[id]
	if sess == nil || sess.owner.key != c.key {
		return nil, false
	}
	sess.inFlight++
	s.touch(sess)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		sess.inFlight--
		if sess.elem != nil { // still bound
			s.touch(sess)
		}
	}, true
}

// reserve admits a request that may create a session (initialize) while
// the caller and the table have room, counting it until release or bind.
func (s *sessions) reserve(c *caller) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.room(c.key); err != nil {
		return err
	}
	s.pending[c.key]++
	s.pendingAll++
	return nil
}

// release ends a reservation made by reserve.
func (s *sessions) release(c *caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreserve(c.key)
}

func (s *sessions) unreserve(key userKey) {
	s.pendingAll--
	if s.pending[key]--; s.pending[key] <= 0 {
		delete(s.pending, key)
	}
}

// room says whether key may open one more session; the caller holds mu.
func (s *sessions) room(key userKey) error {
	s.evictIdle()
	if s.perUser[key]+s.pending[key] >= s.maxPer {
		return &limitError{what: "sessions", perUser: true}
	}
	if len(s.byID)+s.pendingAll >= s.max {
		return &limitError{what: "sessions"}
	}
	return nil
}

// bindResult says what bind did.
type bindResult int

const (
	bound     bindResult = iota // a new binding
	boundSame                   // already bound to this caller
	bindTaken                   // bound to another caller: refused
	bindFull                    // no room: refused
)

// bind records that the upstream issued id to c. reserved says that the
// request held a reservation, which becomes the binding. An id bound to
// another caller is never rebound.
func (s *sessions) bind(id string, c *caller, reserved bool) (bindResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reserved {
		s.unreserve(c.key)
	}
	if sess := s.byID[id]; sess != nil {
		if sess.owner.key != c.key {
			return bindTaken, nil
		}
		s.touch(sess)
		return boundSame, nil
	}
	if err := s.room(c.key); err != nil {
		return bindFull, err
	}
	sess := &session{id: id, owner: c}
	sess.elem = s.idle.PushFront(sess)
	sess.lastUsed = s.now()
	s.byID[id] = sess
	s.perUser[c.key]++
	return bound, nil
}

// end forgets a session (DELETE answered, or the upstream said it does
// not know it).
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.byID[id]; sess != nil {
		s.remove(sess)
	}
}

func (s *sessions) remove(sess *session) {
	delete(s.byID, sess.id)
	s.idle.Remove(sess.elem)
	sess.elem = nil
	if s.perUser[sess.owner.key]--; s.perUser[sess.owner.key] <= 0 {
		delete(s.perUser, sess.owner.key)
	}
}

func (s *sessions) touch(sess *session) {
	sess.lastUsed = s.now()
	s.idle.MoveToFront(sess.elem)
}

// evictIdle forgets the sessions unused for longer than idleAfter, from
// the back of the list; a session with a request in flight (an open event
// stream) is in use, not idle. The caller holds mu.
func (s *sessions) evictIdle() {
	now := s.now()
	for e := s.idle.Back(); e != nil; e = s.idle.Back() {
		sess := e.Value.(*session)
		if now.Sub(sess.lastUsed) <= s.idleAfter {
			return
		}
		if sess.inFlight > 0 {
			s.touch(sess)
			continue
		}
		s.remove(sess)
		if s.onEvict != nil {
			s.onEvict(sess)
		}
	}
}

// len is the number of bound sessions.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// all returns the bound sessions and forgets them (Close).
func (s *sessions) drain() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.byID))
	for _, sess := range s.byID {
		out = append(out, sess)
		s.remove(sess)
	}
	return out
}

// streams bounds the streaming answers open at once, in total and per
// caller: each holds a connection to the upstream and one to the client
// for as long as the upstream keeps it open.
type streams struct {
	mu          sync.Mutex
	perUser     map[userKey]int
	all         int
	max, maxPer int
}

func newStreams(max, maxPer int) *streams {
	return &streams{perUser: make(map[userKey]int), max: max, maxPer: maxPer}
}

func (s *streams) acquire(key userKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[key] >= s.maxPer {
		return &limitError{what: "streams", perUser: true}
	}
	if s.all >= s.max {
		return &limitError{what: "streams"}
	}
	s.perUser[key]++
	s.all++
	return nil
}

func (s *streams) release(key userKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all--
	if s.perUser[key]--; s.perUser[key] <= 0 {
		delete(s.perUser, key)
	}
}
