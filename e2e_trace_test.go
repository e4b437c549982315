package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mcp-gateway/mcp-gateway/internal/redact"
	"github.com/mcp-gateway/mcp-gateway/internal/tracing/tracingtest"
)

// The traceparent a client sends (W3C Trace Context §3.2): the gateway's
// request span must continue this trace, under this parent.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	clientParent  = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// logRecords are the gateway's JSON log lines.
func logRecords(t *testing.T, g *gatewayUnderTest) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(g.Logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// requestLog is the request log line of the request whose X-Request-Id is
// id.
func requestLog(t *testing.T, g *gatewayUnderTest, id string) map[string]any {
	t.Helper()
	for _, m := range logRecords(t, g) {
		if m["msg"] == "request" && m["request_id"] == id {
			return m
		}
	}
	t.Fatalf("no request log line for %s:\n%s", id, g.Logs)
	return nil
}

func withHeaders(h http.Header, kv ...string) http.Header {
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// oneSpan is the one span named name among spans, or fails.
func oneSpan(t *testing.T, spans []tracingtest.Span, name string) tracingtest.Span {
	t.Helper()
	var found []tracingtest.Span
	for _, s := range spans {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1; all: %s", len(found), name, spanNames(spans))
	}
	return found[0]
}

func spanNames(spans []tracingtest.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s %s parent %s: %v", s.SpanID, s.Name, s.ParentSpanID, s.Attributes)
	}
	return b.String()
}

// inTrace are the spans of one trace.
func inTrace(spans []tracingtest.Span, traceID string) []tracingtest.Span {
	var out []tracingtest.Span
	for _, s := range spans {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

func wantAttrs(t *testing.T, s tracingtest.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got := s.Attributes[k]; got != v {
			t.Errorf("span %q: %s = %#v, want %#v (all: %v)", s.Name, k, got, v, s.Attributes)
		}
	}
}

// A request through the whole gateway, tracing on: the request span
// continues the client's trace with what the gateway decided, the token's
// verification and introspection and the tool call are its children, the
// request log line names the trace, and nothing exported identifies the
// token, its subject or its client.
func TestTracesOfARequest(t *testing.T) {
	rcv := tracingtest.New(t)
	const subject = "subject-7d1f3e-alice@example.com"
	as, g := externalAS(t, map[string]string{
		"LOG_FORMAT":                  "json",
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.Endpoint(),
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-collector-key=collector-secret-value",
		"OTEL_SERVICE_NAME":           "gateway-under-test",
	})
	tok := as.Issue(subject, []string{"op:add"}, g.Resource, time.Hour)

	// A tools/call the token may make, continuing the client's trace.
	r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), withHeaders(bearer(tok), "Traceparent", clientParent, "Tracestate", "client=1", "X-Request-Id", "traced-1"))
	if r.Status != http.StatusOK {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	// The same token again: a cache hit. Then one the token may not make
	// (step-up), with no traceparent: a trace of its own.
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), withHeaders(bearer(tok), "X-Request-Id", "traced-2")); r.Status != http.StatusOK {
		t.Fatalf("add again: %d %s", r.Status, r.Body)
	}
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "divide"), withHeaders(bearer(tok), "X-Request-Id", "traced-3")); r.Status != http.StatusForbidden {
		t.Fatalf("divide: %d %s", r.Status, r.Body)
	}
	g.Stop(t) // flushes the spans

	spans := rcv.Spans()
	first := inTrace(spans, clientTraceID)
	req := oneSpan(t, first, "POST /mcp")
	if req.ParentSpanID != clientSpanID || req.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("request span: parent %q kind %v, want the client's %s, server", req.ParentSpanID, req.Kind, clientSpanID)
	}
	if !strings.Contains(req.TraceState, "client=1") {
		t.Errorf("tracestate %q: the client's entry is lost", req.TraceState)
	}
	wantAttrs(t, req, map[string]any{
		"http.request.method":       "POST",
		"http.route":                "/mcp",
		"http.response.status_code": int64(200),
		"mcp_gateway.auth":          "ok",
		"gen_ai.tool.name":          "calculator",
		"mcp_gateway.operation":     "add",
		"enduser.pseudo.id":         redact.Subject(subject),
	})
	if req.Resource["service.name"] != "gateway-under-test" {
		t.Errorf("resource %v", req.Resource)
	}

	verify := oneSpan(t, first, "verify token")
	if verify.ParentSpanID != req.SpanID {
		t.Errorf("verify span's parent %s, want the request span %s", verify.ParentSpanID, req.SpanID)
	}
	wantAttrs(t, verify, map[string]any{"mcp_gateway.cache": "miss", "mcp_gateway.validator": "introspection", "mcp_gateway.verdict": "ok"})
	call := oneSpan(t, first, "introspect")
	if call.ParentSpanID != verify.SpanID || call.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("introspection span: parent %s kind %v", call.ParentSpanID, call.Kind)
	}
	wantAttrs(t, call, map[string]any{"mcp_gateway.introspection.outcome": "active", "http.response.status_code": int64(200)})
	tool := oneSpan(t, first, "tools/call calculator")
	if tool.ParentSpanID != req.SpanID {
		t.Errorf("tool span's parent %s, want the request span %s", tool.ParentSpanID, req.SpanID)
	}
	wantAttrs(t, tool, map[string]any{"gen_ai.tool.name": "calculator", "mcp_gateway.operation": "add", "mcp.method.name": "tools/call"})

	// The log line of the request names its trace and span.
	line := requestLog(t, g, "traced-1")
	if line["trace_id"] != clientTraceID || line["span_id"] != req.SpanID {
		t.Errorf("request log line %v: want trace_id %s span_id %s", line, clientTraceID, req.SpanID)
	}

	// The cache hit: a trace of its own, the verify span says so.
	line2 := requestLog(t, g, "traced-2")
	second := inTrace(spans, fmt.Sprint(line2["trace_id"]))
	if len(second) == 0 {
		t.Fatalf("no spans for the second request's trace %v", line2["trace_id"])
	}
	req2 := oneSpan(t, second, "POST /mcp")
	if req2.ParentSpanID != "" {
		t.Errorf("a request without a traceparent has parent %q", req2.ParentSpanID)
	}
	wantAttrs(t, oneSpan(t, second, "verify token"), map[string]any{"mcp_gateway.cache": "hit", "mcp_gateway.verdict": "ok"})

	// The step-up refusal.
	third := inTrace(spans, fmt.Sprint(requestLog(t, g, "traced-3")["trace_id"]))
	wantAttrs(t, oneSpan(t, third, "POST /mcp"), map[string]any{
		"http.response.status_code": int64(403), "mcp_gateway.auth": "insufficient_scope", "mcp_gateway.operation": "divide",
	})

	// Byte by byte: no token, raw subject, client id or secret.
	raw := rcv.Raw()
	for _, secret := range []string{tok, subject, "alice@example.com", "test-client", as.ClientSecret, "collector-secret-value"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the exported spans hold %q", secret)
		}
	}
	// The collector's key went to the collector, and only in a header.
	for _, q := range rcv.Requests() {
		if q.Header.Get("X-Collector-Key") != "collector-secret-value" {
			t.Errorf("export without the configured header: %v", q.Header)
		}
	}
	if strings.Contains(g.Logs.String(), "collector-secret-value") {
		t.Error("the logs hold OTEL_EXPORTER_OTLP_HEADERS")
	}
}

// Tracing is off unless an endpoint is configured: a gateway given every
// other OTEL_* variable exports nothing and names no trace in its logs,
// whatever traceparent a client sends.
func TestTracingOffByDefault(t *testing.T) {
	rcv := tracingtest.New(t)
	as, g := externalAS(t, map[string]string{
		"LOG_FORMAT":                 "json",
		"OTEL_SERVICE_NAME":          "unused",
		"OTEL_EXPORTER_OTLP_HEADERS": "x-key=v",
		"OTEL_TRACES_SAMPLER":        "always_on",
	})
	tok := as.Issue("bob", []string{"op:add"}, g.Resource, time.Hour)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), withHeaders(bearer(tok), "Traceparent", clientParent, "X-Request-Id", "untraced")); r.Status != http.StatusOK {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	g.Stop(t)
	if line := requestLog(t, g, "untraced"); line["trace_id"] != nil || line["span_id"] != nil {
		t.Errorf("tracing off, the log line names a trace: %v", line)
	}
	if strings.Contains(g.Logs.String(), "tracing on") {
		t.Errorf("tracing off, the logs say it is on:\n%s", g.Logs)
	}
	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("tracing off, %d exports", n)
	}
}

// OTEL_SDK_DISABLED=true turns tracing off even with an endpoint, and an
// invalid OTEL_* value is a configuration error like any other.
func TestTracingConfiguration(t *testing.T) {
	rcv := tracingtest.New(t)
	as, g := externalAS(t, map[string]string{
		"LOG_FORMAT":                  "json",
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.Endpoint(),
		"OTEL_SDK_DISABLED":           "true",
	})
	tok := as.Issue("carol", []string{"op:add"}, g.Resource, time.Hour)
	if r := post(t, g.MCP(), fmt.Sprintf(callAdd, "add"), bearer(tok)); r.Status != http.StatusOK {
		t.Fatalf("add: %d", r.Status)
	}
	g.Stop(t)
	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("OTEL_SDK_DISABLED=true, %d exports", n)
	}

	var stderr bytes.Buffer
	err := run(t.Context(), nil, envOf(map[string]string{
		"PORT": "0", "HOST": "127.0.0.1",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example.com:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":  "api-key=do-not-print-me",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	}), &bytes.Buffer{}, &stderr, nil)
	if err == nil {
		t.Fatal("an invalid tracing configuration was accepted")
	}
	msg := err.Error() + stderr.String()
	for _, want := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported", "OTEL_EXPORTER_OTLP_HEADERS would be sent in clear text"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "do-not-print-me") {
		t.Errorf("the error quotes a header value: %s", msg)
	}
}

// In stateful mode the SDK runs a tool in its session's context, not its
// request's: each tool call's span is still the child of the request that
// carried it, not of the session's first request.
func TestToolSpansStateful(t *testing.T) {
	rcv := tracingtest.New(t)
	as, g := externalAS(t, map[string]string{
		"MCP_STATELESS":               "false",
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.Endpoint(),
	})
	cs := mcpClient(t, g, as.Issue("dave", []string{"op"}, g.Resource, time.Hour))
	for _, op := range []string{"add", "multiply"} {
		if res, err := calc(cs, op, 2, 3); err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", op, err, res)
		}
	}
	_ = cs.Close()
	g.Stop(t)

	spans := rcv.Spans()
	byID := map[string]tracingtest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	parents := map[string]string{}
	for _, s := range spans {
		if s.Name != "tools/call calculator" {
			continue
		}
		p, ok := byID[s.ParentSpanID]
		if !ok || p.Name != "POST /mcp" || p.TraceID != s.TraceID {
			t.Fatalf("tool span %v: parent %+v is not a request span", s.Attributes, p)
		}
		parents[s.Attributes["mcp_gateway.operation"].(string)] = p.SpanID
		if p.Attributes["mcp_gateway.operation"] != s.Attributes["mcp_gateway.operation"] {
			t.Errorf("tool span for %v under the request span for %v", s.Attributes["mcp_gateway.operation"], p.Attributes["mcp_gateway.operation"])
		}
	}
	if len(parents) != 2 || parents["add"] == parents["multiply"] {
		t.Errorf("tool spans' parents %v: want one request span each%s", parents, spanNames(spans))
	}
}

// In proxy mode every upstream request carries a traceparent of the
// request's trace whose parent is the gateway's own upstream span (a
// child of the request span): never the client's traceparent as it came.
func TestTracesProxyMode(t *testing.T) {
	rcv := tracingtest.New(t)
	up := newGoUpstream(t)
	as, g := externalAS(t, map[string]string{
		"UPSTREAM_URL":                up.URL + "/mcp",
		"POLICY":                      goUpstreamPolicy,
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.Endpoint(),
	})
	tok := as.Issue("frank", []string{"math:add"}, g.Resource, time.Hour)
	client := mcp.NewClient(&mcp.Implementation{Name: "traced", Version: "1"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: g.MCP(), MaxRetries: -1,
		HTTPClient: &http.Client{Transport: forgingTransport{token: tok, forged: http.Header{"Traceparent": {clientParent}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "sum", Arguments: map[string]any{"a": 2, "b": 3}}); err != nil || res.IsError {
		t.Fatalf("sum: %v %+v", err, res)
	}
	_ = cs.Close()
	g.Stop(t)

	spans := rcv.Spans()
	byID := map[string]tracingtest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	var sawCall bool
	forwarded := 0
	for _, r := range up.Requests() {
		if r.Header.Values("X-Mcp-Scopes") == nil {
			// The gateway's own: a readiness check, no client's request.
			continue
		}
		forwarded++
		tp := r.Header.Values("Traceparent")
		if len(tp) != 1 || tp[0] == clientParent {
			t.Errorf("%s upstream request: traceparent %q, want the gateway's own", r.Method, tp)
			continue
		}
		parts := strings.Split(tp[0], "-")
		if len(parts) != 4 || parts[1] != clientTraceID {
			t.Errorf("upstream traceparent %q is not in the client's trace %s", tp[0], clientTraceID)
			continue
		}
		upSpan, ok := byID[parts[2]]
		if !ok || upSpan.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("the upstream's parent %s is not an exported client span of the gateway: %s", parts[2], spanNames(spans))
			continue
		}
		reqSpan, ok := byID[upSpan.ParentSpanID]
		if !ok || reqSpan.Kind != tracepb.Span_SPAN_KIND_SERVER || reqSpan.ParentSpanID != clientSpanID {
			t.Errorf("upstream span %s: parent %+v is not the request span under the client's", upSpan.Name, reqSpan)
		}
		if strings.Contains(r.Body, `"tools/call"`) {
			sawCall = true
			if upSpan.Attributes["http.response.status_code"] != int64(200) || reqSpan.Attributes["gen_ai.tool.name"] != "sum" || reqSpan.Attributes["mcp_gateway.auth"] != "ok" {
				t.Errorf("tools/call: upstream span %v, request span %v", upSpan.Attributes, reqSpan.Attributes)
			}
		}
	}
	if !sawCall || forwarded < 3 {
		t.Errorf("the upstream saw %d forwarded requests, tools/call among them: %v", forwarded, sawCall)
	}
	raw := rcv.Raw()
	for _, secret := range []string{tok, "frank", "test-client"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the exported spans hold %q", secret)
		}
	}
}
