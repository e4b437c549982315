package gateway

// Traces (Config.TracerProvider; none when it is nil). One server span per
// request, continuing the caller's W3C traceparent, named and described by
// the OpenTelemetry HTTP semantic conventions (http.request.method,
// http.route, http.response.status_code), with what the gateway decided:
// the authentication outcome, the tool and operation (the policy's
// labels, bounded like the metrics' labels) and the caller's hashed
// subject (redact.Subject, as in the log line; enduser.pseudo.id). Never
// a token, a raw subject or a client id.
//
// Each tools/call the MCP server runs gets a child span (the MCP semantic
// conventions' "tools/call {tool}", gen_ai.tool.name, error.type
// "tool_error" for an isError result). The verifier and the proxy record
// their own children (introspect, jwtaccess, proxy).
//
// With tracing off nothing here runs: no span is started, so the hot path
// allocates nothing for it (an OpenTelemetry no-op tracer would still
// allocate a context per span).

import (
	"context"
	"net/http"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/internal/redact"
	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// tracerName is the instrumentation scope of the gateway's spans.
const tracerName = "github.com/mcp-gateway/mcp-gateway/gateway"

// Span attributes of the gateway's own vocabulary. The MCP ones follow
// the OpenTelemetry semantic conventions for MCP and GenAI (development
// status: the names may still change upstream).
const (
	attrAuth       = attribute.Key("mcp_gateway.auth")      // an AuthOutcome
	attrOperation  = attribute.Key("mcp_gateway.operation") // the value of the argument the policy reads, as labelled
	attrMCPMethod  = attribute.Key("mcp.method.name")
	attrToolName   = attribute.Key("gen_ai.tool.name")
	attrGenAIOp    = attribute.Key("gen_ai.operation.name")
	genAIExecTool  = "execute_tool"
	errorToolError = "tool_error"
	errorProtocol  = "protocol_error"
)

// spanMethod is the method a span is named after: a standard one, or
// "_OTHER" (HTTP semantic conventions: a client must not be able to choose
// span names and attribute values).
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// startRequest starts the request's server span, continuing the trace of
// the caller's traceparent, and makes the request's traceparent header
// the span's own: the SDK hands a handler the headers of its request
// (RequestExtra.Header) but, in stateful mode, runs it in the session's
// context, so that header is how a tool call finds the request it belongs
// to. route is the matched route pattern ("" when none matched).
func (g *Gateway) startRequest(r *http.Request, route string) (context.Context, trace.Span) {
	method := spanMethod(r.Method)
	name := method
	if route != "" {
		name += " " + route
	}
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(method)}
	if route != "" {
		attrs = append(attrs, semconv.HTTPRoute(route))
	}
	ctx, span := g.tracer.Start(tracing.Extract(r.Context(), r.Header), name,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	tracing.Inject(ctx, r.Header)
	return ctx, span
}

// endRequest records what the gateway decided about the request on its
// span and ends it. A 5xx is an error of the server (HTTP semantic
// conventions: a 4xx is the client's, not the server span's).
func endRequest(span trace.Span, status int, st *reqState, aborted bool) {
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, semconv.HTTPResponseStatusCode(status))
	if st.auth != "" {
		attrs = append(attrs, attrAuth.String(string(st.auth)))
	}
	if st.ti != nil && st.ti.UserID != "" {
		attrs = append(attrs, semconv.EnduserPseudoID(redact.Subject(st.ti.UserID)))
	}
	if st.tool != "" {
		attrs = append(attrs, attrToolName.String(st.tool))
		if st.op != "" {
			attrs = append(attrs, attrOperation.String(st.op))
		}
	}
	if aborted {
		attrs = append(attrs, semconv.ErrorTypeKey.String("client_gone"))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// traceToolCalls is MCP server middleware recording a span per tools/call,
// a child of the request's span (whose context startRequest put in the
// request's traceparent). The tool and operation are the policy's labels,
// as in the metrics.
func traceToolCalls(tracer trace.Tracer, policy *scopes.Policy) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != rpcpeek.MethodToolsCall {
				return next(ctx, method, req)
			}
			if ex := req.GetExtra(); ex != nil && ex.Header != nil {
				ctx = tracing.Extract(ctx, ex.Header)
			}
			tool, op := callLabels(policy, req, metrics.Other)
			attrs := []attribute.KeyValue{
				attrMCPMethod.String(method), attrToolName.String(tool), attrGenAIOp.String(genAIExecTool),
			}
			if op != "" {
				attrs = append(attrs, attrOperation.String(op))
			}
			ctx, span := tracer.Start(ctx, method+" "+tool, trace.WithAttributes(attrs...))
			defer span.End()
			res, err := next(ctx, method, req)
			switch r, ok := res.(*mcp.CallToolResult); {
			case err != nil:
				span.SetAttributes(semconv.ErrorTypeKey.String(errorProtocol))
				span.SetStatus(codes.Error, errorProtocol)
			case ok && r != nil && r.IsError:
				span.SetAttributes(semconv.ErrorTypeKey.String(errorToolError))
				span.SetStatus(codes.Error, errorToolError)
			}
			return res, err
		}
	}
}
