package sharedcache

import (
	"context"
	"errors"
	"net"

	"github.com/redis/go-redis/v9"
)

// ErrCircuitOpen is the cause of an UnavailableError returned while Redis is
// being skipped after repeated failures.
var ErrCircuitOpen = errors.New("sharedcache: circuit open: Redis is being skipped after repeated failures")

// ErrClosed is the cause of an UnavailableError returned after Close.
var ErrClosed = errors.New("sharedcache: store closed")

// UnavailableError means Redis could not be used for Op. Only the calls
// that must tell their caller (Revoke, Revocations, Ping) return it; the
// cache calls turn it into a miss.
type UnavailableError struct {
	Op  string
	Err error
}

func (e *UnavailableError) Error() string {
	return "sharedcache: " + e.Op + ": Redis unavailable: " + e.Err.Error()
}
func (e *UnavailableError) Unwrap() error { return e.Err }

// InvalidError means an argument was refused before anything was sent.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "sharedcache: " + e.Reason }

// failure classifies a call's error. tripping is true for what says Redis
// is unreachable or too slow (network errors, timeouts, a closed pool):
// those count towards opening the circuit. A reply from Redis (OOM, a
// READONLY replica, a script error) is an error but proves Redis answers
// quickly, so it does not. A cancellation by the caller (parent context
// done, not our Timeout) is neither.
func failure(parent context.Context, err error) (outcome Outcome, tripping bool) {
	if err == nil || errors.Is(err, redis.Nil) {
		return "", false
	}
	if parent.Err() != nil {
		return OutcomeTimeout, false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return OutcomeError, false
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return OutcomeTimeout, true
	}
	return OutcomeError, true
}
