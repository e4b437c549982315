// Package tracingtest is an OTLP/HTTP trace receiver for tests: an
// httptest server that decodes the protobuf export requests an
// OpenTelemetry exporter sends (OTLP specification, "OTLP/HTTP") and
// records their spans, so that a test can check what the gateway
// exported, span by span and byte by byte.
package tracingtest

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// maxBody bounds one export request, decompressed.
const maxBody = 16 << 20

// Span is one exported span, decoded.
type Span struct {
	TraceID, SpanID string // lowercase hex, as in a traceparent
	ParentSpanID    string // "" for a root span
	TraceState      string
	Name            string
	Kind            tracepb.Span_SpanKind
	Scope           string // the instrumentation scope (tracer) name
	Attributes      map[string]any
	Resource        map[string]any
	Status          tracepb.Status_StatusCode
	StatusMessage   string
	Start, End      time.Time
}

// Request is one export request as received.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte // decompressed
}

// Receiver records what exporters send it. It is safe for concurrent use.
type Receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	requests []Request
	status   int // answer with this status instead of 200 when not 0
}

// New starts a receiver, closed when the test ends.
func New(t testing.TB) *Receiver {
	r := &Receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// Endpoint is the receiver's base URL, for OTEL_EXPORTER_OTLP_ENDPOINT
// (the exporter then posts to Endpoint()+"/v1/traces").
func (r *Receiver) Endpoint() string { return r.srv.URL }

// Fail makes the receiver answer every export with status (0: succeed
// again).
func (r *Receiver) Fail(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

// Spans returns the spans received so far, in order of arrival.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests returns the export requests received so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Raw is every export request body received so far, decompressed and
// concatenated: what a test scans for bytes that must never be exported.
func (r *Receiver) Raw() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for _, q := range r.requests {
		b.Write(q.Body)
	}
	return b.Bytes()
}

// Named returns the spans named name.
func (r *Receiver) Named(name string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Children returns the spans whose parent is parent.
func (r *Receiver) Children(parent Span) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == parent.TraceID && s.ParentSpanID == parent.SpanID {
			out = append(out, s)
		}
	}
	return out
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxBody)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxBody)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, Request{Path: req.URL.Path, Header: req.Header.Clone(), Body: raw})
	status := r.status
	r.mu.Unlock()
	if status != 0 {
		http.Error(w, "failing on purpose", status)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "only application/x-protobuf is decoded here", http.StatusUnsupportedMediaType)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest", http.StatusBadRequest)
		return
	}
	spans := decode(&msg)
	r.mu.Lock()
	r.spans = append(r.spans, spans...)
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func decode(msg *coltracepb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attributes(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				out = append(out, Span{
					TraceID:       hex.EncodeToString(s.GetTraceId()),
					SpanID:        hex.EncodeToString(s.GetSpanId()),
					ParentSpanID:  hex.EncodeToString(s.GetParentSpanId()),
					TraceState:    s.GetTraceState(),
					Name:          s.GetName(),
					Kind:          s.GetKind(),
					Scope:         ss.GetScope().GetName(),
					Attributes:    attributes(s.GetAttributes()),
					Resource:      res,
					Status:        s.GetStatus().GetCode(),
					StatusMessage: s.GetStatus().GetMessage(),
					Start:         time.Unix(0, int64(s.GetStartTimeUnixNano())),
					End:           time.Unix(0, int64(s.GetEndTimeUnixNano())),
				})
			}
		}
	}
	return out
}

func attributes(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_ArrayValue:
		var a []any
		for _, e := range x.ArrayValue.GetValues() {
			a = append(a, value(e))
		}
		return a
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	}
	return nil
}
