package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrUnavailable is wrapped by the errors of Ready and Probe that say the
// upstream cannot be used.
var ErrUnavailable = errors.New("upstream MCP server unavailable")

// ErrCredentialsRejected is wrapped, besides ErrUnavailable, when the
// upstream answered but refused the gateway's own credential
// (UPSTREAM_AUTHORIZATION) with 401 or 407: a configuration problem, not
// an outage.
var ErrCredentialsRejected = errors.New("the upstream refused the gateway's credentials")

// readyTTL is how long Ready reuses an answer: /readyz may be polled
// often by several checkers, and the upstream need not see each poll.
const readyTTL = 2 * time.Second

// Ready reports whether the upstream answers HTTP on its MCP endpoint, for
// /readyz. Any answer but a 5xx or a refusal of the gateway's credential
// (401, 407) counts: an MCP endpoint answers a bare GET with 200, 400 or
// 405 depending on its transport options. The answer is cached for
// readyTTL, and concurrent calls share one check, which a caller going
// away does not cancel (Close waits for it).
func (p *Proxy) Ready(ctx context.Context) error {
	p.readyMu.Lock()
	if !p.readyAt.IsZero() && p.now().Sub(p.readyAt) < readyTTL {
		err := p.readyErr
		p.readyMu.Unlock()
		return err
	}
	if p.readyDone == nil {
		if !p.track() {
			p.readyMu.Unlock()
			return fmt.Errorf("%w: the proxy is closed", ErrUnavailable)
		}
		done := make(chan struct{})
		p.readyDone = done
		go func() {
			defer p.background.Done()
			err := p.checkReachable(context.Background())
			p.readyMu.Lock()
			p.readyAt, p.readyErr, p.readyDone = p.now(), err, nil
			p.readyMu.Unlock()
			close(done)
		}()
	}
	done := p.readyDone
	p.readyMu.Unlock()
	select {
	case <-done:
		p.readyMu.Lock()
		defer p.readyMu.Unlock()
		return p.readyErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkReachable sends one GET to the MCP endpoint, as a client opening
// its event stream without a session would, and closes the answer as soon
// as its status line has arrived.
func (p *Proxy) checkReachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(p.timeout, 10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.upstream.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if p.authorization != nil {
		req.Header["Authorization"] = p.authorization
	}
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: no answer from %s within %s", ErrUnavailable, safeURL(p.upstream), min(p.timeout, 10*time.Second))
		}
		return fmt.Errorf("%w: %s", ErrUnavailable, p.scrub(err.Error()))
	}
	// Not drained: an upstream may hold a GET open as an event stream.
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized || s == http.StatusProxyAuthRequired:
		return fmt.Errorf("%w: %w: %s answered HTTP %d; check UPSTREAM_AUTHORIZATION", ErrUnavailable, ErrCredentialsRejected, safeURL(p.upstream), s)
	case s >= 500:
		return fmt.Errorf("%w: %s answered HTTP %d", ErrUnavailable, safeURL(p.upstream), s)
	}
	return nil
}
