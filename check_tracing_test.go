package main

import (
	"net/http"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/internal/tracing/tracingtest"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// The doctor says whether traces are exported, proves the collector takes
// an export with the configured headers, and warns (without failing, and
// without printing the headers) when it does not.
func TestCheckTracing(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))

	_, out := runDoctor(t, externalVars(as))
	wantLines(t, out, "ok   traces: off (set OTEL_EXPORTER_OTLP_ENDPOINT")

	rcv := tracingtest.New(t)
	vars := externalVars(as)
	vars["OTEL_EXPORTER_OTLP_ENDPOINT"] = rcv.Endpoint()
	vars["OTEL_EXPORTER_OTLP_HEADERS"] = "x-key=doctor-secret-key"
	vars["OTEL_SERVICE_NAME"] = "edge"
	code, out := runDoctor(t, vars)
	if code != checkReady {
		t.Fatalf("exit %d, want 0", code)
	}
	wantLines(t, out, "traces: "+rcv.Endpoint()+"/v1/traces accepts exports (service.name edge, sampler parentbased_always_on)")
	if len(rcv.Requests()) != 1 || rcv.Requests()[0].Header.Get("X-Key") != "doctor-secret-key" {
		t.Errorf("the doctor's export: %+v", rcv.Requests())
	}

	rcv.Fail(http.StatusUnauthorized)
	code, out = runDoctor(t, vars)
	if code != checkReady {
		t.Errorf("a collector that refuses made the check fail (exit %d): traces are not needed to serve", code)
	}
	wantLines(t, out, "warn traces: ", "check OTEL_EXPORTER_OTLP_HEADERS", "fix: check OTEL_EXPORTER_OTLP_ENDPOINT")
	notIn(t, out, "doctor-secret-key")
}
