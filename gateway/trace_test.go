package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/internal/redact"
)

func TestSpanMethod(t *testing.T) {
	for in, want := range map[string]string{
		"GET": "GET", "POST": "POST", "DELETE": "DELETE", "OPTIONS": "OPTIONS", "PATCH": "PATCH",
		"get": "_OTHER", "BREW": "_OTHER", "": "_OTHER", strings.Repeat("X", 1000): "_OTHER",
	} {
		if got := spanMethod(in); got != want {
			t.Errorf("spanMethod(%.20q) = %q, want %q", in, got, want)
		}
	}
}

func tracedGateway(t *testing.T) (*Gateway, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	g, _ := newTestGateway(t, func(c *Config) { c.TracerProvider = tp })
	return g, rec
}

func attrMap(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

const clientTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestRequestSpans(t *testing.T) {
	for _, tc := range []struct {
		name, token, body string
		status            int
		attrs             map[attribute.Key]string // on the request span
		absent            []attribute.Key
		serverError       bool
		toolError         string // the tool span's error.type; "-" when no tool span
	}{
		{
			name: "tool call", token: tokAdd, body: rpcCall(1, "add"), status: 200,
			attrs: map[attribute.Key]string{"http.route": "/mcp", "http.request.method": "POST", "http.response.status_code": "200",
				attrAuth: "ok", attrToolName: "calculator", attrOperation: "add", "enduser.pseudo.id": redact.Subject("user-a")},
		},
		{
			name: "tool error", token: tokDiv, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"divide","a":1,"b":0}}}`, status: 200,
			attrs: map[attribute.Key]string{attrAuth: "ok", attrOperation: "divide"}, toolError: errorToolError,
		},
		{
			name: "step-up", token: tokAdd, body: rpcCall(1, "divide"), status: 403,
			attrs: map[attribute.Key]string{attrAuth: "insufficient_scope", attrOperation: "divide", "http.response.status_code": "403"}, toolError: "-",
		},
		{
			name: "no token", body: rpcCall(1, "add"), status: 401,
			attrs: map[attribute.Key]string{attrAuth: "missing"}, absent: []attribute.Key{"enduser.pseudo.id"}, toolError: "-",
		},
		{
			name: "refused token", token: tokInvalid, body: rpcCall(1, "add"), status: 401,
			attrs: map[attribute.Key]string{attrAuth: "expired"}, absent: []attribute.Key{"enduser.pseudo.id"}, toolError: "-",
		},
		{
			name: "authorization server down", token: tokUnavailable, body: rpcCall(1, "add"), status: 503,
			attrs: map[attribute.Key]string{attrAuth: "unavailable", "error.type": "503"}, serverError: true, toolError: "-",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, rec := tracedGateway(t)
			r := mcpRequest(tc.token, tc.body)
			r.Header.Set("Traceparent", clientTraceparent)
			w := serve(g, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			var req, tool sdktrace.ReadOnlySpan
			for _, s := range rec.Ended() {
				switch {
				case s.Name() == "POST /mcp":
					req = s
				case strings.HasPrefix(s.Name(), "tools/call"):
					tool = s
				}
			}
			if req == nil {
				t.Fatalf("no request span: %v", rec.Ended())
			}
			if req.SpanKind() != trace.SpanKindServer || req.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
				req.Parent().SpanID().String() != "00f067aa0ba902b7" || !req.Parent().IsRemote() {
				t.Errorf("request span: kind %v parent %+v", req.SpanKind(), req.Parent())
			}
			a := attrMap(req)
			for k, v := range tc.attrs {
				if a[k] != v {
					t.Errorf("%s = %q, want %q (all %v)", k, a[k], v, a)
				}
			}
			for _, k := range tc.absent {
				if _, ok := a[k]; ok {
					t.Errorf("%s is set: %v", k, a)
				}
			}
			if (req.Status().Code == codes.Error) != tc.serverError {
				t.Errorf("request span status %v", req.Status())
			}
			if tc.toolError == "-" {
				if tool != nil {
					t.Errorf("a tool span for a call that did not run: %s", tool.Name())
				}
				return
			}
			if tool == nil {
				t.Fatal("no tool span")
			}
			if tool.Name() != "tools/call calculator" || tool.Parent().SpanID() != req.SpanContext().SpanID() {
				t.Errorf("tool span %q parent %v, want the request's %v", tool.Name(), tool.Parent().SpanID(), req.SpanContext().SpanID())
			}
			ta := attrMap(tool)
			if ta["error.type"] != tc.toolError || (tool.Status().Code == codes.Error) != (tc.toolError != "") {
				t.Errorf("tool span error.type %q status %v, want %q", ta["error.type"], tool.Status(), tc.toolError)
			}
			if ta[attrToolName] != "calculator" || ta[attrMCPMethod] != "tools/call" || ta[attrGenAIOp] != genAIExecTool {
				t.Errorf("tool span attributes %v", ta)
			}
			for _, s := range rec.Ended() {
				for k, v := range attrMap(s) {
					if strings.Contains(v, "SECRET") || strings.Contains(v, "user-a") {
						t.Errorf("span %q %s = %q", s.Name(), k, v)
					}
				}
			}
		})
	}
}

// A span's name and method cannot be chosen by the client.
func TestRequestSpanUnknownMethodAndRoute(t *testing.T) {
	g, rec := tracedGateway(t)
	serve(g, httptest.NewRequest("BREW", "/no/such/path?token=SECRET", nil))
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "_OTHER" {
		t.Fatalf("spans %v", spans)
	}
	if a := attrMap(spans[0]); a["http.request.method"] != "_OTHER" || a["http.route"] != "" || a["http.response.status_code"] == "" {
		t.Errorf("attributes %v", a)
	}
}

func TestUntracedGatewayHasNoTracer(t *testing.T) {
	g, _ := newTestGateway(t, nil)
	if g.tracer != nil {
		t.Fatal("a tracer without a TracerProvider")
	}
	r := mcpRequest(tokAdd, rpcCall(1, "add"))
	r.Header.Set("Traceparent", clientTraceparent)
	serve(g, r)
	if got := r.Header.Get("Traceparent"); got != clientTraceparent {
		t.Errorf("tracing off, the request's traceparent was changed to %q", got)
	}
}

// BenchmarkHandlerCachedTokenTraced is BenchmarkHandlerCachedTokenObserved
// with tracing on: every request sampled, its spans batched to an exporter
// that drops them. The difference is the cost of the request span and the
// tool-call span (the verifier's own span is in introspect's benchmarks).
func BenchmarkHandlerCachedTokenTraced(b *testing.B) {
	ti := &auth.TokenInfo{UserID: "bench", Scopes: []string{"op"}, Expiration: time.Now().Add(time.Hour)}
	v := newFakeVerifier(map[string]verdict{"bench-token": {ti: ti}})
	cfg := testConfig(v)
	cfg.Metrics = newMetrics()
	cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.TracerProvider = tp
	benchHandler(b, cfg)
}

// Probes and scrapes are not traced: a trace per probe would bury the
// requests.
func TestProbesNotTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	g, _ := newTestGateway(t, func(c *Config) { c.TracerProvider, c.Metrics, c.ServeMetrics = tp, newMetrics(), true })
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		serve(g, httptest.NewRequest(http.MethodGet, path, nil))
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans for probes: %v", n, rec.Ended())
	}
	serve(g, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp", nil))
	if n := len(rec.Ended()); n != 1 {
		t.Errorf("%d spans for the metadata, want 1", n)
	}
}
