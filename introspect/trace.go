package introspect

// Traces (Config.TracerProvider; none when it is nil): a span per Verify,
// a child of the caller's (the gateway's request span), saying whether the
// cache answered, which validator decided on a miss, and the verdict; a
// client span per HTTP exchange with the introspection endpoint, with its
// Outcome; a span for the shared tier's part of a miss (its Redis calls,
// and what they gave); and, through jwtaccess, a span per JWKS fetch. Nothing in a
// span identifies a token or its owner: no token, digest, subject or
// client id.
//
// With tracing off no span is started and the hot path (a cache hit)
// allocates nothing: every helper below returns at once on a nil tracer,
// and takes no variadic arguments a caller would have to allocate.

import (
	"context"
	"errors"
	"net/url"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
)

// tracerName is the instrumentation scope of the verifier's spans.
const tracerName = "github.com/mcp-gateway/mcp-gateway/introspect"

// Span names and attributes.
const (
	spanVerify     = "verify token"
	spanIntrospect = "introspect"
	spanShared     = "shared cache"

	attrCache     = attribute.Key("mcp_gateway.cache")     // "hit" or "miss"
	attrValidator = attribute.Key("mcp_gateway.validator") // a Validator, on a miss
	attrVerdict   = attribute.Key("mcp_gateway.verdict")   // Verdict
	attrOutcome   = attribute.Key("mcp_gateway.introspection.outcome")
	attrShared    = attribute.Key("mcp_gateway.shared_cache") // what the shared tier gave a miss
)

// Verdict names how a Verify ended, for a span: "ok", a refused token's
// accesstoken.Reason, or one of the verdicts below.
const (
	VerdictOK          = "ok"
	VerdictUnavailable = "unavailable"  // *UnavailableError: 503
	VerdictClientAuth  = "client_auth"  // *ClientAuthError: the gateway's credentials were refused
	VerdictRateLimited = "rate_limited" // *RateLimitError: 429
)

// verdictOf names err, the result of a Verify.
func verdictOf(err error) string {
	var invalid *accesstoken.InvalidError
	var limited *RateLimitError
	var clientAuth *ClientAuthError
	switch {
	case err == nil:
		return VerdictOK
	case errors.As(err, &invalid):
		return string(invalid.Reason)
	case errors.As(err, &limited):
		return VerdictRateLimited
	case errors.As(err, &clientAuth):
		return VerdictClientAuth
	}
	return VerdictUnavailable
}

// verifyTraced is Verify inside a span.
func (v *Verifier) verifyTraced(ctx context.Context, token string) (*auth.TokenInfo, error) {
	ctx, span := v.tracer.Start(ctx, spanVerify)
	defer span.End()
	info, err := v.verify(ctx, token)
	vd := verdictOf(err)
	span.SetAttributes(attrVerdict.String(vd))
	if vd == VerdictUnavailable || vd == VerdictClientAuth {
		// No verdict could be had: the gateway's failure, not the
		// token's.
		span.SetStatus(codes.Error, vd)
	}
	return info, err
}

// traceCache records on the verify span whether the cache answered.
func (v *Verifier) traceCache(ctx context.Context, hit bool) {
	if v.tracer == nil {
		return
	}
	s := "miss"
	if hit {
		s = "hit"
	}
	trace.SpanFromContext(ctx).SetAttributes(attrCache.String(s))
}

// traceValidator records on the verify span which validator decided.
func (v *Verifier) traceValidator(ctx context.Context, by Validator) {
	if v.tracer == nil {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(attrValidator.String(string(by)))
}

// startShared starts the span of the shared tier's part of a miss (its
// Redis calls: the value, the lock, the wait); end ends it with what the
// tier gave: "answer" (another machine's verdict), "lock_won" (this
// machine verifies and shares), "unavailable" (Redis failed: verify
// alone) or "verify_alone" (no answer in time, or the lock could not be
// had).
func (v *Verifier) startShared(ctx context.Context, f *flight) (context.Context, func()) {
	ctx, span := v.tracer.Start(ctx, spanShared, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.DBSystemNameRedis))
	return ctx, func() {
		result := "verify_alone"
		switch {
		case f.done:
			result = "answer"
		case f.lease != nil:
			result = "lock_won"
		case f.skip:
			result = "unavailable"
			span.SetStatus(codes.Error, result)
		}
		span.SetAttributes(attrShared.String(result))
		span.End()
	}
}

// startExchange starts the client span of one introspection exchange;
// nil when tracing is off.
func (v *Verifier) startExchange(ctx context.Context, endpoint string) (context.Context, trace.Span) {
	if v.tracer == nil {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodPost}
	if u, err := url.Parse(endpoint); err == nil {
		attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
	}
	return v.tracer.Start(ctx, spanIntrospect, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endExchange ends an exchange's span with its outcome and status (0: no
// response).
func endExchange(span trace.Span, outcome Outcome, status int) {
	if span == nil {
		return
	}
	span.SetAttributes(attrOutcome.String(string(outcome)))
	if status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	switch outcome {
	case OutcomeActive, OutcomeInactive, OutcomeRejected:
		// An answer about the token.
	default:
		span.SetStatus(codes.Error, string(outcome))
	}
	span.End()
}
