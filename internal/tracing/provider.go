// Package tracing sets up and shuts down the gateway's OpenTelemetry
// tracer provider from its configuration (the standard OTEL_* variables,
// parsed in config.go), and carries W3C Trace Context across HTTP
// (propagation.go) and into log lines (log.go).
//
// Tracing is off unless an endpoint is configured; then New returns a nil
// *Provider, whose TracerProvider is nil, and the instrumented packages
// start no span at all (an OpenTelemetry no-op tracer would still
// allocate a context per span). When on, spans are batched and exported
// over OTLP/HTTP (protobuf by default) to the configured collector.
//
// The package test receiver is tracingtest.Receiver.
package tracing

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// The batch span processor's settings: the SDK's defaults, passed
// explicitly because the SDK would otherwise read OTEL_BSP_* from the
// process environment.
const (
	maxQueueSize       = sdktrace.DefaultMaxQueueSize // spans waiting; more are dropped
	maxExportBatchSize = sdktrace.DefaultMaxExportBatchSize
	batchTimeout       = time.Duration(sdktrace.DefaultScheduleDelay) * time.Millisecond
	exportTimeout      = time.Duration(sdktrace.DefaultExportTimeout) * time.Millisecond
	// maxAttributeLength bounds an attribute value (the SDK's default is
	// no bound): the gateway's own values are short, and nothing a client
	// sends may make a span large.
	maxAttributeLength = 1024
)

// Options are what New needs besides the configuration.
type Options struct {
	// Logger receives export failures (never the headers). nil discards.
	Logger *slog.Logger
	// ServiceVersion is the resource's service.version; "" leaves it out.
	ServiceVersion string
}

// Provider is the gateway's tracer provider with its OTLP/HTTP exporter.
// A nil *Provider is tracing off: every method works on it.
type Provider struct {
	tp        *sdktrace.TracerProvider
	transport *http.Transport
}

// New builds the tracer provider for cfg. With tracing off
// (!cfg.Enabled()) it returns nil and starts nothing. It makes no network
// call: spans are exported in the background, in batches, and an
// unreachable collector costs dropped spans and a log line, never a
// failed request.
func New(ctx context.Context, cfg Config, o Options) (*Provider, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A transport of our own: closed at Shutdown (the exporter's default
	// one is shared by the whole process), no proxy from the environment,
	// and no redirects (the headers carry credentials, and a redirect
	// would take them elsewhere).
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	client := &http.Client{
		Transport:     transport,
		Timeout:       cfg.Timeout,
		CheckRedirect: urlrule.NoRedirects,
	}
	encoding := otlptracehttp.EncodingProtobuf
	if cfg.JSON {
		encoding = otlptracehttp.EncodingJSON
	}
	compression := otlptracehttp.NoCompression
	if cfg.Gzip {
		compression = otlptracehttp.GzipCompression
	}
	// Every option is given, so that nothing is taken from the process
	// environment: these override the exporter's own reading of it.
	exp, err := otlptrace.New(ctx, otlptracehttp.NewClient(
		otlptracehttp.WithEndpointURL(cfg.URL),
		otlptracehttp.WithHeaders(cfg.Headers),
		otlptracehttp.WithEncoding(encoding),
		otlptracehttp.WithCompression(compression),
		otlptracehttp.WithTimeout(cfg.Timeout),
		otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
			Enabled:         true,
			InitialInterval: 5 * time.Second,
			MaxInterval:     30 * time.Second,
			MaxElapsedTime:  time.Minute,
		}),
	))
	if err != nil {
		transport.CloseIdleConnections()
		return nil, err
	}

	attrs := append([]attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}, cfg.Resource...)
	if o.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(o.ServiceVersion))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, attrs...)),
		sdktrace.WithSampler(cfg.Sampler.sdk()),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit:   maxAttributeLength,
			AttributeCountLimit:         sdktrace.DefaultAttributeCountLimit,
			EventCountLimit:             sdktrace.DefaultEventCountLimit,
			LinkCountLimit:              sdktrace.DefaultLinkCountLimit,
			AttributePerEventCountLimit: sdktrace.DefaultAttributePerEventCountLimit,
			AttributePerLinkCountLimit:  sdktrace.DefaultAttributePerLinkCountLimit,
		}),
		sdktrace.WithBatcher(&loggingExporter{SpanExporter: exp, log: log, endpoint: cfg.Endpoint()},
			sdktrace.WithMaxQueueSize(maxQueueSize),
			sdktrace.WithMaxExportBatchSize(maxExportBatchSize),
			sdktrace.WithBatchTimeout(batchTimeout),
			sdktrace.WithExportTimeout(exportTimeout),
		),
	)
	return &Provider{tp: tp, transport: transport}, nil
}

// TracerProvider is what instrumented packages take in their
// configuration; nil (a true nil interface) when tracing is off.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return nil
	}
	return p.tp
}

// Shutdown exports the spans still queued, within ctx, and stops the
// exporter and its background goroutine. Call it once the server has
// stopped serving.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	err := p.tp.Shutdown(ctx)
	p.transport.CloseIdleConnections()
	return err
}

// ForceFlush exports the spans queued so far, within ctx.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.ForceFlush(ctx)
}

// sdk is the SDK sampler for s.
func (s Sampler) sdk() sdktrace.Sampler {
	switch s.Name {
	case SamplerAlwaysOn:
		return sdktrace.AlwaysSample()
	case SamplerAlwaysOff:
		return sdktrace.NeverSample()
	case SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(s.Ratio)
	case SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(s.Ratio))
	default:
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
}

// loggingExporter reports export failures to the gateway's logger, once
// when exports start failing and once when they recover (a collector that
// is down must not flood the log), instead of to OpenTelemetry's global
// error handler. The error never holds the headers: the exporter's errors
// name the URL (no credentials: Parse refuses user information and
// queries) and the collector's answer.
type loggingExporter struct {
	sdktrace.SpanExporter
	log      *slog.Logger
	endpoint string
	failing  atomic.Bool
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	switch {
	case err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// Shutdown ran out of time: said by Shutdown's own error.
	case err != nil:
		if !e.failing.Swap(true) {
			e.log.Warn("trace export failing: spans are dropped until the collector answers", "endpoint", e.endpoint, "spans", len(spans), "error", err)
		} else {
			e.log.Debug("trace export failed", "endpoint", e.endpoint, "spans", len(spans), "error", err)
		}
	case e.failing.Swap(false):
		e.log.Info("trace export recovered", "endpoint", e.endpoint)
	}
	// The batch processor would hand an error to OpenTelemetry's global
	// handler, which logs past the gateway's logger.
	return nil
}
