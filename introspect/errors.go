package introspect

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A refused token is an *accesstoken.InvalidError (answer 401). The errors
// here are the verifier's other outcomes: it could not find out (503), its
// own credentials were refused (503, and a configuration error), or the
// client sent too many unknown tokens (429).

// UnavailableError means the token could not be checked: the authorization
// server was unreachable, slow, overloaded, or answered something we cannot
// interpret. The token may well be valid, so a resource server should answer
// 503 with Retry-After rather than 401 (a 401 would send clients back
// through login for nothing). It is never cached.
type UnavailableError struct {
	// RetryAfter is how long the caller should suggest clients wait: the
	// authorization server's Retry-After when it sent one (capped at
	// maxRetryAfter), else DefaultRetryAfter.
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return "introspection unavailable"
	}
	return "introspection unavailable: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ErrOverloaded is wrapped by the *UnavailableError returned when a cache
// miss could not get one of Config.MaxConcurrency introspection slots in
// time: the gateway sheds load instead of queueing behind a slow
// authorization server.
var ErrOverloaded = errors.New("introspection overloaded")

// ClientAuthError means the authorization server refused the gateway's own
// client credentials (HTTP 401/403, or 400 invalid_client). It is a
// configuration error, not a problem with the caller's token, so it does not
// unwrap to auth.ErrInvalidToken. Until a later introspection succeeds,
// Verifier.Ready reports it.
type ClientAuthError struct {
	StatusCode int
}

func (e *ClientAuthError) Error() string {
	return "introspection: authorization server rejected the gateway's client credentials (HTTP " +
		strconv.Itoa(e.StatusCode) + ")"
}

// RateLimitError means a client sent more unknown tokens (cache misses) than
// Config.ClientRate allows. It is about the client's behaviour, not about
// the token, so it does not unwrap to auth.ErrInvalidToken; a resource
// server should answer 429 with Retry-After. It is never cached.
type RateLimitError struct {
	// RetryAfter is when the client's bucket holds a token again, rounded up
	// to a whole second (at least 1s).
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string { return "too many unknown tokens from this client" }

const (
	// DefaultRetryAfter is suggested when the authorization server gave no
	// Retry-After: long enough not to hammer it, short enough that a blip
	// costs users little.
	DefaultRetryAfter = 5 * time.Second
	// maxRetryAfter caps what a (possibly misbehaving) authorization server
	// can make us tell clients.
	maxRetryAfter = 60 * time.Second
)

// unavailable builds an *UnavailableError with the default retry delay.
func unavailable(format string, args ...any) *UnavailableError {
	return &UnavailableError{RetryAfter: DefaultRetryAfter, Err: fmt.Errorf(format, args...)}
}

// parseRetryAfter reads an RFC 9110 §10.2.3 Retry-After value: either
// delay-seconds or an HTTP-date. Missing, unparsable or non-positive values
// give DefaultRetryAfter; large ones are capped at maxRetryAfter.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return DefaultRetryAfter
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	} else {
		return DefaultRetryAfter
	}
	switch {
	case d <= 0:
		return DefaultRetryAfter
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d
}
