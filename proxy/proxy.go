package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout            = 60 * time.Second
	DefaultMaxSessions        = 1000
	DefaultMaxSessionsPerUser = 100
	DefaultMaxStreams         = 1000
	DefaultMaxStreamsPerUser  = 100
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultMaxBodyBytes       = 1 << 20
	DefaultMaxRewriteBytes    = 8 << 20
)

// Config configures a Proxy. Only Upstream is required.
type Config struct {
	// Upstream is the upstream MCP server's Streamable HTTP endpoint
	// (UPSTREAM_URL), e.g. http://127.0.0.1:3001/mcp: an absolute URL,
	// https, or http on a loopback host (or anywhere with AllowHTTP),
	// without user information (credentials go in Authorization) or
	// fragment. Requests go to exactly this URL, whatever path the gateway
	// serves.
	Upstream string
	// AllowHTTP permits plain http to a host that is not loopback
	// (UPSTREAM_ALLOW_HTTP): for an upstream on a private network the
	// operator trusts, such as a sidecar, a Fly.io .internal address or a
	// Kubernetes pod network. The identity headers and Authorization then
	// cross that network in clear text.
	AllowHTTP bool
	// Authorization (UPSTREAM_AUTHORIZATION) is sent as the Authorization
	// header of every upstream request when set, e.g. "Bearer s3cret", so
	// that the upstream can refuse anyone but the gateway. It is a secret:
	// never logged, never in an error.
	Authorization string
	// Timeout (UPSTREAM_TIMEOUT) bounds the wait for the upstream answer's
	// first byte (its status line); past it the client gets 504. A stream
	// that has started is not cut while it lasts. A JSON answer starts
	// when the tool has finished, so this must exceed the slowest tool
	// unless the upstream answers with a stream. 0: DefaultTimeout.
	Timeout time.Duration
	// MaxSessions and MaxSessionsPerUser bound the upstream sessions the
	// proxy has bound to callers, in total (past it: 503) and per caller
	// (past it: 429), both with Retry-After. 0: the defaults.
	MaxSessions, MaxSessionsPerUser int
	// SessionIdleTimeout forgets a session unused for this long (and ends
	// it at the upstream with DELETE). 0: DefaultSessionIdleTimeout.
	SessionIdleTimeout time.Duration
	// MaxStreams and MaxStreamsPerUser bound the streaming answers open at
	// once (GET event streams and SSE answers to POST), in total (503) and
	// per caller (429). 0: the defaults.
	MaxStreams, MaxStreamsPerUser int
	// MaxBodyBytes bounds a request body the proxy reads (413 past it).
	// 0: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxRewriteBytes bounds what the proxy buffers to rewrite a tools/list
	// answer: a JSON body, or one server-sent event. An answer past it is
	// refused (502), never passed unfiltered. 0: DefaultMaxRewriteBytes.
	MaxRewriteBytes int
	// FilterTool, when set, decides which tools a tools/list answer shows:
	// a tool for which it returns false is removed. ctx is the request's
	// context. nil: every tool is shown.
	FilterTool func(ctx context.Context, name string) bool
	// Transport carries upstream requests. nil: a transport of the proxy's
	// own, with a keep-alive pool sized for many concurrent requests.
	Transport http.RoundTripper
	// Logger receives the proxy's warnings and errors. nil: discarded.
	Logger *slog.Logger
	// Observer, when set, is told of every upstream failure (metrics).
	Observer Observer
	// TracerProvider, when not nil, records a client span per forwarded
	// request and sends its context upstream as the traceparent
	// (trace.go). nil: no spans; the client's traceparent is forwarded.
	TracerProvider trace.TracerProvider
	// Now is the clock (session idleness). nil: time.Now.
	Now func() time.Time
}

// Proxy forwards authorized MCP requests to an upstream Streamable HTTP
// server and streams the answers back. See the package documentation.
type Proxy struct {
	upstream      *url.URL
	authorization []string // nil when not configured
	timeout       time.Duration
	maxBody       int64
	maxRewrite    int
	filter        func(context.Context, string) bool
	transport     http.RoundTripper
	ownTransport  *http.Transport // closed by Close
	log           *slog.Logger
	observer      Observer
	tracer        trace.Tracer // nil: no spans
	now           func() time.Time
	rp            *httputil.ReverseProxy

	sessions *sessions
	streams  *streams

	background   sync.WaitGroup // upstream DELETEs and readiness checks in flight
	terminateSem chan struct{}
	bgMu         sync.Mutex
	bgClosed     bool // Close is waiting: no more background requests
	closeOnce    sync.Once
	closed       chan struct{}

	readyMu   sync.Mutex
	readyAt   time.Time
	readyErr  error
	readyDone chan struct{} // the check in progress, closed when it ends
}

// Validate reports every problem of cfg at once (errors.Join), as New
// would, without building anything: for the gateway's configuration
// check. No error quotes UPSTREAM_AUTHORIZATION.
func (cfg Config) Validate() error {
	_, _, err := cfg.withDefaults()
	return err
}

// New checks cfg, reporting every problem at once (errors.Join), and
// returns a Proxy. No error quotes UPSTREAM_AUTHORIZATION.
func New(cfg Config) (*Proxy, error) {
	cfg, u, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return build(cfg, u), nil
}

// withDefaults checks cfg and fills in the defaults of its zero values.
func (cfg Config) withDefaults() (Config, *url.URL, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("proxy: "+format, args...)) }

	u, err := parseUpstream(cfg.Upstream, cfg.AllowHTTP)
	if err != nil {
		errs = append(errs, fmt.Errorf("proxy: %w", err))
	}
	if cfg.Authorization != "" && !safeValue(cfg.Authorization, maxScopesValue) {
		// Never echo the value: it is a secret.
		bad("UPSTREAM_AUTHORIZATION is not a valid header value (control characters, surrounding spaces, or longer than %d bytes)", maxScopesValue)
	}
	dur := func(name string, d *time.Duration, def time.Duration) {
		switch {
		case *d < 0:
			bad("%s must not be negative", name)
		case *d == 0:
			*d = def
		}
	}
	num := func(name string, n *int, def int) {
		switch {
		case *n < 0:
			bad("%s must not be negative", name)
		case *n == 0:
			*n = def
		}
	}
	dur("UPSTREAM_TIMEOUT", &cfg.Timeout, DefaultTimeout)
	dur("session idle timeout", &cfg.SessionIdleTimeout, DefaultSessionIdleTimeout)
	num("max sessions", &cfg.MaxSessions, DefaultMaxSessions)
	num("max sessions per user", &cfg.MaxSessionsPerUser, DefaultMaxSessionsPerUser)
	num("max streams", &cfg.MaxStreams, DefaultMaxStreams)
	num("max streams per user", &cfg.MaxStreamsPerUser, DefaultMaxStreamsPerUser)
	num("max rewrite bytes", &cfg.MaxRewriteBytes, DefaultMaxRewriteBytes)
	switch {
	case cfg.MaxBodyBytes < 0:
		bad("max body bytes must not be negative")
	case cfg.MaxBodyBytes == 0:
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if len(errs) > 0 {
		return cfg, nil, errors.Join(errs...)
	}
	return cfg, u, nil
}

func build(cfg Config, u *url.URL) *Proxy {
	p := &Proxy{
		upstream:     u,
		timeout:      cfg.Timeout,
		maxBody:      cfg.MaxBodyBytes,
		maxRewrite:   cfg.MaxRewriteBytes,
		filter:       cfg.FilterTool,
		transport:    cfg.Transport,
		log:          cfg.Logger,
		observer:     cfg.Observer,
		now:          cfg.Now,
		streams:      newStreams(cfg.MaxStreams, cfg.MaxStreamsPerUser),
		terminateSem: make(chan struct{}, maxTerminating),
		closed:       make(chan struct{}),
	}
	if cfg.Authorization != "" {
		p.authorization = []string{cfg.Authorization}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if cfg.TracerProvider != nil {
		p.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.transport == nil {
		p.ownTransport = newTransport()
		p.transport = p.ownTransport
	}
	p.sessions = newSessions(cfg.MaxSessions, cfg.MaxSessionsPerUser, cfg.SessionIdleTimeout, p.now, func(s *session) {
		p.log.Info("upstream session idle: forgotten and ended", "idle_for", cfg.SessionIdleTimeout.String())
		p.terminate(s)
	})
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		BufferPool:     bufferPool{},
		// Zero: ReverseProxy flushes server-sent events (and answers of
		// unknown length) after every write by itself; a JSON answer of
		// known length is written at once, without a flush timer.
		FlushInterval: 0,
	}
	return p
}

// parseUpstream applies the project's rule for outgoing URLs: https, or
// http only to a loopback host (or with the explicit opt-in).
func parseUpstream(raw string, allowHTTP bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("UPSTREAM_URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("UPSTREAM_URL: %v", err)
	}
	switch {
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("UPSTREAM_URL %q must be an absolute http(s) URL", safeURL(u))
	case u.User != nil:
		return nil, fmt.Errorf("UPSTREAM_URL %q must not carry user information: put the credential in UPSTREAM_AUTHORIZATION", safeURL(u))
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("UPSTREAM_URL %q must not have a fragment", safeURL(u))
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !allowHTTP && !loopback.Host(u.Hostname()) {
			return nil, fmt.Errorf("UPSTREAM_URL %q: plain http is allowed only to a loopback host; use https, or set UPSTREAM_ALLOW_HTTP=true for an upstream on a private network", safeURL(u))
		}
	default:
		return nil, fmt.Errorf("UPSTREAM_URL %q must be an http(s) URL", safeURL(u))
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// Redacted is how an upstream URL may appear in logs and messages: its
// query (where some hosted MCP servers take an API key) and any user
// information replaced. A URL that does not parse is replaced whole.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	return safeURL(u)
}

// safeURL is how an upstream URL appears in messages and logs: without
// its query, where some hosted MCP servers take an API key.
func safeURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "[redacted]"
	}
	c.User = nil
	return c.String()
}

// scrub removes the upstream URL's query (a credential, for some hosted
// servers) and the upstream credential from an error text that is logged
// or shown: transport errors quote the request URL, and an upstream may
// quote what it received.
func (p *Proxy) scrub(msg string) string {
	if p.upstream.RawQuery != "" {
		msg = strings.ReplaceAll(msg, p.upstream.RawQuery, "[redacted]")
	}
	if p.authorization != nil {
		a := p.authorization[0]
		msg = strings.ReplaceAll(msg, a, "[redacted]")
		if _, cred, ok := strings.Cut(a, " "); ok && len(cred) >= 8 {
			msg = strings.ReplaceAll(msg, cred, "[redacted]")
		}
	}
	return msg
}

// newTransport is the proxy's own transport: no proxy from the
// environment (the upstream is on the operator's network), no transparent
// compression (the proxy reads what it rewrites, and loopback or private
// links gain nothing from it), and an idle pool large enough that many
// concurrent requests reuse connections instead of opening new ones.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers, which it would
// otherwise allocate for every answer.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

// request is the proxy's state for one request. It is also the context
// of the upstream request (the client's context, cancelled at Timeout
// before the first byte), which carries it from ServeHTTP to Rewrite,
// ModifyResponse and the ErrorHandler without a context.WithValue.
type request struct {
	context.Context
	caller    *caller
	method    string
	sessionID string   // the session the client presented, checked
	reserved  bool     // holds a session reservation (initialize)
	newID     string   // a session bound by this request's answer
	toolsList []string // ids of tools/list requests whose answers are rewritten
	body      []byte   // the POST body the proxy read; nil when it streams through unread
	stream    bool     // holds a stream slot for an SSE answer to POST
	timer     *time.Timer

	upstreamStatus int     // the upstream's status, once it answered (traces)
	failure        Failure // why the client did not get the upstream's answer (traces)
}

type requestKey struct{}

// Value returns the request itself for requestKey.
func (st *request) Value(key any) any {
	if key == (requestKey{}) {
		return st
	}
	return st.Context.Value(key)
}

func stateFrom(ctx context.Context) *request {
	st, _ := ctx.Value(requestKey{}).(*request)
	return st
}

// ServeHTTP forwards an authorized MCP request (POST, GET or DELETE) to
// the upstream. The caller's Identity must be in the request's context
// (WithIdentity); without it the request is refused with 500, since the
// gateway failed to authenticate it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, ok := callerFrom(r.Context())
	if !ok {
		p.log.ErrorContext(r.Context(), "proxy: request without an identity refused: the gateway must authenticate before the proxy")
		writeError(w, http.StatusInternalServerError, codeServerError, "the request was not authenticated")
		return
	}
	if c.err != "" {
		writeError(w, http.StatusForbidden, codeAccessDenied, c.err)
		return
	}
	select {
	case <-p.closed:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the gateway is shutting down")
		return
	default:
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "the MCP endpoint accepts GET, POST and DELETE")
		return
	}

	st := &request{caller: c, method: r.Method}
	switch ids := r.Header[headerSessionID]; len(ids) {
	case 0:
	case 1:
		done, ok := p.sessions.use(ids[0], c)
		if !ok {
			writeError(w, http.StatusNotFound, codeSessionNotFound, "this session does not exist or has ended; start a new one")
			return
		}
		defer done()
		st.sessionID = ids[0]
	default:
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "more than one Mcp-Session-Id")
		return
	}

	if r.Method == http.MethodGet {
		if err := p.streams.acquire(c.key); err != nil {
			p.writeLimit(w, err)
			return
		}
		defer p.streams.release(c.key)
	}
	defer func() {
		if st.stream {
			p.streams.release(c.key)
		}
	}()

	// A POST body is read when the proxy must know what it asks: without
	// a session it may be an initialize (bounded by MaxSessions), and
	// with a tool filter a tools/list must be recognised. Otherwise it
	// streams through unread, bounded all the same.
	if r.Method == http.MethodPost && st.sessionID != "" && p.filter == nil && r.Body != nil {
		if r.ContentLength > p.maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than this server accepts")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, p.maxBody)
	} else if r.Method == http.MethodPost {
		var body []byte
		var info requestInfo
		if pb, read := r.Context().Value(readBodyKey{}).(*peekedBody); read {
			if int64(len(pb.body)) > p.maxBody {
				writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than this server accepts")
				return
			}
			body, info = pb.body, infoOf(pb.msgs)
		} else {
			var ok bool
			if body, ok = p.readBody(w, r); !ok {
				return
			}
			info = parseRequest(body)
		}
		if p.filter != nil && (!info.parsed || info.badListID) {
			// Fail closed: an answer the proxy could not match to its
			// tools/list request would reach the client unfiltered.
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "the request is not a JSON-RPC message whose tools/list id (a string or an integer) the gateway can match")
			return
		}
		st.toolsList = info.toolsList
		if info.initialize && st.sessionID == "" {
			if err := p.sessions.reserve(c); err != nil {
				p.writeLimit(w, err)
				return
			}
			st.reserved = true
			defer func() {
				if st.reserved {
					p.sessions.release(c)
				}
			}()
		}
		st.body = body
		r.Body = inMemory(body)
		r.ContentLength = int64(len(body))
		// The transport may resend a request it wrote nothing of on a
		// reused connection the upstream had just closed.
		r.GetBody = func() (io.ReadCloser, error) { return inMemory(body), nil }
	}

	base := r.Context()
	if p.tracer != nil {
		var span trace.Span
		base, span = p.startUpstream(base, r.Method)
		// Deferred: a client gone mid-stream ends ServeHTTP with
		// panic(http.ErrAbortHandler), and the span ends all the same.
		defer endUpstream(span, st)
	}
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	st.Context = ctx
	st.timer = time.AfterFunc(p.timeout, func() { cancel(errUpstreamTimeout) })
	defer st.timer.Stop()
	p.rp.ServeHTTP(w, r.WithContext(st))
	// The answer is complete (ReverseProxy returned; a failed copy
	// panics instead). One of known length still sits in net/http's
	// buffer until the handler returns: send it now, in the same single
	// write, rather than after the deferred releases above and the
	// gateway's request log and metrics, which the client need not wait
	// for. Answers of unknown length were flushed as they were copied.
	if w.Header().Get("Content-Length") != "" {
		_ = http.NewResponseController(w).Flush()
	}
}

// inMemory is a request body the proxy has read, handed on. It is exactly
// io.NopCloser(*bytes.Reader), a body net/http knows never blocks: the
// transport then writes the upstream request's headers and body in one
// write, where any other reader makes it flush the headers first (one
// more system call and packet per request).
func inMemory(body []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(body)) }

// readBody reads a POST body, bounded by MaxBodyBytes.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	defer r.Body.Close()
	if r.ContentLength > p.maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than this server accepts")
		return nil, false
	}
	// io.ReadAll, but sized by Content-Length: one allocation when the
	// client states the length.
	size := 512
	if r.ContentLength >= 0 {
		size = int(r.ContentLength) + 1 // room to see EOF
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > p.maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than this server accepts")
			return nil, false
		}
		if err == io.EOF {
			return buf, true
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "the request body could not be read")
			return nil, false
		}
	}
}

// rewrite builds the upstream request: the upstream URL exactly, the
// allowlisted client headers, and the gateway's identity headers.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.Out.Context())
	*pr.Out.URL = *p.upstream
	pr.Out.Host = ""
	filterRequestHeaders(pr.Out.Header)
	if p.tracer != nil {
		// The upstream's parent is the gateway's span, not the client's.
		tracing.Inject(pr.Out.Context(), pr.Out.Header)
	}
	p.setIdentity(pr.Out.Header, st.caller)
	if len(st.body) > 0 {
		// ReverseProxy wraps the outbound body so that closing it cannot
		// close the client's; a body the proxy has read needs no such care,
		// and unwrapped, net/http sees it is in memory (inMemory).
		pr.Out.Body = inMemory(st.body)
	}
}

// Close ends the sessions the proxy still holds at the upstream (DELETE,
// best effort, bounded in time), waits for those requests and any
// readiness check, and closes the proxy's idle upstream connections.
// Requests served after Close get 503. Call it after the HTTP server has
// shut down, so that no request is still using a session.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		close(p.closed)
		for _, s := range p.sessions.drain() {
			p.terminate(s)
		}
		p.bgMu.Lock()
		p.bgClosed = true
		p.bgMu.Unlock()
		p.background.Wait()
		if p.ownTransport != nil {
			p.ownTransport.CloseIdleConnections()
		}
	})
}
