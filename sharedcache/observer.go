package sharedcache

import "time"

// Op names an operation of the Store, as reported to Observer.Call.
type Op string

// Operations reported to Observer.Call.
const (
	OpGet         Op = "get"
	OpSet            = "set"
	OpLock           = "lock"
	OpAwait          = "await"
	OpFill           = "fill"
	OpRelease        = "release"
	OpRevoke         = "revoke"
	OpRevocations    = "revocations"
	OpPing           = "ping"
)

// Outcome says how an operation ended, as reported to Observer.Call.
type Outcome string

// Outcomes reported to Observer.Call.
const (
	OutcomeHit     Outcome = "hit"     // Get, Await: a value was found
	OutcomeMiss            = "miss"    // Get, Await: none (Await: within maxWait)
	OutcomeOK              = "ok"      // a write or read succeeded
	OutcomeWon             = "won"     // Lock: this caller holds the lock
	OutcomeHeld            = "held"    // Lock: another caller holds it
	OutcomeFilled          = "filled"  // Lock: the value is already there
	OutcomeTimeout         = "timeout" // the call ran out of Timeout
	OutcomeError           = "error"   // Redis failed or refused (connection, OOM, ...)
	OutcomeSkipped         = "skipped" // not attempted: the circuit is open or the Store closed
	OutcomeInvalid         = "invalid" // a value too large or not in our format
)

// AllOps lists every Op in a stable order (a metric's label set).
func AllOps() []Op {
	return []Op{OpGet, OpSet, OpLock, OpAwait, OpFill, OpRelease, OpRevoke, OpRevocations, OpPing}
}

// AllOutcomes lists every Outcome in a stable order (a metric's label set).
func AllOutcomes() []Outcome {
	return []Outcome{OutcomeHit, OutcomeMiss, OutcomeOK, OutcomeWon, OutcomeHeld, OutcomeFilled,
		OutcomeTimeout, OutcomeError, OutcomeSkipped, OutcomeInvalid}
}

// Observer receives what the Store does, for metrics. Implementations must
// be safe for concurrent use and cheap. Nothing passed identifies a token.
type Observer interface {
	// Call reports one operation (Op*), its outcome (Outcome*) and how
	// long it took (0 when skipped).
	Call(op Op, outcome Outcome, d time.Duration)
	// Circuit reports the circuit opening (true: Redis is being skipped)
	// or closing (false: Redis answers again). The gateway exports it as a
	// gauge so that "Redis unavailable" is visible while /readyz stays
	// ready.
	Circuit(open bool)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Call(Op, Outcome, time.Duration) {}
func (NopObserver) Circuit(bool)                    {}
