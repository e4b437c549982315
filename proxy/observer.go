package proxy

// Failure is why the proxy could not give the client the upstream's
// answer, as counted (upstream_failures_total{kind}). It names the
// upstream's fault, never the client's: a client going away, a body too
// large or a limit reached is no upstream failure.
type Failure string

// The failures, one per row of the package documentation's table.
const (
	// FailureUnreachable: connection refused or reset, DNS, TLS, or an
	// answer cut short before its headers (502).
	FailureUnreachable Failure = "unreachable"
	// FailureTimeout: no status line within Timeout (504).
	FailureTimeout Failure = "timeout"
	// FailureUnavailable: the upstream answered 503 (503).
	FailureUnavailable Failure = "unavailable"
	// FailureUpstreamTimeout: the upstream answered 504 (504).
	FailureUpstreamTimeout Failure = "upstream_timeout"
	// FailureBadStatus: the upstream answered another 5xx, or a 3xx (502).
	FailureBadStatus Failure = "bad_status"
	// FailureCredentials: the upstream refused the gateway's own
	// credential, UPSTREAM_AUTHORIZATION (401, 407; the client gets 502).
	FailureCredentials Failure = "credentials_rejected"
	// FailureUnfilterable: a tools/list answer could not be filtered
	// (compressed, too large, not JSON): refused rather than passed (502).
	FailureUnfilterable Failure = "unfilterable_answer"
	// FailureSession: the upstream issued a session id the proxy cannot
	// bind (invalid, or another caller's) (502).
	FailureSession Failure = "bad_session"
)

// AllFailures lists every Failure in a stable order: the label set of
// upstream_failures_total.
func AllFailures() []Failure {
	return []Failure{FailureUnreachable, FailureTimeout, FailureUnavailable, FailureUpstreamTimeout,
		FailureBadStatus, FailureCredentials, FailureUnfilterable, FailureSession}
}

// Observer is told of the proxy's failures to get a usable answer from
// the upstream. *metrics.Metrics implements it. Calls come from request
// goroutines, concurrently.
type Observer interface {
	UpstreamFailure(kind Failure)
}

// Stats are the proxy's bounded resources in use now.
type Stats struct {
	// Sessions bound to callers, and initialize requests admitted but not
	// yet answered.
	Sessions int
	// Streams open: GET event streams and event-stream answers to POST.
	Streams int
}

// Stats returns the sessions and streams in use, for gauges read at
// scrape time.
func (p *Proxy) Stats() Stats {
	var s Stats
	p.sessions.mu.Lock()
	s.Sessions = len(p.sessions.byID) + p.sessions.pendingAll
	p.sessions.mu.Unlock()
	p.streams.mu.Lock()
	s.Streams = p.streams.all
	p.streams.mu.Unlock()
	return s
}

// failed reports a failure to the Observer and, for the request's span
// (trace.go), on st (nil when there is no request).
func (p *Proxy) failed(st *request, kind Failure) {
	if st != nil {
		st.failure = kind
	}
	if p.observer != nil {
		p.observer.UpstreamFailure(kind)
	}
}
