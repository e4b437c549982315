package jwks

import (
	"context"
	"net/http"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// A fetch caused by a request (a token naming an unknown key) is a client
// span under that request's span, saying how it ended; a failed one is an
// error span.
func TestFetchSpans(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    bool
		outcome FetchOutcome
		status  int64
	}{
		{"ok", false, FetchOK, http.StatusOK},
		{"status", true, FetchStatus, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := jwtaccesstest.New(t)
			if tc.fail {
				iss.SetJWKSFailure(func(w http.ResponseWriter, _ *http.Request) bool {
					http.NotFound(w, nil)
					return true
				})
			}
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			defer tp.Shutdown(context.Background())
			ks := newKeySet(t, KeySetConfig{URL: iss.JWKSURL(), TracerProvider: tp})

			ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
			_, _ = ks.Lookup(ctx, "some-kid", jose.RS256)
			parent.End()

			var fetches []sdktrace.ReadOnlySpan
			for _, s := range rec.Ended() {
				if s.Name() == spanFetch {
					fetches = append(fetches, s)
				}
			}
			if len(fetches) != 1 {
				t.Fatalf("%d fetch spans, want 1", len(fetches))
			}
			f := fetches[0]
			if f.Parent().SpanID() != parent.SpanContext().SpanID() || f.SpanContext().TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("fetch span's parent = %v, want the request's %v", f.Parent(), parent.SpanContext())
			}
			if f.SpanKind() != trace.SpanKindClient {
				t.Errorf("kind = %v", f.SpanKind())
			}
			a := attrs(f)
			if a[attrFetchOutcome].AsString() != string(tc.outcome) || a["http.response.status_code"].AsInt64() != tc.status || a["url.full"].AsString() != iss.JWKSURL() {
				t.Errorf("attributes = %v", a)
			}
			if (f.Status().Code == codes.Error) != tc.fail {
				t.Errorf("status = %v", f.Status())
			}
		})
	}
}

// Without a TracerProvider nothing is traced, and a fetch works as before.
func TestFetchWithoutTracing(t *testing.T) {
	iss := jwtaccesstest.New(t)
	ks := newKeySet(t, KeySetConfig{URL: iss.JWKSURL()})
	if ks.tracer != nil {
		t.Fatal("a tracer without a TracerProvider")
	}
	if err := ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
}
