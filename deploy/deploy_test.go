// Package deploy holds the files an operator imports next to the gateway:
// a Grafana dashboard and Prometheus alerting rules. This test keeps them
// honest: every metric, label and label value their PromQL uses must exist
// in a real scrape of the gateway's metrics registry, so renaming a metric
// in metrics/metrics.go without updating them fails here rather than as an
// empty panel or an alert that can never fire.
package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/mcp-gateway/mcp-gateway/gateway"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scrapeTimeLabels are attached by Prometheus when it scrapes, so they are
// never in the exposition itself; the dashboard filters on job.
var scrapeTimeLabels = map[string]bool{"job": true, "instance": true}

// series is every sample name in a scrape with the label sets it has.
type series map[string][]map[string]string

// scrape exercises the metrics of the built-in gateway (its real label
// sets) the way a running gateway does, serves them over HTTP like
// /metrics, and parses the exposition.
func scrape(t *testing.T) series {
	t.Helper()
	var outcomes []string
	for _, o := range gateway.AllAuthOutcomes() {
		outcomes = append(outcomes, string(o))
	}
	m := metrics.New(metrics.Labels{AuthOutcomes: outcomes, Tools: tools.Policy().Tools(), Operations: tools.Operations()})
	for _, r := range []struct {
		route  string
		status int
	}{
		{"/mcp", 200}, {"/mcp", 401}, {"/mcp", 403}, {"/mcp", 503}, {"/mcp", 500},
		{"/healthz", 200}, {"/readyz", 200}, {"/metrics", 200}, {"/", 200},
	} {
		m.HTTPRequest(r.route, r.status, 3*time.Millisecond)
	}
	m.AuthOutcome("ok")
	m.ToolCall(tools.CalculatorTool, "add", "ok")
	m.ToolCall(tools.CalculatorTool, "divide", "tool_error")
	m.ToolCall(tools.WhoamiTool, "", "ok")
	m.IntrospectionCall("active", 20*time.Millisecond)
	m.CacheHit()
	m.CacheMiss()
	m.CacheEviction()
	m.StaleUse()
	m.Shed("rate")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	s := series{}
	add := func(name string, labels []*dto.LabelPair, extra ...string) {
		set := map[string]string{}
		for _, l := range labels {
			set[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(extra); i += 2 {
			set[extra[i]] = extra[i+1]
		}
		s[name] = append(s[name], set)
	}
	for name, f := range families {
		for _, mt := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				for _, b := range mt.GetHistogram().GetBucket() {
					add(name+"_bucket", mt.GetLabel(), "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
				}
				add(name+"_bucket", mt.GetLabel(), "le", "+Inf")
				add(name+"_sum", mt.GetLabel())
				add(name+"_count", mt.GetLabel())
			case dto.MetricType_SUMMARY:
				for _, q := range mt.GetSummary().GetQuantile() {
					add(name, mt.GetLabel(), "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))
				}
				add(name+"_sum", mt.GetLabel())
				add(name+"_count", mt.GetLabel())
			default:
				add(name, mt.GetLabel())
			}
		}
	}
	return s
}

// checkExpr reports every metric, label or value expr uses that the scrape
// does not have.
func checkExpr(s series, expr string) []string {
	refs, err := extractPromQL(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(refs.selectors) == 0 {
		bad("no metric selector in %q", expr)
	}
	haveLabel := map[string]bool{}
	for _, sel := range refs.selectors {
		sets, ok := s[sel.metric]
		if !ok {
			bad("metric %s does not exist in /metrics", sel.metric)
			continue
		}
		for _, set := range sets {
			for l := range set {
				haveLabel[l] = true
			}
		}
		for _, m := range sel.matchers {
			if scrapeTimeLabels[m.label] {
				continue
			}
			var values []string
			for _, set := range sets {
				if v, ok := set[m.label]; ok && !slices.Contains(values, v) {
					values = append(values, v)
				}
			}
			if len(values) == 0 {
				bad("%s has no label %s", sel.metric, m.label)
				continue
			}
			if strings.Contains(m.value, "$") {
				continue // a dashboard variable
			}
			switch m.op {
			case "=", "!=":
				if !slices.Contains(values, m.value) {
					bad("%s{%s%s%q}: no series has %s=%q (it has %v)", sel.metric, m.label, m.op, m.value, m.label, m.value, values)
				}
			case "=~", "!~":
				// Each alternative must name, or match, a real value: a
				// renamed reason or outcome must not silently match nothing.
				for _, alt := range strings.Split(m.value, "|") {
					re, err := regexp.Compile("^(?:" + alt + ")$")
					if err != nil {
						bad("%s{%s%s%q}: %v", sel.metric, m.label, m.op, m.value, err)
						continue
					}
					if !slices.ContainsFunc(values, re.MatchString) {
						bad("%s{%s%s%q}: %q matches none of %v", sel.metric, m.label, m.op, m.value, alt, values)
					}
				}
			}
		}
	}
	for _, l := range refs.grouping {
		if !haveLabel[l] && !scrapeTimeLabels[l] {
			bad("grouping label %s is on none of the expression's metrics", l)
		}
	}
	return problems
}

// alertRules is the Prometheus rule file format (groups of rules).
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRulesUseRealMetrics(t *testing.T) {
	s := scrape(t)
	b, err := os.ReadFile("prometheus-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("prometheus-alerts.yml: %v", err)
	}
	var names []string
	for _, g := range rules.Groups {
		if g.Name == "" {
			t.Error("a rule group has no name")
		}
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("rule %+v needs alert and expr", r)
				continue
			}
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			for _, p := range checkExpr(s, r.Expr) {
				t.Errorf("%s: %s", r.Alert, p)
			}
		}
	}
	// The alerts an operator needs first.
	for _, want := range []string{
		"McpGatewayAuthorizationServerUnavailable", "McpGatewayRefusalSpike", "McpGatewayShedding",
		"McpGatewayCacheHitRatioLow", "McpGatewayHighLatencyP99",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// dashboard is the part of Grafana's dashboard JSON model this test reads.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
}

func TestDashboardUsesRealMetrics(t *testing.T) {
	s := scrape(t)
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard title %q uid %q schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "datasource") || !slices.Contains(vars, "job") {
		t.Errorf("template variables %v, want datasource and job", vars)
	}
	ids := map[int]bool{}
	var exprs []string
	var titles []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d is used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
			}
			titles = append(titles, p.Title)
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
				for _, prob := range checkExpr(s, tg.Expr) {
					t.Errorf("panel %q %s: %s", p.Title, tg.RefID, prob)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	// What an operator opens first: each has a panel over its metric.
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		"mcp_gateway_auth_outcomes_total", "mcp_gateway_http_requests_total",
		"mcp_gateway_http_request_duration_seconds_bucket", "mcp_gateway_introspection_calls_total",
		"mcp_gateway_introspection_duration_seconds_bucket", "mcp_gateway_cache_lookups_total",
		"mcp_gateway_cache_stale_uses_total", "mcp_gateway_introspection_shed_total",
		"mcp_gateway_tool_calls_total", "go_goroutines", "go_memstats_heap_alloc_bytes",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel queries %s", want)
		}
	}
}

// TestCheckExprCatchesDrift: the checker itself fails on a renamed metric,
// a missing label, a value no series has and an alternative that matches
// nothing, and passes the real names.
func TestCheckExprCatchesDrift(t *testing.T) {
	s := scrape(t)
	tests := []struct {
		expr string
		want string // substring of the first problem; "" for none
	}{
		{`sum(rate(mcp_gateway_auth_outcomes_total{reason="unavailable"}[5m]))`, ""},
		{`sum(rate(mcp_gateway_auth_outcome_total[5m]))`, "metric mcp_gateway_auth_outcome_total does not exist"},
		{`mcp_gateway_auth_outcomes_total{outcome="ok"}`, "has no label outcome"},
		{`mcp_gateway_auth_outcomes_total{reason="unreachable"}`, `no series has reason="unreachable"`},
		{`mcp_gateway_introspection_calls_total{outcome=~"timeout|netwrk"}`, `"netwrk" matches none`},
		{`mcp_gateway_http_requests_total{code=~"5.."}`, ""},
		{`sum by (le, route) (rate(mcp_gateway_http_request_duration_seconds_bucket[5m]))`, ""},
		{`sum by (path) (rate(mcp_gateway_http_requests_total[5m]))`, "grouping label path"},
		{`go_gc_duration_seconds{quantile="1", job=~"$job"}`, ""},
		{`rate(x[5m]`, "unbalanced"},
	}
	for _, tt := range tests {
		problems := checkExpr(s, tt.expr)
		if tt.want == "" && len(problems) > 0 {
			t.Errorf("%s: unexpected %q", tt.expr, problems)
		}
		if tt.want != "" && (len(problems) == 0 || !strings.Contains(problems[0], tt.want)) {
			t.Errorf("%s: problems %q, want %q", tt.expr, problems, tt.want)
		}
	}
}

// A small PromQL reader. The Prometheus parser
// (github.com/prometheus/prometheus/promql/parser) would be the exact tool,
// but the prometheus module is too heavy a dependency for one test: v0.316
// requires go 1.26.7 (this module says 1.26.0), and its parser package
// pulls tsdb, storage and histogram packages into the build. This file's
// expressions use a small, regular subset of PromQL (selectors with
// matchers, range brackets, function and aggregation calls, by/without/on/
// ignoring label lists, numbers, arithmetic and comparison), which the
// reader below understands; anything it cannot account for (an unbalanced
// bracket, a stray "$") is an error, not a guess.

// promqlRefs is what an expression refers to.
type promqlRefs struct {
	selectors []promSelector
	grouping  []string // label names in by, without, on, ignoring, group_left, group_right
}

type promSelector struct {
	metric   string
	matchers []promMatcher
}

type promMatcher struct{ label, op, value string }

type promToken struct {
	kind byte // 'i' identifier, 's' string, 'n' number or duration, 'p' punctuation
	text string
}

// promKeywords are identifiers that are never metric names: aggregation
// operators (which may be followed by by/without instead of a parenthesis),
// binary set operators and modifiers.
var promKeywords = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true, "start": true, "end": true,
}

var promGrouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// grafanaVars are Grafana's interval variables, which stand where a
// duration does.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "5m", "$__range", "5m")

func lexPromQL(expr string) ([]promToken, error) {
	src := grafanaVars.Replace(expr)
	var toks []promToken
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdent(src[j]) {
				j++
			}
			toks = append(toks, promToken{'i', src[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (isIdent(src[j]) || src[j] == '.' || (src[j] == '+' || src[j] == '-') && (src[j-1] == 'e' || src[j-1] == 'E')) {
				j++
			}
			toks = append(toks, promToken{'n', src[i:j]})
			i = j
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string in %q", expr)
			}
			raw := src[i : j+1]
			val := raw[1 : len(raw)-1]
			if c == '"' {
				v, err := strconv.Unquote(raw)
				if err != nil {
					return nil, fmt.Errorf("string %s: %v", raw, err)
				}
				val = v
			}
			toks = append(toks, promToken{'s', val})
			i = j + 1
		case c == '$':
			return nil, fmt.Errorf("unexpected variable outside a string at %q", src[i:])
		default:
			if i+1 < len(src) {
				switch two := src[i : i+2]; two {
				case "=~", "!~", "!=", "==", ">=", "<=":
					toks = append(toks, promToken{'p', two})
					i += 2
					continue
				}
			}
			toks = append(toks, promToken{'p', string(c)})
			i++
		}
	}
	return toks, nil
}

// extractPromQL returns the selectors and grouping labels of expr.
func extractPromQL(expr string) (promqlRefs, error) {
	toks, err := lexPromQL(expr)
	if err != nil {
		return promqlRefs{}, err
	}
	var refs promqlRefs
	depth := map[string]int{}
	is := func(i int, text string) bool { return i < len(toks) && toks[i].kind == 'p' && toks[i].text == text }
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		switch {
		case tk.kind == 'i' && promGrouping[tk.text] && is(i+1, "("):
			j := i + 2
			for ; j < len(toks) && !is(j, ")"); j++ {
				if toks[j].kind == 'i' {
					refs.grouping = append(refs.grouping, toks[j].text)
				} else if !is(j, ",") {
					return refs, fmt.Errorf("unexpected %q in a label list of %q", toks[j].text, expr)
				}
			}
			if j == len(toks) {
				return refs, fmt.Errorf("unbalanced ( in %q", expr)
			}
			i = j
		case tk.kind == 'i' && is(i+1, "("):
			// a function or aggregation call; its parenthesis is counted below
		case tk.kind == 'i' && promKeywords[strings.ToLower(tk.text)]:
		case tk.kind == 'i' || tk.kind == 'p' && tk.text == "{":
			sel := promSelector{}
			if tk.kind == 'i' {
				sel.metric = tk.text
				i++
			}
			if is(i, "{") {
				j := i + 1
				for !is(j, "}") {
					if j+2 >= len(toks) || toks[j].kind != 'i' || toks[j+1].kind != 'p' || toks[j+2].kind != 's' {
						return refs, fmt.Errorf("cannot read the label matchers of %q", expr)
					}
					op := toks[j+1].text
					if op != "=" && op != "!=" && op != "=~" && op != "!~" {
						return refs, fmt.Errorf("matcher operator %q in %q", op, expr)
					}
					m := promMatcher{toks[j].text, op, toks[j+2].text}
					if m.label == "__name__" && op == "=" {
						sel.metric = m.value
					} else {
						sel.matchers = append(sel.matchers, m)
					}
					j += 3
					if is(j, ",") {
						j++
					}
				}
				i = j
			} else {
				i-- // no matchers: look at this token again
			}
			if sel.metric == "" {
				return refs, fmt.Errorf("a selector without a metric name in %q", expr)
			}
			refs.selectors = append(refs.selectors, sel)
		case tk.kind == 'p' && (tk.text == "(" || tk.text == "["):
			depth[tk.text]++
		case tk.kind == 'p' && tk.text == ")":
			depth["("]--
		case tk.kind == 'p' && tk.text == "]":
			depth["["]--
		}
		if depth["("] < 0 || depth["["] < 0 {
			return refs, fmt.Errorf("unbalanced brackets in %q", expr)
		}
	}
	if depth["("] != 0 || depth["["] != 0 {
		return refs, fmt.Errorf("unbalanced brackets in %q", expr)
	}
	return refs, nil
}

func TestExtractPromQL(t *testing.T) {
	tests := []struct {
		expr      string
		selectors string // metric{label op value,...} ...
		grouping  string
	}{
		{`up`, `up{}`, ``},
		{`sum by (le, route) (rate(a_bucket{route!~"/x|/y", job=~"$job"}[$__rate_interval]))`, `a_bucket{route!~/x|/y,job=~$job}`, `le route`},
		{`sum(rate(a{r="x"}[5m])) / clamp_min(sum(rate(b[5m])), 0.001) > 0.2`, `a{r=x} b{}`, ``},
		{"histogram_quantile(0.99,\n  sum by (le) (rate(h_bucket[5m]))\n) > 1", `h_bucket{}`, `le`},
		{`a and on(instance) b offset 5m`, `a{} b{}`, `instance`},
		{`{__name__="n", k='v'}`, `n{k=v}`, ``},
		{`sum(x) without (a) > bool 1e-3`, `x{}`, `a`},
		{`a{k="esc\"aped"}`, `a{k=esc"aped}`, ``},
	}
	for _, tt := range tests {
		refs, err := extractPromQL(tt.expr)
		if err != nil {
			t.Errorf("%q: %v", tt.expr, err)
			continue
		}
		var sels []string
		for _, s := range refs.selectors {
			var ms []string
			for _, m := range s.matchers {
				ms = append(ms, m.label+m.op+m.value)
			}
			sels = append(sels, s.metric+"{"+strings.Join(ms, ",")+"}")
		}
		if got := strings.Join(sels, " "); got != tt.selectors {
			t.Errorf("%q: selectors %s, want %s", tt.expr, got, tt.selectors)
		}
		if got := strings.Join(refs.grouping, " "); got != tt.grouping {
			t.Errorf("%q: grouping %s, want %s", tt.expr, got, tt.grouping)
		}
	}
	for _, bad := range []string{`rate(a[5m]`, `a{k=}`, `a{k="x"`, `a $x`, `sum by (le`, `a{k~"x"}`} {
		if _, err := extractPromQL(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzExtractPromQL: the reader never panics, and whatever it accepts has
// named selectors.
func FuzzExtractPromQL(f *testing.F) {
	for _, s := range []string{`up`, `sum by (le) (rate(a_bucket{x=~"a|b"}[5m]))`, `{__name__="x"}`, `a{`, `"`, `a[`, `by (`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		refs, err := extractPromQL(expr)
		if err != nil {
			return
		}
		for _, s := range refs.selectors {
			if s.metric == "" {
				t.Fatalf("%q: selector without a name", expr)
			}
		}
	})
}
