package tracing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
	"github.com/mcp-gateway/mcp-gateway/internal/tracing/tracingtest"
)

func parse(t *testing.T, e tracing.Env) tracing.Config {
	t.Helper()
	c, err := e.Parse()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOffStartsNothing(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.Config{}, tracing.Options{})
	if err != nil || p != nil {
		t.Fatalf("New(off) = %v, %v; want nil, nil", p, err)
	}
	if tp := p.TracerProvider(); tp != nil {
		t.Errorf("TracerProvider() of a nil Provider = %v, want a nil interface", tp)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Error(err)
	}
	// goleak (TestMain) checks that no goroutine was started.
}

func TestExportsToTheConfiguredEndpoint(t *testing.T) {
	for _, gzip := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gzip], func(t *testing.T) {
			rcv := tracingtest.New(t)
			env := tracing.Env{Endpoint: rcv.Endpoint(), Headers: "x-api-key=k%20ey", ServiceName: "edge-1",
				ResourceAttributes: "deployment.environment=test"}
			if gzip {
				env.Compression = "gzip"
			}
			p, err := tracing.New(context.Background(), parse(t, env), tracing.Options{ServiceVersion: "v1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			tr := p.TracerProvider().Tracer("test")
			ctx, parent := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer))
			_, child := tr.Start(ctx, "child", trace.WithAttributes(attribute.String("k", "v")))
			child.End()
			parent.End()
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			reqs := rcv.Requests()
			if len(reqs) == 0 {
				t.Fatal("nothing exported")
			}
			for _, r := range reqs {
				if r.Path != "/v1/traces" {
					t.Errorf("posted to %q, want /v1/traces", r.Path)
				}
				if got := r.Header.Get("X-Api-Key"); got != "k ey" {
					t.Errorf("X-Api-Key = %q, want the configured header", got)
				}
				if got := r.Header.Get("Content-Encoding"); (got == "gzip") != gzip {
					t.Errorf("Content-Encoding = %q", got)
				}
			}
			ps, cs := rcv.Named("parent"), rcv.Named("child")
			if len(ps) != 1 || len(cs) != 1 {
				t.Fatalf("spans: %+v", rcv.Spans())
			}
			if cs[0].ParentSpanID != ps[0].SpanID || cs[0].TraceID != ps[0].TraceID || ps[0].ParentSpanID != "" {
				t.Errorf("child %+v is not parented by %+v", cs[0], ps[0])
			}
			if ps[0].Kind != tracepb.Span_SPAN_KIND_SERVER || cs[0].Attributes["k"] != "v" {
				t.Errorf("kind %v, attributes %v", ps[0].Kind, cs[0].Attributes)
			}
			res := ps[0].Resource
			if res["service.name"] != "edge-1" || res["service.version"] != "v1.2.3" || res["deployment.environment"] != "test" {
				t.Errorf("resource = %v", res)
			}
		})
	}
}

func TestSamplers(t *testing.T) {
	remoteSampled := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	remoteNotSampled := remoteSampled.WithTraceFlags(0)
	for _, tc := range []struct {
		sampler, arg string
		parent       trace.SpanContext
		want         bool
	}{
		{"", "", trace.SpanContext{}, true},
		{"", "", remoteNotSampled, false}, // parentbased_always_on follows the caller
		{"", "", remoteSampled, true},
		{"always_on", "", remoteNotSampled, true},
		{"always_off", "", remoteSampled, false},
		{"parentbased_always_off", "", trace.SpanContext{}, false},
		{"parentbased_always_off", "", remoteSampled, true},
		{"traceidratio", "0", remoteSampled, false},
		{"traceidratio", "1", trace.SpanContext{}, true},
		{"parentbased_traceidratio", "0", trace.SpanContext{}, false},
		{"parentbased_traceidratio", "0", remoteSampled, true},
	} {
		rcv := tracingtest.New(t)
		p, err := tracing.New(context.Background(), parse(t, tracing.Env{Endpoint: rcv.Endpoint(), Sampler: tc.sampler, SamplerArg: tc.arg}), tracing.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if tc.parent.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, tc.parent)
		}
		_, s := p.TracerProvider().Tracer("test").Start(ctx, "s")
		s.End()
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := len(rcv.Named("s")) == 1; got != tc.want {
			t.Errorf("sampler %q arg %q parent sampled=%v valid=%v: exported = %v, want %v",
				tc.sampler, tc.arg, tc.parent.IsSampled(), tc.parent.IsValid(), got, tc.want)
		}
	}
}

// An export failure is logged once, without the headers, and so is the
// recovery; the batch processor goes on.
func TestExportFailureLoggedOnce(t *testing.T) {
	rcv := tracingtest.New(t)
	rcv.Fail(http.StatusBadRequest) // not retried by the exporter
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	const secret = "hdr-secret-value"
	p, err := tracing.New(context.Background(), parse(t, tracing.Env{Endpoint: rcv.Endpoint(), Headers: "x-key=" + secret}), tracing.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	tr := p.TracerProvider().Tracer("test")
	for range 3 {
		_, s := tr.Start(context.Background(), "s")
		s.End()
		if err := p.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rcv.Fail(0)
	_, s := tr.Start(context.Background(), "s")
	s.End()
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "trace export failing"); n != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "trace export recovered"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the log holds a header value:\n%s", out)
	}
	if len(rcv.Requests()) != 4 {
		t.Errorf("%d export requests, want 4", len(rcv.Requests()))
	}
}

// A redirect is not followed: the headers carry credentials.
func TestRedirectNotFollowed(t *testing.T) {
	elsewhere := tracingtest.New(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.Endpoint()+"/v1/traces", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	p, err := tracing.New(context.Background(), parse(t, tracing.Env{Endpoint: redirect.URL, Headers: "x-key=secret"}), tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, s := p.TracerProvider().Tracer("test").Start(context.Background(), "s")
	s.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(elsewhere.Requests()); n != 0 {
		t.Errorf("the redirect was followed: %d requests elsewhere", n)
	}
	redirect.CloseClientConnections()
}

// The exporter's body is what the receiver decodes: a sanity check of
// the receiver itself, whose Raw is what the gateway's tests scan.
func TestReceiverRawHoldsAttributes(t *testing.T) {
	rcv := tracingtest.New(t)
	p, err := tracing.New(context.Background(), parse(t, tracing.Env{Endpoint: rcv.Endpoint(), Compression: "gzip"}), tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, s := p.TracerProvider().Tracer("test").Start(context.Background(), "s", trace.WithAttributes(attribute.String("needle", "haystack-value")))
	s.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rcv.Raw(), []byte("haystack-value")) {
		t.Error("Raw does not hold an exported attribute value")
	}
}

func TestProbe(t *testing.T) {
	rcv := tracingtest.New(t)
	cfg := parse(t, tracing.Env{Endpoint: rcv.Endpoint(), Headers: "x-key=probe-secret"})
	if err := tracing.Probe(context.Background(), cfg); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	reqs := rcv.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/traces" || reqs[0].Header.Get("X-Key") != "probe-secret" || len(rcv.Spans()) != 0 {
		t.Fatalf("probe requests %+v, spans %v", reqs, rcv.Spans())
	}
	for status, want := range map[int]string{
		http.StatusUnauthorized: "check OTEL_EXPORTER_OTLP_HEADERS",
		http.StatusNotFound:     "OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL",
		http.StatusBadGateway:   "HTTP 502",
	} {
		rcv.Fail(status)
		err := tracing.Probe(context.Background(), cfg)
		var pe *tracing.ProbeError
		if !errors.As(err, &pe) || pe.Status != status || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "probe-secret") {
			t.Errorf("status %d: %v", status, err)
		}
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	err := tracing.Probe(context.Background(), parse(t, tracing.Env{Endpoint: gone.URL}))
	var pe *tracing.ProbeError
	if !errors.As(err, &pe) || pe.Status != 0 || !strings.Contains(err.Error(), "cannot be reached") {
		t.Errorf("closed collector: %v", err)
	}
	if err := tracing.Probe(context.Background(), tracing.Config{}); err == nil {
		t.Error("Probe with tracing off succeeded")
	}
}
