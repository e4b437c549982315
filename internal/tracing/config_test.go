package tracing

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  Env
		want Config
	}{
		{name: "nothing set: off", env: Env{}, want: Config{}},
		{
			name: "base endpoint gets /v1/traces",
			env:  Env{Endpoint: "http://localhost:4318"},
			want: Config{URL: "http://localhost:4318/v1/traces"},
		},
		{
			name: "base endpoint with a path and a slash",
			env:  Env{Endpoint: "https://otlp.example.com/otlp/"},
			want: Config{URL: "https://otlp.example.com/otlp/v1/traces"},
		},
		{
			name: "base endpoint with a path without a slash",
			env:  Env{Endpoint: "https://otlp.example.com/otlp"},
			want: Config{URL: "https://otlp.example.com/otlp/v1/traces"},
		},
		{
			name: "traces endpoint is used as it is, and wins",
			env:  Env{Endpoint: "https://a.example.com", TracesEndpoint: "https://b.example.com/custom"},
			want: Config{URL: "https://b.example.com/custom"},
		},
		{
			name: "traces endpoint without a path gets /",
			env:  Env{TracesEndpoint: "https://b.example.com:4318"},
			want: Config{URL: "https://b.example.com:4318/"},
		},
		{
			name: "headers percent-decoded and trimmed",
			env:  Env{Endpoint: "https://api.honeycomb.io", Headers: " x-honeycomb-team = abc%3D%3D , x-other=two%20words ,"},
			want: Config{URL: "https://api.honeycomb.io/v1/traces", Headers: map[string]string{"x-honeycomb-team": "abc==", "x-other": "two words"}},
		},
		{
			name: "traces headers replace the general ones",
			env:  Env{Endpoint: "https://c.example.com", Headers: "a=1", TracesHeaders: "b=2"},
			want: Config{URL: "https://c.example.com/v1/traces", Headers: map[string]string{"b": "2"}},
		},
		{
			name: "headers over http to loopback are fine",
			env:  Env{Endpoint: "http://127.0.0.1:4318", Headers: "authorization=Bearer%20x"},
			want: Config{URL: "http://127.0.0.1:4318/v1/traces", Headers: map[string]string{"authorization": "Bearer x"}},
		},
		{
			name: "plain http to a collector on a private network, no headers",
			env:  Env{Endpoint: "http://otel-collector:4318"},
			want: Config{URL: "http://otel-collector:4318/v1/traces"},
		},
		{
			name: "json, gzip, timeout in ms (traces variants win)",
			env: Env{Endpoint: "https://c.example.com", Protocol: "grpc", TracesProtocol: "http/json",
				Compression: "none", TracesCompression: "GZIP", Timeout: "bad", TracesTimeout: "2500"},
			want: Config{URL: "https://c.example.com/v1/traces", JSON: true, Gzip: true, Timeout: 2500 * time.Millisecond},
		},
		{
			name: "general protocol, compression and timeout",
			env:  Env{Endpoint: "https://c.example.com", Protocol: "http/protobuf", Compression: "gzip", Timeout: "1"},
			want: Config{URL: "https://c.example.com/v1/traces", Gzip: true, Timeout: time.Millisecond},
		},
		{
			name: "service name and resource attributes; OTEL_SERVICE_NAME wins",
			env: Env{Endpoint: "https://c.example.com", ServiceName: " edge ",
				ResourceAttributes: "service.name=ignored,deployment.environment=prod,team=a%2Cb"},
			want: Config{URL: "https://c.example.com/v1/traces", ServiceName: "edge",
				Resource: []attribute.KeyValue{attribute.String("deployment.environment", "prod"), attribute.String("team", "a,b")}},
		},
		{
			name: "service.name from the resource attributes",
			env:  Env{Endpoint: "https://c.example.com", ResourceAttributes: "service.name=from-attrs"},
			want: Config{URL: "https://c.example.com/v1/traces", ServiceName: "from-attrs"},
		},
		{
			name: "ratio sampler",
			env:  Env{Endpoint: "https://c.example.com", Sampler: "ParentBased_TraceIdRatio", SamplerArg: "0.25"},
			want: Config{URL: "https://c.example.com/v1/traces", Sampler: Sampler{Name: SamplerParentBasedTraceIDRatio, Ratio: 0.25}},
		},
		{
			name: "ratio sampler without an argument keeps everything",
			env:  Env{Endpoint: "https://c.example.com", Sampler: "traceidratio"},
			want: Config{URL: "https://c.example.com/v1/traces", Sampler: Sampler{Name: SamplerTraceIDRatio, Ratio: 1}},
		},
		{
			name: "an argument for a sampler that takes none is ignored",
			env:  Env{Endpoint: "https://c.example.com", Sampler: "always_off", SamplerArg: "junk"},
			want: Config{URL: "https://c.example.com/v1/traces", Sampler: Sampler{Name: SamplerAlwaysOff, Ratio: 1}},
		},
		{
			name: "OTEL_SDK_DISABLED turns it off",
			env:  Env{Endpoint: "https://c.example.com", SDKDisabled: "TRUE"},
			want: Config{},
		},
		{
			name: "OTEL_TRACES_EXPORTER=none turns it off",
			env:  Env{Endpoint: "https://c.example.com", TracesExporter: "none"},
			want: Config{},
		},
		{
			name: "OTEL_TRACES_EXPORTER=otlp and OTEL_SDK_DISABLED=false leave it on",
			env:  Env{Endpoint: "https://c.example.com", TracesExporter: "otlp", SDKDisabled: "false"},
			want: Config{URL: "https://c.example.com/v1/traces"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.env.Parse()
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tc.want
			if want.URL != "" {
				if want.ServiceName == "" {
					want.ServiceName = DefaultServiceName
				}
				if want.Timeout == 0 {
					want.Timeout = DefaultTimeout
				}
				if want.Sampler.Name == "" {
					want.Sampler = Sampler{Name: SamplerParentBasedAlwaysOn, Ratio: 1}
				}
			} else {
				// Off: nothing else matters.
				got = Config{URL: got.URL}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
			}
			if got.Enabled() != (want.URL != "") {
				t.Errorf("Enabled = %v", got.Enabled())
			}
		})
	}
}

func TestParseProblems(t *testing.T) {
	const secret = "s3cr3t-api-key"
	for _, tc := range []struct {
		name string
		env  Env
		want []string // each must be in one problem
	}{
		{"not a URL", Env{Endpoint: "collector:4318"}, []string{"OTEL_EXPORTER_OTLP_ENDPOINT is not an absolute"}},
		{"grpc scheme", Env{TracesEndpoint: "grpc://collector:4317"}, []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http or https URL"}},
		{"user information", Env{Endpoint: "https://user:" + secret + "@c.example.com"}, []string{"must not carry user information"}},
		{"query", Env{Endpoint: "https://c.example.com/?key=" + secret}, []string{"must not have a query"}},
		{"fragment", Env{Endpoint: "https://c.example.com/#x"}, []string{"must not have a query or fragment"}},
		{"header without =", Env{Endpoint: "https://c.example.com", Headers: "a=1," + secret}, []string{"OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value"}},
		{"header with a bad key", Env{Endpoint: "https://c.example.com", TracesHeaders: "bad key=" + secret}, []string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS: entry 1: the key is not an HTTP header name"}},
		{"header with a bad value", Env{Endpoint: "https://c.example.com", Headers: "api-key=" + secret + "%0A"}, []string{"the value of api-key is not a valid"}},
		{"header with bad escaping", Env{Endpoint: "https://c.example.com", Headers: "api-key=" + secret + "%zz"}, []string{"the value of api-key is not a valid"}},
		{"too many headers", Env{Endpoint: "https://c.example.com", Headers: manyHeaders(maxHeaders + 1)}, []string{"more than 32 entries"}},
		{"headers too long", Env{Endpoint: "https://c.example.com", Headers: "k=" + strings.Repeat("v", maxHeaderBytes)}, []string{"longer than"}},
		{"headers in clear text to a remote host", Env{Endpoint: "http://collector.example.com:4318", Headers: "api-key=" + secret}, []string{"would be sent in clear text"}},
		{"grpc protocol", Env{Endpoint: "https://c.example.com", Protocol: "grpc"}, []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported"}},
		{"unknown protocol", Env{Endpoint: "https://c.example.com", TracesProtocol: "thrift"}, []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=\"thrift\" must be"}},
		{"timeout not a number", Env{Endpoint: "https://c.example.com", Timeout: "10s"}, []string{"OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\" must be a whole number of milliseconds"}},
		{"timeout zero", Env{Endpoint: "https://c.example.com", TracesTimeout: "0"}, []string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"}},
		{"timeout too long", Env{Endpoint: "https://c.example.com", Timeout: "600001"}, []string{"between 1 and 60000"}},
		{"compression", Env{Endpoint: "https://c.example.com", Compression: "zstd"}, []string{"OTEL_EXPORTER_OTLP_COMPRESSION=\"zstd\" must be gzip or none"}},
		{"sampler", Env{Endpoint: "https://c.example.com", Sampler: "jaeger_remote"}, []string{"OTEL_TRACES_SAMPLER=\"jaeger_remote\" must be one of"}},
		{"sampler ratio above 1", Env{Endpoint: "https://c.example.com", Sampler: "traceidratio", SamplerArg: "1.5"}, []string{"OTEL_TRACES_SAMPLER_ARG=\"1.5\""}},
		{"sampler ratio not a number", Env{Endpoint: "https://c.example.com", Sampler: "parentbased_traceidratio", SamplerArg: "half"}, []string{"OTEL_TRACES_SAMPLER_ARG"}},
		{"disabled not a boolean", Env{SDKDisabled: "yes"}, []string{"OTEL_SDK_DISABLED=\"yes\" must be true or false"}},
		{"exporter", Env{TracesExporter: "console"}, []string{"OTEL_TRACES_EXPORTER=\"console\""}},
		{"resource attribute without =", Env{ResourceAttributes: "a=1,b"}, []string{"OTEL_RESOURCE_ATTRIBUTES: entry 2 is not key=value"}},
		{"resource attribute bad escaping", Env{ResourceAttributes: "a=%zz"}, []string{"the value of a is not percent-encoded"}},
		{"several problems at once", Env{Endpoint: "ftp://x", Protocol: "grpc", Sampler: "x"},
			[]string{"OTEL_EXPORTER_OTLP_ENDPOINT must be an http", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_TRACES_SAMPLER=\"x\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.env.Parse()
			var p Problems
			if !errors.As(err, &p) {
				t.Fatalf("Parse = %+v, %v; want Problems", c, err)
			}
			if c.Enabled() {
				t.Errorf("a configuration with problems is enabled: %+v", c)
			}
			for _, w := range tc.want {
				found := false
				for _, prob := range p {
					found = found || strings.Contains(prob, w)
				}
				if !found {
					t.Errorf("no problem contains %q: %q", w, p)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("a problem quotes the secret: %v", err)
			}
		})
	}
}

func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("k")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("=v")
	}
	return b.String()
}

// FuzzParse: whatever the variables hold, Parse neither panics nor quotes
// a header value in a problem, and a configuration it accepts has an
// http(s) URL without credentials.
func FuzzParse(f *testing.F) {
	f.Add("http://localhost:4318", "", "a=b", "traceidratio", "0.5", "service.name=x")
	f.Add("", "https://c.example.com/v1/traces", "api-key=%41%42", "", "", "")
	f.Add("https://u:p@c.example.com", "", "k=v,,=,x", "always_on", "2", "a=%zz")
	f.Add("http://c.example.com", "", "k=SECRETVALUE", "", "", "")
	f.Fuzz(func(t *testing.T, endpoint, traces, headers, sampler, arg, attrs string) {
		c, err := Env{Endpoint: endpoint, TracesEndpoint: traces, Headers: headers, Sampler: sampler, SamplerArg: arg, ResourceAttributes: attrs}.Parse()
		if err != nil {
			for _, pair := range strings.Split(headers, ",") {
				if _, v, ok := strings.Cut(pair, "="); ok && len(strings.TrimSpace(v)) >= 8 && strings.Contains(err.Error(), strings.TrimSpace(v)) &&
					!strings.Contains(endpoint+traces+sampler+arg+attrs, strings.TrimSpace(v)) {
					t.Fatalf("a problem quotes a header value %q: %v", v, err)
				}
			}
			return
		}
		if c.URL == "" {
			return
		}
		if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
			t.Fatalf("accepted URL %q", c.URL)
		}
		if strings.Contains(c.URL, "@") && strings.Contains(strings.SplitN(c.URL[8:], "/", 2)[0], "@") {
			t.Fatalf("accepted URL with user information %q", c.URL)
		}
		if c.Sampler.Ratio < 0 || c.Sampler.Ratio > 1 {
			t.Fatalf("ratio %v", c.Sampler.Ratio)
		}
	})
}
