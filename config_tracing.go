package main

// The configuration of OpenTelemetry traces (issue 16): the
// specification's OTEL_* variables, parsed by internal/tracing. They are
// part of env (embedded), so the contract test, .env.example and the
// README cover them.

import (
	"errors"

	"github.com/mcp-gateway/mcp-gateway/internal/tracing"
)

// TracingEnv is exported only because envconfig reads embedded structs
// through reflection, which skips unexported ones. Tracing is off unless
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
type TracingEnv struct {
	OTelEndpoint           string `envconfig:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	OTelTracesEndpoint     string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	OTelHeaders            string `envconfig:"OTEL_EXPORTER_OTLP_HEADERS"`
	OTelTracesHeaders      string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_HEADERS"`
	OTelProtocol           string `envconfig:"OTEL_EXPORTER_OTLP_PROTOCOL" default:"http/protobuf"`
	OTelTracesProtocol     string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`
	OTelTimeout            string `envconfig:"OTEL_EXPORTER_OTLP_TIMEOUT" default:"10000"`
	OTelTracesTimeout      string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"`
	OTelCompression        string `envconfig:"OTEL_EXPORTER_OTLP_COMPRESSION" default:"none"`
	OTelTracesCompression  string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"`
	OTelServiceName        string `envconfig:"OTEL_SERVICE_NAME" default:"mcp-gateway"`
	OTelResourceAttributes string `envconfig:"OTEL_RESOURCE_ATTRIBUTES"`
	OTelSampler            string `envconfig:"OTEL_TRACES_SAMPLER" default:"parentbased_always_on"`
	OTelSamplerArg         string `envconfig:"OTEL_TRACES_SAMPLER_ARG"`
	OTelSDKDisabled        string `envconfig:"OTEL_SDK_DISABLED" default:"false"`
	OTelTracesExporter     string `envconfig:"OTEL_TRACES_EXPORTER" default:"otlp"`
}

// validate parses the variables into c.Tracing, adding every problem to
// p. No problem quotes a header value: OTEL_EXPORTER_OTLP_HEADERS carries
// API keys.
func (e TracingEnv) validate(p *problems, c *config) {
	tc, err := tracing.Env{
		Endpoint:           e.OTelEndpoint,
		TracesEndpoint:     e.OTelTracesEndpoint,
		Headers:            e.OTelHeaders,
		TracesHeaders:      e.OTelTracesHeaders,
		Protocol:           e.OTelProtocol,
		TracesProtocol:     e.OTelTracesProtocol,
		Timeout:            e.OTelTimeout,
		TracesTimeout:      e.OTelTracesTimeout,
		Compression:        e.OTelCompression,
		TracesCompression:  e.OTelTracesCompression,
		ServiceName:        e.OTelServiceName,
		ResourceAttributes: e.OTelResourceAttributes,
		Sampler:            e.OTelSampler,
		SamplerArg:         e.OTelSamplerArg,
		SDKDisabled:        e.OTelSDKDisabled,
		TracesExporter:     e.OTelTracesExporter,
	}.Parse()
	var tp tracing.Problems
	if errors.As(err, &tp) {
		*p = append(*p, tp...)
	} else if err != nil {
		p.addf("OTEL_*: %v", err)
	}
	c.Tracing = tc
}
