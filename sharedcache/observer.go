package sharedcache

import "time"

// Op names an operation of the Store, as reported to Observer.Call.
type Op string

// Operations reported to Observer.Call.
const (
	OpGet         Op = "get"
	OpSet         Op = "set"
	OpLock        Op = "lock"
	OpAwait       Op = "await"
	OpFill        Op = "fill"
	OpRelease     Op = "release"
	OpRevoke      Op = "revoke"
	OpRevocations Op = "revocations"
	OpPing        Op = "ping"
)

// Outcome says how an operation ended, as reported to Observer.Call.
type Outcome string

// Outcomes reported to Observer.Call.
const (
	OutcomeHit     Outcome = "hit"     // Get, Await: a value was found
	OutcomeMiss    Outcome = "miss"    // Get, Await: none (Await: within maxWait)
	OutcomeOK      Outcome = "ok"      // a write or read succeeded
	OutcomeWon     Outcome = "won"     // Lock: this caller holds the lock
	OutcomeHeld    Outcome = "held"    // Lock: another caller holds it
	OutcomeFilled  Outcome = "filled"  // Lock: the value is already there
	OutcomeTimeout Outcome = "timeout" // the call ran out of Timeout
	OutcomeError   Outcome = "error"   // Redis failed or refused (connection, OOM, ...)
	OutcomeSkipped Outcome = "skipped" // not attempted: the circuit is open or the Store closed
	OutcomeInvalid Outcome = "invalid" // a value too large or not in our format
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
