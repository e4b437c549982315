package introspect

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

// recorder is a tracer provider that keeps every ended span.
func recorder(t testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

func named(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// verifyIn runs Verify inside a parent span and returns the parent's
// context.
func verifyIn(t *testing.T, tp trace.TracerProvider, v *Verifier, tok string) (trace.SpanContext, error) {
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	defer parent.End()
	_, err := v.Verify(ctx, tok)
	return parent.SpanContext(), err
}

func TestVerifySpans(t *testing.T) {
	srv := introspecttest.New(t)
	tp, rec := recorder(t)
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.TracerProvider = tp })
	tok := srv.Issue("alice@example.com", []string{"op:add"}, testResource, time.Hour)

	// A miss: the verify span under the request's, the introspection
	// exchange under it.
	parent, err := verifyIn(t, tp, v, tok)
	if err != nil {
		t.Fatal(err)
	}
	v.Wait()
	vs := named(rec, spanVerify)
	if len(vs) != 1 {
		t.Fatalf("%d verify spans", len(vs))
	}
	if vs[0].Parent().SpanID() != parent.SpanID() {
		t.Errorf("verify span's parent %v, want the request's %v", vs[0].Parent().SpanID(), parent.SpanID())
	}
	if a := spanAttrs(vs[0]); a[attrCache] != "miss" || a[attrValidator] != string(ValidatorIntrospection) || a[attrVerdict] != VerdictOK {
		t.Errorf("verify span attributes %v", a)
	}
	xs := named(rec, spanIntrospect)
	if len(xs) != 1 {
		t.Fatalf("%d introspection spans", len(xs))
	}
	if xs[0].Parent().SpanID() != vs[0].SpanContext().SpanID() || xs[0].SpanKind() != trace.SpanKindClient {
		t.Errorf("introspection span: parent %v kind %v", xs[0].Parent().SpanID(), xs[0].SpanKind())
	}
	if a := spanAttrs(xs[0]); a[attrOutcome] != string(OutcomeActive) || a["http.response.status_code"] != "200" || a["server.address"] != "127.0.0.1" {
		t.Errorf("introspection span attributes %v", a)
	}
	if xs[0].Status().Code == codes.Error || vs[0].Status().Code == codes.Error {
		t.Errorf("an answered introspection is an error span: %v, %v", xs[0].Status(), vs[0].Status())
	}

	// A hit: a verify span saying so, and no exchange.
	if _, err := verifyIn(t, tp, v, tok); err != nil {
		t.Fatal(err)
	}
	vs = named(rec, spanVerify)
	if a := spanAttrs(vs[len(vs)-1]); len(vs) != 2 || a[attrCache] != "hit" || a[attrVerdict] != VerdictOK {
		t.Errorf("hit: %d verify spans, last %v", len(vs), a)
	}
	if _, ok := spanAttrs(vs[len(vs)-1])[attrValidator]; ok {
		t.Error("a cache hit names a validator")
	}
	if n := len(named(rec, spanIntrospect)); n != 1 {
		t.Errorf("a hit made an exchange: %d", n)
	}

	// A refused token: its reason, and no error status (the token's
	// fault, not the gateway's).
	if _, err := verifyIn(t, tp, v, "unknown-token-value"); err == nil {
		t.Fatal("an unknown token was accepted")
	}
	vs = named(rec, spanVerify)
	last := vs[len(vs)-1]
	if a := spanAttrs(last); a[attrVerdict] != "inactive" || last.Status().Code == codes.Error {
		t.Errorf("refused: %v, status %v", a, last.Status())
	}

	// Nothing identifies the token or its owner.
	for _, s := range rec.Ended() {
		for k, val := range spanAttrs(s) {
			for _, secret := range []string{tok, "unknown-token-value", "alice", "test-client", srv.ClientID, srv.ClientSecret} {
				if strings.Contains(val, secret) {
					t.Errorf("span %q attribute %s = %q holds %q", s.Name(), k, val, secret)
				}
			}
		}
	}
}

// When the authorization server fails, the verify span and the exchange's
// are errors.
func TestVerifySpanUnavailable(t *testing.T) {
	srv := introspecttest.New(t)
	srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	tp, rec := recorder(t)
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.TracerProvider = tp })
	if _, err := verifyIn(t, tp, v, srv.Issue("bob", nil, testResource, time.Hour)); err == nil {
		t.Fatal("accepted without an answer")
	}
	vs, xs := named(rec, spanVerify), named(rec, spanIntrospect)
	if len(vs) != 1 || len(xs) != 1 {
		t.Fatalf("%d verify, %d introspection spans", len(vs), len(xs))
	}
	if a := spanAttrs(vs[0]); a[attrVerdict] != VerdictUnavailable || vs[0].Status().Code != codes.Error {
		t.Errorf("verify span %v %v", a, vs[0].Status())
	}
	if a := spanAttrs(xs[0]); a[attrOutcome] != string(OutcomeStatus) || a["http.response.status_code"] != "503" || xs[0].Status().Code != codes.Error {
		t.Errorf("introspection span %v %v", a, xs[0].Status())
	}
}

// A JWT verified locally: the verify span names the jwt validator.
func TestVerifySpanJWT(t *testing.T) {
	as := newJWTAS(t)
	tp, rec := recorder(t)
	v, _, _ := newJWTVerifier(t, as, false, func(c *Config) { c.TracerProvider = tp })
	if err := v.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyIn(t, tp, v, as.jwt.AccessToken("carol", []string{"op:add"}, testResource, time.Hour)); err != nil {
		t.Fatal(err)
	}
	vs := named(rec, spanVerify)
	if len(vs) != 1 {
		t.Fatalf("%d verify spans", len(vs))
	}
	if a := spanAttrs(vs[0]); a[attrValidator] != string(ValidatorJWT) || a[attrCache] != "miss" || a[attrVerdict] != VerdictOK {
		t.Errorf("verify span %v", a)
	}
	if n := len(named(rec, spanIntrospect)); n != 0 {
		t.Errorf("a JWT verified locally was introspected: %d", n)
	}
	// The key set fetched the JWKS, and said so in a span.
	if n := len(named(rec, "jwks fetch")); n == 0 {
		t.Error("no JWKS fetch span")
	}
}

// The shared tier's part of a miss is a span of its own: the machine
// that verifies first wins the lock, the next gets its answer.
func TestSharedTierSpan(t *testing.T) {
	srv := redistest.Start(t)
	as := introspecttest.New(t)
	tp, rec := recorder(t)
	traced := func(c *Config, _ *sharedcache.Config) { c.TracerProvider = tp }
	a := newMachine(t, as, srv.URL(), traced)
	b := newMachine(t, as, srv.URL(), traced)
	tok := as.Issue("erin", []string{"op:add"}, testResource, time.Hour)
	for _, m := range []*machine{a, b} {
		if _, err := verifyIn(t, tp, m.v, tok); err != nil {
			t.Fatal(err)
		}
	}
	sh := named(rec, spanShared)
	if len(sh) != 2 {
		t.Fatalf("%d shared cache spans, want 2", len(sh))
	}
	for i, want := range []string{"lock_won", "answer"} {
		if a := spanAttrs(sh[i]); a[attrShared] != want || a["db.system.name"] != "redis" {
			t.Errorf("machine %d: shared cache span %v, want %s", i, a, want)
		}
	}
	vs := named(rec, spanVerify)
	if len(vs) != 2 || sh[1].Parent().SpanID() != vs[1].SpanContext().SpanID() {
		t.Errorf("the shared cache span is not the verify span's child")
	}
	if n := len(named(rec, spanIntrospect)); n != 1 {
		t.Errorf("%d introspections, want 1 (the second machine used the first's answer)", n)
	}
}

// Without a TracerProvider, nothing is traced.
func TestVerifyUntraced(t *testing.T) {
	srv := introspecttest.New(t)
	v, _ := newTestVerifier(t, srv)
	if v.tracer != nil {
		t.Fatal("a tracer without a TracerProvider")
	}
}

// BenchmarkVerifyCacheHitTraced is BenchmarkVerifyCacheHit with tracing
// on (every span sampled, batched to an exporter that drops them): the
// cost of a verify span on the hot path.
func BenchmarkVerifyCacheHitTraced(b *testing.B) {
	srv := introspecttest.New(b)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	v, _ := newTestVerifier(b, srv, func(c *Config) { c.TracerProvider = tp })
	tok := srv.Issue("alice", []string{"op:add", "op:sub"}, testResource, time.Hour)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	v.Wait()
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
