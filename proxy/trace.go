package proxy

// Traces (Config.TracerProvider; none when it is nil): a client span per
// forwarded request, a child of the gateway's request span, lasting until
// the answer (a stream included) has been passed on; the upstream receives
// that span's context as its traceparent (W3C Trace Context §3.2: the
// gateway is a participant in the trace, so the upstream's parent is the
// gateway's span, never whatever the client sent). With tracing off the
// client's traceparent and tracestate are forwarded as they came
// (headers.go), and nothing here runs.

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the proxy's spans.
const tracerName = "github.com/mcp-gateway/mcp-gateway/proxy"

// startUpstream starts the span of one forwarded request.
func (p *Proxy) startUpstream(ctx context.Context, method string) (context.Context, trace.Span) {
	m := method
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		m = "_OTHER"
	}
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(m), semconv.ServerAddress(p.upstream.Hostname())}
	if port := p.upstream.Port(); port != "" {
		if n, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(n))
		}
	}
	return p.tracer.Start(ctx, m+" upstream", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endUpstream ends the span with the upstream's status and, when the
// client did not get the upstream's answer through the upstream's fault,
// the Failure (error.type), as upstream_failures_total counts it.
func endUpstream(span trace.Span, st *request) {
	if st.upstreamStatus != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(st.upstreamStatus))
	}
	if st.failure != "" {
		span.SetAttributes(semconv.ErrorTypeKey.String(string(st.failure)))
		span.SetStatus(codes.Error, string(st.failure))
	}
	span.End()
}
