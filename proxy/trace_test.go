package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
)

const (
	clientTrace  = "0af7651916cd43dd8448eb211c80319c"
	clientParent = "00-" + clientTrace + "-b7ad6b7169203331-01"
)

// tracedFront is front with the gateway's request span: it continues the
// client's trace, and the proxy runs inside it.
func tracedFront(t testing.TB, p *Proxy, tp trace.TracerProvider) *tracedServer {
	t.Helper()
	ts := &tracedServer{served: make(chan struct{}, 16)}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { ts.served <- struct{}{} }() // after the span ends
		id, ok := testIdentities[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		ctx, span := tp.Tracer("test").Start(tracing.Extract(r.Context(), r.Header), "request", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		p.ServeHTTP(w, r.WithContext(WithIdentity(ctx, id)))
	}))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts
}

// tracedServer is a tracedFront. The proxy sends a complete answer before
// its handler returns (and so before its spans end): a test waits for the
// handler (served) before it reads the spans.
type tracedServer struct {
	*httptest.Server
	served chan struct{}
}

// wait waits for one request's handler to return, spans ended.
func (ts *tracedServer) wait(t testing.TB) {
	t.Helper()
	select {
	case <-ts.served:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return")
	}
}

func recorder(t testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrsOf(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// The upstream's traceparent names the request's trace and, as parent,
// the proxy's own client span: never the client's traceparent as it came.
func TestUpstreamTraceparent(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	tp, rec := recorder(t)
	fr := tracedFront(t, newProxy(t, up.URL, Config{TracerProvider: tp}), tp)
	resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, http.Header{
		"Traceparent": {clientParent},
		"Tracestate":  {"congo=t61rcWkgMzE"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fr.wait(t)

	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	got := reqs[0].Header.Values("Traceparent")
	ups := spansNamed(rec, "POST upstream")
	reqSpans := spansNamed(rec, "request")
	if len(ups) != 1 || len(reqSpans) != 1 {
		t.Fatalf("spans: %v", rec.Ended())
	}
	u := ups[0]
	want := "00-" + clientTrace + "-" + u.SpanContext().SpanID().String() + "-01"
	if len(got) != 1 || got[0] != want {
		t.Errorf("upstream traceparent %q, want [%q] (the proxy's span as parent)", got, want)
	}
	if u.Parent().SpanID() != reqSpans[0].SpanContext().SpanID() || u.SpanKind() != trace.SpanKindClient {
		t.Errorf("upstream span: parent %v kind %v", u.Parent(), u.SpanKind())
	}
	a := attrsOf(u)
	if a["http.response.status_code"] != "200" || a["server.address"] != "127.0.0.1" || a["http.request.method"] != "POST" || a["server.port"] == "" {
		t.Errorf("upstream span attributes %v", a)
	}
	if u.Status().Code == codes.Error {
		t.Errorf("status %v", u.Status())
	}
	for _, s := range rec.Ended() {
		for k, v := range attrsOf(s) {
			for _, secret := range []string{"alice", "client-a", "upstream-secret"} {
				if strings.Contains(v, secret) {
					t.Errorf("span %q %s = %q holds %q", s.Name(), k, v, secret)
				}
			}
		}
	}
}

// A failed upstream call is an error span saying why.
func TestUpstreamSpanFailures(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{http.StatusServiceUnavailable, "unavailable"},
		{http.StatusInternalServerError, "bad_status"},
		{http.StatusUnauthorized, "credentials_rejected"},
	} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }))
		tp, rec := recorder(t)
		fr := tracedFront(t, newProxy(t, up.URL, Config{TracerProvider: tp}), tp)
		resp := post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
		resp.Body.Close()
		fr.wait(t)
		up.Close()
		ups := spansNamed(rec, "POST upstream")
		if len(ups) != 1 {
			t.Fatalf("%d upstream spans", len(ups))
		}
		a := attrsOf(ups[0])
		if a["error.type"] != tc.want || a["http.response.status_code"] != strconv.Itoa(tc.status) || ups[0].Status().Code != codes.Error {
			t.Errorf("upstream %d: span %v %v, want error.type %s", tc.status, a, ups[0].Status(), tc.want)
		}
	}

	// Unreachable: no status, an error.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	tp, rec := recorder(t)
	fr := tracedFront(t, newProxy(t, gone.URL, Config{TracerProvider: tp}), tp)
	post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil).Body.Close()
	fr.wait(t)
	ups := spansNamed(rec, "POST upstream")
	if len(ups) != 1 || attrsOf(ups[0])["error.type"] != "unreachable" {
		t.Errorf("unreachable upstream: %v", ups)
	}
}

// Tracing off: the client's traceparent goes upstream as it came (a trace
// the gateway does not join still continues), and nothing is started.
func TestUpstreamTraceparentUntraced(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	p := newProxy(t, up.URL, Config{})
	if p.tracer != nil {
		t.Fatal("a tracer without a TracerProvider")
	}
	fr := front(t, p)
	post(t, fr.URL, "alice-token", "", `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, http.Header{"Traceparent": {clientParent}}).Body.Close()
	if got := up.Requests()[0].Header.Get("Traceparent"); got != clientParent {
		t.Errorf("upstream traceparent %q, want the client's", got)
	}
}
