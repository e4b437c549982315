package main

import (
	"context"

	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
)

// checkTracing says whether traces are exported, and where, and proves
// that the collector accepts an export (an empty one) with the configured
// headers. A collector that refuses is a warning, not a failure: the
// gateway serves without traces, dropping them.
func checkTracing(ctx context.Context, r *report, cfg *config) {
	t := cfg.Tracing
	if !t.Enabled() {
		r.ok("traces: off (set OTEL_EXPORTER_OTLP_ENDPOINT to export them)")
		return
	}
	if err := tracing.Probe(ctx, t); err != nil {
		r.warn("traces: %s: %v; the gateway would serve and drop its spans", t.Endpoint(), err)
		r.fix("check OTEL_EXPORTER_OTLP_ENDPOINT (the collector's OTLP/HTTP base URL, port 4318 by default) and OTEL_EXPORTER_OTLP_HEADERS")
		return
	}
	r.ok("traces: %s accepts exports (service.name %s, sampler %s)", t.Endpoint(), t.ServiceName, t.Sampler.Name)
}
