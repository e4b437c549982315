package tracing

// W3C Trace Context (Recommendation, 23 November 2021) over HTTP: the
// traceparent and tracestate headers, and nothing else. Baggage is not
// propagated: it is data a client chose, and an upstream must not receive
// it as if the gateway had vouched for it.

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
)

// The W3C Trace Context headers, in canonical form.
const (
	HeaderTraceparent = "Traceparent"
	HeaderTracestate  = "Tracestate"
)

// Extract returns ctx carrying the remote span context of h's traceparent
// (and its tracestate), so that a span started from it continues the
// caller's trace (§3.2, §3.3). A missing or malformed traceparent is
// ignored (§4.3: the vendor then starts a new trace); ctx is returned as
// it is.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject replaces h's traceparent and tracestate with ctx's span context:
// the next hop's parent is the gateway's span, not whatever the client
// sent (§3.2: a participant in the trace sends its own parent-id). With
// no valid span context in ctx both headers are removed.
func Inject(ctx context.Context, h http.Header) {
	h.Del(HeaderTraceparent)
	h.Del(HeaderTracestate)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}
