package introspect

// One place builds and classifies every request the verifier makes to the
// introspection endpoint (RFC 7662 §2.1-2.3), as golang.org/x/oauth2's
// internal/token.go does for token requests: the form, client
// authentication, the single retry, and the pure classification of an
// answer into claims, an outcome and an error.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// retryJitterMin and retryJitterSpan bound the pause before the single
// retry of a connection failure: 50-150 ms.
const (
	retryJitterMin  = 50 * time.Millisecond
	retryJitterSpan = 100 * time.Millisecond
)

// newHTTPClient is the default client: keep-alive connections sized for a
// gateway that sends every cache miss to one authorization server, and no
// redirects.
func newHTTPClient() *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	t.MaxIdleConns = 128
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, CheckRedirect: urlrule.NoRedirects}
}

// basicAuthorization is the Authorization value for client_secret_basic.
// RFC 6749 §2.3.1: the client id and secret are form-urlencoded before being
// joined with ":" and base64-encoded, so a ":" in the id cannot be confused
// with the separator.
func basicAuthorization(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// introspect makes the RFC 7662 §2.1 request, retrying once (after 50-150
// ms) when the connection failed before any response, and returns the
// answer's claims, unchecked.
func (v *Verifier) introspect(ctx context.Context, token string) (*accesstoken.Claims, error) {
	if v.Endpoint() == "" {
		if err := v.Discover(ctx); err != nil {
			return nil, unavailable("introspection endpoint unknown: %w", err)
		}
	}
	endpoint := v.Endpoint()
	if endpoint == "" {
		return nil, unavailable("introspection is not configured: no introspection credentials")
	}

	// §2.1: POST, form-encoded, "token" plus the optional "token_type_hint".
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if v.cfg.AuthMethod == AuthMethodClientSecretPost {
		form.Set("client_id", v.cfg.ClientID)
		form.Set("client_secret", v.cfg.ClientSecret)
	}
	body := form.Encode()
	c, retry, err := v.exchange(ctx, endpoint, body)
	if retry && v.waitRetry(ctx) {
		v.log.InfoContext(ctx, "introspection: retrying after connection failure", "endpoint", endpoint)
		c, _, err = v.exchange(ctx, endpoint, body)
	}
	return c, err
}

// exchange is one HTTP exchange with the introspection endpoint, reported
// to the Observer. retry says the request failed before any response and
// may be tried once more.
func (v *Verifier) exchange(ctx context.Context, endpoint, form string) (c *accesstoken.Claims, retry bool, err error) {
	outcome := OutcomeNetwork
	status := 0
	start := time.Now()
	ctx, span := v.startExchange(ctx, endpoint)
	defer func() {
		v.obs.IntrospectionCall(outcome, time.Since(start))
		endExchange(span, outcome, status)
	}()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return nil, false, unavailable("cannot build introspection request")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if v.basicHeader != "" {
		req.Header.Set("Authorization", v.basicHeader)
	}

	// Whether any byte of a response arrived decides whether a failure
	// may be retried.
	var gotResponse atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { gotResponse.Store(true) },
	}))
	resp, err := v.client.Do(req)
	if err != nil {
		// A *url.Error names the method and endpoint URL, never the body,
		// so it does not contain the token.
		outcome = transportOutcome(ctx, err)
		v.log.WarnContext(ctx, "introspection: authorization server unreachable", "endpoint", endpoint, "err", err)
		return nil, retryable(ctx, err, gotResponse.Load()), &UnavailableError{RetryAfter: DefaultRetryAfter, Err: err}
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	body, tooBig, err := readLimited(resp.Body, v.cfg.MaxResponseBytes)
	v.log.DebugContext(ctx, "introspection", "status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		outcome = transportOutcome(ctx, err)
		return nil, false, unavailable("reading introspection response: %w", err)
	}

	c, outcome, err = classify(resp.StatusCode, resp.Header.Get("Retry-After"), body, tooBig, v.cfg.MaxResponseBytes, time.Now())
	var clientAuth *ClientAuthError
	var unavail *UnavailableError
	switch {
	case resp.StatusCode == http.StatusOK:
		v.authFailure.Store(nil)
		if outcome == OutcomeBadResponse {
			v.log.WarnContext(ctx, "introspection: uninterpretable response", "err", err)
		}
	case errors.As(err, &clientAuth):
		v.authFailure.Store(clientAuth)
		v.log.ErrorContext(ctx, "introspection credentials rejected", "status", clientAuth.StatusCode, "client_id", v.cfg.ClientID)
	case outcome == OutcomeStatus && errors.As(err, &unavail):
		v.log.WarnContext(ctx, "introspection: authorization server unavailable", "status", resp.StatusCode, "retry_after", unavail.RetryAfter)
	case outcome == OutcomeBadResponse:
		v.log.WarnContext(ctx, "introspection: answer not used", "status", resp.StatusCode, "err", err)
	}
	return c, false, err
}

// classify interprets one introspection answer: its status, Retry-After
// header and (bounded) body. It is a pure function of its inputs, so every
// status an authorization server can send is decided in one table.
func classify(status int, retryAfter string, body []byte, tooBig bool, limit int64, now time.Time) (*accesstoken.Claims, Outcome, error) {
	switch {
	case status == http.StatusOK:
		if tooBig {
			return nil, OutcomeBadResponse, unavailable("introspection response larger than %d bytes", limit)
		}
		c, err := parseResponse(body)
		switch err.(type) {
		case nil:
			return c, OutcomeActive, nil
		case *UnavailableError:
			return nil, OutcomeBadResponse, err
		default:
			return nil, OutcomeInactive, err
		}
	case status == http.StatusBadRequest:
		// RFC 7662 §2.3 points to RFC 6749 §5.2 error codes.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		switch e.Error {
		case "invalid_request", "unsupported_token_type", "invalid_token":
			// About the token (or its shape): a verdict, cacheable.
			return nil, OutcomeRejected, &accesstoken.InvalidError{Reason: accesstoken.ReasonRejected, Detail: "authorization server answered " + e.Error}
		case "invalid_client", "unauthorized_client":
			// RFC 6749 §5.2 allows 400 for a client authentication failure.
			return nil, OutcomeClientAuth, &ClientAuthError{StatusCode: status}
		}
		return nil, OutcomeStatus, unavailable("authorization server answered HTTP 400")
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// RFC 7662 §2.1: the protected resource's own authentication failed.
		return nil, OutcomeClientAuth, &ClientAuthError{StatusCode: status}
	case status == http.StatusTooManyRequests || status >= 500:
		return nil, OutcomeStatus, &UnavailableError{RetryAfter: parseRetryAfter(retryAfter, now), Err: fmt.Errorf("authorization server answered HTTP %d", status)}
	case status >= 300 && status < 400:
		return nil, OutcomeBadResponse, unavailable("authorization server answered HTTP %d redirect; redirects are not followed", status)
	default:
		return nil, OutcomeStatus, unavailable("authorization server answered HTTP %d", status)
	}
}

// transportOutcome classifies a failed exchange as a timeout or a network
// failure.
func transportOutcome(ctx context.Context, err error) Outcome {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return OutcomeTimeout
	}
	return OutcomeNetwork
}

// readLimited reads at most limit bytes of r; tooBig reports that more
// were available. The body is never read unbounded.
func readLimited(r io.Reader, limit int64) (body []byte, tooBig bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return body[:limit], true, nil
	}
	return body, false, nil
}

// retryable reports whether a failed exchange may be tried once more: no
// byte of a response arrived (the connection could not be made, or was
// refused, reset or closed first). A timeout is not retried (the request
// may have been processed and the time budget is spent), nor a certificate
// failure (it would fail again), nor any HTTP status.
func retryable(ctx context.Context, err error, gotResponse bool) bool {
	if gotResponse || ctx.Err() != nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	if errors.As(err, &cve) || errors.As(err, &rhe) {
		return false
	}
	return true
}

// waitRetry pauses 50-150 ms before the retry. It returns false, without
// waiting, when the pause would not fit before ctx's deadline, or when ctx
// ends during it.
func (v *Verifier) waitRetry(ctx context.Context) bool {
	jitter := retryJitterMin + rand.N(retryJitterSpan)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= jitter {
		return false
	}
	if v.beforeRetry != nil {
		v.beforeRetry()
	}
	t := time.NewTimer(jitter)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
