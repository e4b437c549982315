package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name, traceparent, tracestate string
		wantTrace, wantState          string // "" when nothing is extracted
	}{
		{"valid", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=x", "4bf92f3577b34da6a3ce929d0e0e4736", "vendor=x"},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "", "4bf92f3577b34da6a3ce929d0e0e4736", ""},
		{"missing", "", "vendor=x", "", ""},
		{"all-zero trace id (§3.2.2.3)", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", "", ""},
		{"all-zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "", "", ""},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "", ""},
		{"upper case", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "", "", ""},
		{"garbage", "hello", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.traceparent != "" {
				h.Set("traceparent", tc.traceparent)
			}
			if tc.tracestate != "" {
				h.Set("tracestate", tc.tracestate)
			}
			sc := trace.SpanContextFromContext(Extract(context.Background(), h))
			if tc.wantTrace == "" {
				if sc.IsValid() {
					t.Errorf("extracted %v from %q", sc, tc.traceparent)
				}
				return
			}
			if !sc.IsValid() || !sc.IsRemote() || sc.TraceID().String() != tc.wantTrace || sc.TraceState().String() != tc.wantState {
				t.Errorf("extracted %+v, want trace %s state %q", sc, tc.wantTrace, tc.wantState)
			}
		})
	}
}

func TestInjectReplacesTheClientsHeaders(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab}, SpanID: trace.SpanID{0xcd}, TraceFlags: trace.FlagsSampled})
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("tracestate", "client=forged")
	Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	want := "00-ab000000000000000000000000000000-cd00000000000000-01"
	if got := h.Values("Traceparent"); len(got) != 1 || got[0] != want {
		t.Errorf("traceparent = %q, want [%q]", got, want)
	}
	if got := h.Values("Tracestate"); len(got) != 0 {
		t.Errorf("tracestate = %q: the client's must not pass", got)
	}

	Inject(context.Background(), h)
	if len(h) != 0 {
		t.Errorf("without a span, Inject left %v", h)
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab}, SpanID: trace.SpanID{0xcd}})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "in a request")
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	if !strings.Contains(lines[0], `"trace_id":"ab000000000000000000000000000000"`) ||
		!strings.Contains(lines[0], `"span_id":"cd00000000000000"`) || !strings.Contains(lines[0], `"component":"x"`) {
		t.Errorf("in a request: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("outside a request: %s", lines[1])
	}
}
