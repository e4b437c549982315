package gateway

// Bounds on what a caller with a valid token can hold open: streams (any
// answer that stays open: a GET event stream in stateful mode, a POST
// answered with SSE, and a 2026-07-28 subscriptions/listen, which is SSE
// in every mode and lives until the client leaves) and stateful sessions.
// Each is bounded in total and per user, so that one user cannot lock the
// others out: past the total, 503 with Retry-After (the server is full);
// past the user's own bound, 429 with Retry-After (that user is holding
// enough). A stream also ends when the token that opened it expires, and
// can be ended when it is revoked (EndStreams).

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/internal/redact"
	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/internal/tokendigest"
	"github.com/mcp-gateway/mcp-gateway/prm"
)

// Defaults for Config.MaxSessions, MaxStreams and their per-user bounds.
const (
	DefaultMaxSessions        = 1000
	DefaultMaxStreams         = 1000
	DefaultMaxSessionsPerUser = 20
	DefaultMaxStreamsPerUser  = 20
)

// Retry-After sent when a limit is reached. Sessions are freed by DELETE
// or SessionTimeout, streams when a client disconnects.
const (
	sessionsRetryAfter = 30 * time.Second
	streamsRetryAfter  = 10 * time.Second
)

// methodSubscriptionsListen opens a long-lived stream in the 2026-07-28
// protocol (SEP-2575): the SDK answers it with SSE even in JSON mode and
// keeps it open until the client leaves.
const methodSubscriptionsListen = "subscriptions/listen"

// ErrTokenExpired is the cause of a stream's context when the token that
// opened it expired; ErrTokenRevoked when EndStreams ended it.
var (
	ErrTokenExpired = errors.New("the token that opened the stream has expired")
	ErrTokenRevoked = errors.New("the token that opened the stream was revoked")
)

// userKey is whom a token speaks for, for the per-user bounds: its
// subject (the SDK's TokenInfo.UserID, which the verifier fills from
// "sub", or "username"), else the OAuth client it was issued to. Tokens
// that name neither share one bucket.
type userKey struct {
	client bool // id is a client id, not a subject
	id     string
}

func userOf(ti *auth.TokenInfo) userKey {
	if ti == nil {
		return userKey{}
	}
	if ti.UserID != "" {
		return userKey{id: ti.UserID}
	}
	if id, ok := ti.Extra["client_id"].(string); ok && id != "" {
		return userKey{client: true, id: id}
	}
	return userKey{}
}

// refusal is why a limit refused a request: nil when it was admitted.
type refusal struct {
	perUser bool // the user's own bound (429), else the total (503)
}

// streamLimiter counts open streams in total and per user, and knows them
// so that they can be ended. Its per-user table holds only users with an
// open stream, so it is bounded by the total.
type streamLimiter struct {
	max, perUser int

	mu     sync.Mutex
	byUser map[userKey]int
	live   map[*openStream]struct{}
}

// openStream is one open stream: whose, opened with which token (its
// SHA-256, never the token), and how to end it.
type openStream struct {
	user   userKey
	digest [32]byte
	ti     *auth.TokenInfo // the verified token's information, for EndStreamsWhere
	end    context.CancelCauseFunc
}

func newStreamLimiter(max, perUser int) *streamLimiter {
	return &streamLimiter{max: max, perUser: perUser, byUser: map[userKey]int{}, live: map[*openStream]struct{}{}}
}

func (l *streamLimiter) open(s *openStream) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && len(l.live) >= l.max {
		return &refusal{}
	}
	if l.perUser > 0 && l.byUser[s.user] >= l.perUser {
		return &refusal{perUser: true}
	}
	l.byUser[s.user]++
	l.live[s] = struct{}{}
	return nil
}

func (l *streamLimiter) close(s *openStream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.live[s]; !ok {
		return
	}
	delete(l.live, s)
	if l.byUser[s.user]--; l.byUser[s.user] <= 0 {
		delete(l.byUser, s.user)
	}
}

// endToken ends every open stream opened with the token whose digest is d.
func (l *streamLimiter) endToken(d [32]byte) int {
	l.mu.Lock()
	var ends []context.CancelCauseFunc
	for s := range l.live {
		if s.digest == d {
			ends = append(ends, s.end)
		}
	}
	l.mu.Unlock()
	for _, end := range ends {
		end(ErrTokenRevoked)
	}
	return len(ends)
}

// endWhere ends every open stream match says yes to. match runs without
// the lock: it may take time (a keyed hash per stream).
func (l *streamLimiter) endWhere(match func(digest [32]byte, ti *auth.TokenInfo) bool) int {
	l.mu.Lock()
	open := make([]*openStream, 0, len(l.live))
	for s := range l.live {
		open = append(open, s)
	}
	l.mu.Unlock()
	n := 0
	for _, s := range open {
		if match(s.digest, s.ti) {
			s.end(ErrTokenRevoked)
			n++
		}
	}
	return n
}

func (l *streamLimiter) count(user userKey) (total, mine int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.live), l.byUser[user]
}

// sessionLimiter bounds the live sessions of a stateful server, in total
// and per user. The SDK's StreamableHTTPHandler has no limit of its own,
// and keeps a session until DELETE or SessionTimeout, so every POST that
// would create one (a POST without Mcp-Session-Id) is admitted only while
// both bounds allow. Live sessions are the server's own list
// (mcp.Server.Sessions), so sessions that end by any path free their
// place; owners records whose each session is (the SDK binds a session to
// its user but does not say so); pending counts admitted requests the SDK
// has not finished, so concurrent requests cannot overshoot (a request is
// briefly counted twice, which errs on the side of refusing).
type sessionLimiter struct {
	server       *mcp.Server
	max, perUser int

	mu      sync.Mutex
	pending map[userKey]int    // admitted, not yet finished
	owners  map[string]userKey // session id -> its user
}

func newSessionLimiter(server *mcp.Server, max, perUser int) *sessionLimiter {
	return &sessionLimiter{server: server, max: max, perUser: perUser, pending: map[userKey]int{}, owners: map[string]userKey{}}
}

func (l *sessionLimiter) acquire(user userKey) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	live := make(map[string]struct{}, len(l.owners))
	for ss := range l.server.Sessions() {
		live[ss.ID()] = struct{}{}
	}
	mine := l.pending[user]
	for id, owner := range l.owners {
		if _, ok := live[id]; !ok {
			delete(l.owners, id) // ended: DELETE, timeout, or Close
			continue
		}
		if owner == user {
			mine++
		}
	}
	total := len(live)
	for _, n := range l.pending {
		total += n
	}
	if l.max > 0 && total >= l.max {
		return &refusal{}
	}
	if l.perUser > 0 && mine >= l.perUser {
		return &refusal{perUser: true}
	}
	l.pending[user]++
	return nil
}

// release ends an admitted request; sessionID is the session it opened,
// if any.
func (l *sessionLimiter) release(user userKey, sessionID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[user]--; l.pending[user] <= 0 {
		delete(l.pending, user)
	}
	if sessionID != "" {
		l.owners[sessionID] = user
	}
}

// isStream reports whether the request's answer stays open: a GET event
// stream (stateful mode; a stateless server refuses GET), a
// subscriptions/listen, or, without JSON responses, any POST carrying a
// call (answered with SSE until its last answer).
func (g *Gateway) isStream(r *http.Request, st *reqState) bool {
	switch r.Method {
	case http.MethodGet:
		return !g.cfg.Stateless
	case http.MethodPost:
		for i := range st.msgs {
			m := &st.msgs[i]
			if m.Method == methodSubscriptionsListen || (!g.cfg.JSONResponse && isCall(m)) {
				return true
			}
		}
	}
	return false
}

// limits enforces the session and stream bounds on the MCP endpoint. It
// runs after authentication (and readBody), so only callers with a valid
// token can use up either, and each is counted against its user.
func (g *Gateway) limits(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		st := stateFrom(r.Context())
		if st == nil {
			return echo.ErrInternalServerError // observe always sets it: fail closed
		}
		if g.sessions != nil && r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" {
			user := userOf(st.ti)
			if ref := g.sessions.acquire(user); ref != nil {
				g.overLimit(c, ref, st, sessionsRetryAfter, "sessions")
				return nil
			}
			defer func() { g.sessions.release(user, c.Response().Header().Get("Mcp-Session-Id")) }()
		}

		if !g.isStream(r, st) {
			return next(c)
		}
		ctx, end := context.WithCancelCause(r.Context())
		defer end(nil)
		s := openStreamOf(st, end)
		if ref := g.streams.open(s); ref != nil {
			g.overLimit(c, ref, st, streamsRetryAfter, "streams")
			return nil
		}
		defer g.streams.close(s)
		defer g.endAtExpiry(st.ti, end)()
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// openStreamOf is the stream a request opens: its user, and its token by
// its revocation digest (tokendigest.Revocation), so that EndStreams can
// name it.
func openStreamOf(st *reqState, end context.CancelCauseFunc) *openStream {
	return &openStream{user: userOf(st.ti), ti: st.ti, end: end, digest: tokendigest.Revocation(st.token)}
}

// endAtExpiry ends a stream when its token expires (with the clock skew
// the verifier tolerates): a stream must not outlive the credential that
// opened it. It returns the function that disarms it.
func (g *Gateway) endAtExpiry(ti *auth.TokenInfo, end context.CancelCauseFunc) (stop func() bool) {
	if ti == nil || ti.Expiration.IsZero() {
		return func() bool { return false }
	}
	return g.cfg.AfterFunc(ti.Expiration.Add(g.cfg.ClockSkew).Sub(g.cfg.Now()), func() { end(ErrTokenExpired) })
}

// EndStreams ends every open stream opened with the token whose
// tokendigest.Revocation is tokenDigest, and returns how many it ended:
// the hook for revocation (a revoked token's streams must not outlive
// it). The client sees its event stream close, and reconnects with a
// token that is still good, or none.
func (g *Gateway) EndStreams(tokenDigest [32]byte) int { return g.streams.endToken(tokenDigest) }

// EndStreamsWhere ends every open stream whose token (its
// tokendigest.Revocation) and verified TokenInfo match says yes to, and
// returns how many it ended: the hook for revocations that name a
// subject, a client or an email rather than one token. match must be
// quick and must treat the TokenInfo as read-only.
func (g *Gateway) EndStreamsWhere(match func(tokenDigest [32]byte, ti *auth.TokenInfo) bool) int {
	return g.streams.endWhere(match)
}

// overLimit answers a request a limit refused: 503 when the server is
// full, 429 when the user holds their own bound; both with Retry-After.
func (g *Gateway) overLimit(c echo.Context, ref *refusal, st *reqState, retry time.Duration, what string) {
	status, code, desc := http.StatusServiceUnavailable, "too_many_"+what, "this server has too many open "+what+"; try again later"
	attrs := []any{"limit", what, "per_user", ref.perUser}
	if ref.perUser {
		status, code, desc = http.StatusTooManyRequests, "too_many_"+what+"_for_user", "you have too many open "+what+"; close one or try again later"
	}
	if st.ti != nil && st.ti.UserID != "" {
		attrs = append(attrs, "subject_hash", redact.Subject(st.ti.UserID))
	}
	g.cfg.Logger.WarnContext(c.Request().Context(), "limit reached", attrs...)
	c.Response().Header().Set("Retry-After", retryAfterSeconds(retry))
	prm.WriteError(c.Response(), status, nil, prm.ErrorBody{Error: code, ErrorDescription: desc})
}

// isCall reports whether m is a request that expects an answer (JSON-RPC
// 2.0 §4: a method and an id). Every MCP notification's method starts with
// "notifications/" (MCP basic protocol, "Notifications"), and a response
// has no method.
func isCall(m *rpcpeek.Message) bool {
	return m.Method != "" && !strings.HasPrefix(m.Method, "notifications/")
}
