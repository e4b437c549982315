package tracing

// The OTEL_* environment variables, read the way the OpenTelemetry
// specification defines them ("Environment Variable Specification" and
// "OpenTelemetry Protocol Exporter", specification v1.55), with the
// gateway's one departure: tracing is off unless an endpoint is set, where
// an SDK would export to http://localhost:4318 by default. An operator who
// never heard of OpenTelemetry gets no exporter, no goroutine and no
// connection attempt.
//
// The values are parsed here, never by the SDK or the exporter from the
// process environment: the gateway reads its environment only through the
// lookup function it is given (tests start whole gateways in one process),
// and every setting the SDK would otherwise take from os.Getenv is passed
// explicitly (provider.go).

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/net/http/httpguts"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
)

// Env holds the OTEL_* variables as read, unparsed; "" is unset. The
// gateway's configuration contract (config.go's env struct) names each.
type Env struct {
	Endpoint          string // OTEL_EXPORTER_OTLP_ENDPOINT
	TracesEndpoint    string // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	Headers           string // OTEL_EXPORTER_OTLP_HEADERS
	TracesHeaders     string // OTEL_EXPORTER_OTLP_TRACES_HEADERS
	Protocol          string // OTEL_EXPORTER_OTLP_PROTOCOL
	TracesProtocol    string // OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
	Timeout           string // OTEL_EXPORTER_OTLP_TIMEOUT
	TracesTimeout     string // OTEL_EXPORTER_OTLP_TRACES_TIMEOUT
	Compression       string // OTEL_EXPORTER_OTLP_COMPRESSION
	TracesCompression string // OTEL_EXPORTER_OTLP_TRACES_COMPRESSION

	ServiceName        string // OTEL_SERVICE_NAME
	ResourceAttributes string // OTEL_RESOURCE_ATTRIBUTES
	Sampler            string // OTEL_TRACES_SAMPLER
	SamplerArg         string // OTEL_TRACES_SAMPLER_ARG
	SDKDisabled        string // OTEL_SDK_DISABLED
	TracesExporter     string // OTEL_TRACES_EXPORTER
}

// Defaults, from the specification unless said otherwise.
const (
	// DefaultServiceName is the gateway's own: the specification's
	// "unknown_service" would name nothing.
	DefaultServiceName = "mcp-gateway"
	// DefaultTimeout is OTEL_EXPORTER_OTLP_TIMEOUT's default, 10000 ms.
	DefaultTimeout = 10 * time.Second
	// maxTimeout bounds OTEL_EXPORTER_OTLP_TIMEOUT: an export blocks the
	// batch processor, and shutdown waits for it.
	maxTimeout = time.Minute
	// TracesPath is appended to OTEL_EXPORTER_OTLP_ENDPOINT ("Endpoint
	// URLs for OTLP/HTTP"); OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as
	// it is.
	TracesPath = "v1/traces"
	// maxHeaders and maxHeaderBytes bound OTEL_EXPORTER_OTLP_HEADERS.
	maxHeaders     = 32
	maxHeaderBytes = 8 << 10
	// maxResourceAttributes bounds OTEL_RESOURCE_ATTRIBUTES.
	maxResourceAttributes = 64
)

// The samplers of OTEL_TRACES_SAMPLER the gateway knows.
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on" // the default
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Sampler is the parsed OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
type Sampler struct {
	Name  string  // one of the Sampler* names
	Ratio float64 // for the *traceidratio samplers: the fraction of traces kept, in [0, 1]
}

// Config is the parsed tracing configuration. The zero value is tracing
// off.
type Config struct {
	// URL is the OTLP/HTTP traces endpoint; "" when tracing is off.
	URL string
	// Headers are sent with every export. They usually carry an API key:
	// never log them.
	Headers map[string]string
	// JSON selects http/json; the default is http/protobuf.
	JSON bool
	// Gzip compresses the exports.
	Gzip bool
	// Timeout bounds one export request.
	Timeout time.Duration
	// ServiceName is the resource's service.name.
	ServiceName string
	// Resource holds OTEL_RESOURCE_ATTRIBUTES except service.name.
	Resource []attribute.KeyValue
	Sampler  Sampler
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.URL != "" }

// Endpoint is the traces endpoint as it may be logged: scheme, host and
// path (it carries no user information or query: Parse refuses both).
func (c Config) Endpoint() string { return c.URL }

// Problems are every problem Parse found, each naming its variable and
// never quoting a header value.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "; ") }

// Parse reads the variables. Every problem is reported at once, as
// Problems; the Config is usable only without them.
func (e Env) Parse() (Config, error) {
	var p Problems
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	var c Config

	disabled := false
	if v := strings.TrimSpace(e.SDKDisabled); v != "" {
		// The specification's booleans are "true" (case-insensitive) or
		// anything else for false; a value that is neither true nor false
		// is refused here, as every other boolean of the gateway is.
		switch strings.ToLower(v) {
		case "true":
			disabled = true
		case "false":
		default:
			add("OTEL_SDK_DISABLED=%q must be true or false", e.SDKDisabled)
		}
	}
	switch v := strings.ToLower(strings.TrimSpace(e.TracesExporter)); v {
	case "", "otlp":
	case "none":
		disabled = true
	default:
		add("OTEL_TRACES_EXPORTER=%q: only otlp (OTLP over HTTP) and none are supported", e.TracesExporter)
	}

	c.URL = endpoint(e.Endpoint, e.TracesEndpoint, add)

	headers := e.Headers
	name := "OTEL_EXPORTER_OTLP_HEADERS"
	if strings.TrimSpace(e.TracesHeaders) != "" {
		headers, name = e.TracesHeaders, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	}
	c.Headers = parseHeaders(name, headers, add)

	c.JSON = protocol(pick(e.Protocol, e.TracesProtocol, "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), add)
	c.Timeout = timeout(pick(e.Timeout, e.TracesTimeout, "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), add)
	c.Gzip = compression(pick(e.Compression, e.TracesCompression, "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"), add)
	c.Sampler = sampler(e.Sampler, e.SamplerArg, add)

	attrs, service := resourceAttributes(e.ResourceAttributes, add)
	c.Resource = attrs
	// OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES.
	c.ServiceName = DefaultServiceName
	if service != "" {
		c.ServiceName = service
	}
	if s := strings.TrimSpace(e.ServiceName); s != "" {
		c.ServiceName = s
	}

	if c.URL != "" && len(c.Headers) > 0 {
		if u, err := url.Parse(c.URL); err == nil && u.Scheme == "http" && !loopback.Host(u.Hostname()) {
			add("%s would be sent in clear text to %s: headers carry credentials, use an https endpoint (plain http is fine for a collector on loopback, or one that needs no headers)", name, c.URL)
		}
	}
	if len(p) > 0 {
		return Config{}, p
	}
	if disabled {
		c.URL = ""
	}
	return c, nil
}

// setting is one option given by a general variable and its traces-only
// variant, which wins.
type setting struct{ name, value string }

func pick(general, traces, generalName, tracesName string) setting {
	if strings.TrimSpace(traces) != "" {
		return setting{tracesName, traces}
	}
	return setting{generalName, general}
}

// endpoint is the traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is
// (with "/" for an empty path), or OTEL_EXPORTER_OTLP_ENDPOINT with
// "v1/traces" appended to its path ("Endpoint URLs for OTLP/HTTP").
func endpoint(base, traces string, add func(string, ...any)) string {
	name, raw := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", strings.TrimSpace(traces)
	if raw == "" {
		name, raw = "OTEL_EXPORTER_OTLP_ENDPOINT", strings.TrimSpace(base)
	}
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		add("%s is not an absolute http(s) URL such as https://collector.example.com:4318", name)
		return ""
	case u.Scheme != "http" && u.Scheme != "https":
		add("%s must be an http or https URL (OTLP over HTTP; gRPC is not supported)", name)
		return ""
	case u.User != nil:
		// The URL is logged; credentials belong in the headers.
		add("%s must not carry user information: put credentials in OTEL_EXPORTER_OTLP_HEADERS", name)
		return ""
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		// The exporter sends to scheme, host and path only: a query
		// would be dropped without a word.
		add("%s must not have a query or fragment", name)
		return ""
	}
	if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		u.Path += TracesPath
		u.RawPath = ""
	} else if u.Path == "" {
		u.Path = "/"
	}
	return u.String()
}

// parseHeaders reads a list of key=value pairs separated by commas, each
// value percent-decoded (the W3C Baggage format the specification names).
// A problem names the variable and the key or position, never a value.
func parseHeaders(name, s string, add func(string, ...any)) map[string]string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	if len(s) > maxHeaderBytes {
		add("%s is longer than %d bytes", name, maxHeaderBytes)
		return nil
	}
	out := make(map[string]string)
	for i, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			add("%s: entry %d is not key=value", name, i+1)
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			add("%s: entry %d: the key is not an HTTP header name", name, i+1)
			continue
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil || !httpguts.ValidHeaderFieldValue(dv) {
			add("%s: the value of %s is not a valid (percent-encoded) header value", name, k)
			continue
		}
		if len(out) == maxHeaders {
			add("%s has more than %d entries", name, maxHeaders)
			break
		}
		out[k] = dv
	}
	return out
}

// protocol reports whether http/json is asked for. http/protobuf is the
// specification's default; gRPC is refused, not ignored: data sent over
// HTTP to a gRPC port would be lost without a word.
func protocol(s setting, add func(string, ...any)) bool {
	switch v := strings.ToLower(strings.TrimSpace(s.value)); v {
	case "", "http/protobuf":
		return false
	case "http/json":
		return true
	case "grpc":
		add("%s=grpc is not supported: use http/protobuf and the collector's OTLP/HTTP port (4318)", s.name)
	default:
		add("%s=%q must be http/protobuf or http/json", s.name, s.value)
	}
	return false
}

// timeout reads the export timeout in milliseconds, as the specification
// has it.
func timeout(s setting, add func(string, ...any)) time.Duration {
	v := strings.TrimSpace(s.value)
	if v == "" {
		return DefaultTimeout
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 || time.Duration(ms)*time.Millisecond > maxTimeout {
		add("%s=%q must be a whole number of milliseconds between 1 and %d", s.name, s.value, maxTimeout.Milliseconds())
		return DefaultTimeout
	}
	return time.Duration(ms) * time.Millisecond
}

func compression(s setting, add func(string, ...any)) bool {
	switch strings.ToLower(strings.TrimSpace(s.value)) {
	case "", "none":
		return false
	case "gzip":
		return true
	}
	add("%s=%q must be gzip or none", s.name, s.value)
	return false
}

// sampler reads OTEL_TRACES_SAMPLER and its argument. The argument of the
// ratio samplers is a probability in [0, 1], 1 when unset; other samplers
// ignore it, as the specification says.
func sampler(name, arg string, add func(string, ...any)) Sampler {
	s := Sampler{Name: strings.ToLower(strings.TrimSpace(name)), Ratio: 1}
	switch s.Name {
	case "":
		s.Name = SamplerParentBasedAlwaysOn
	case SamplerAlwaysOn, SamplerAlwaysOff, SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff:
	case SamplerTraceIDRatio, SamplerParentBasedTraceIDRatio:
		if a := strings.TrimSpace(arg); a != "" {
			r, err := strconv.ParseFloat(a, 64)
			if err != nil || r < 0 || r > 1 {
				add("OTEL_TRACES_SAMPLER_ARG=%q must be a number between 0 and 1 (the fraction of traces kept)", arg)
			}
			s.Ratio = r
		}
	default:
		add("OTEL_TRACES_SAMPLER=%q must be one of %s, %s, %s, %s, %s, %s", name,
			SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio,
			SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio)
	}
	return s
}

// resourceAttributes reads OTEL_RESOURCE_ATTRIBUTES: key=value pairs
// separated by commas, values percent-decoded. service.name is returned
// apart.
func resourceAttributes(s string, add func(string, ...any)) (attrs []attribute.KeyValue, service string) {
	if strings.TrimSpace(s) == "" {
		return nil, ""
	}
	seen := map[string]bool{}
	for i, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		switch {
		case !ok || k == "":
			add("OTEL_RESOURCE_ATTRIBUTES: entry %d is not key=value", i+1)
			continue
		case err != nil:
			add("OTEL_RESOURCE_ATTRIBUTES: the value of %s is not percent-encoded correctly", k)
			continue
		case seen[k]:
			continue
		}
		seen[k] = true
		if k == "service.name" {
			service = dv
			continue
		}
		if len(attrs) == maxResourceAttributes {
			add("OTEL_RESOURCE_ATTRIBUTES has more than %d entries", maxResourceAttributes)
			break
		}
		attrs = append(attrs, attribute.String(k, dv))
	}
	return attrs, service
}
