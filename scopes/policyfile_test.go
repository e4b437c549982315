package scopes_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// problem is an expected problem: its line and a substring of its message.
type problem struct {
	line int
	msg  string
}

func TestParsePolicyProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []problem
	}{
		{"empty", "", []problem{{0, "empty"}}},
		{"only a comment", "# nothing\n", []problem{{0, "empty"}}},
		{"bad YAML", "default: [\n", []problem{{1, "not valid YAML"}}},
		{"bad YAML later", "default: deny\ntools:\n  a: b: c\n", []problem{{3, "not valid YAML"}}},
		{"tab indentation", "tools:\n\techo: []\n", []problem{{2, "not valid YAML"}}},
		{"two documents", "default: deny\n---\ndefault: []\n", []problem{{2, "single YAML document"}}},
		{"not a mapping", "- a\n- b\n", []problem{{1, "must be a mapping"}}},
		{"a scalar", "deny\n", []problem{{1, "must be a mapping"}}},
		{"unknown top-level key", "default: deny\ntool:\n  echo: []\n", []problem{{2, `unknown key "tool"`}}},
		{"duplicate top-level key", "default: deny\ndefault: []\n", []problem{{2, `"default" is already a key`}}},
		{"default a word", "default: allow\n", []problem{{1, "must be deny or a list of scopes"}}},
		{"default null", "default:\n", []problem{{1, "has no value"}}},
		{"default a mapping", "default: {a: b}\n", []problem{{1, "must be deny or a list of scopes"}}},
		{"default a number", "default: 5\n", []problem{{1, "must be deny or a list"}}},
		{"scope list in a string", "tools:\n  get-sum: math:add\n", []problem{{2, "[math:add]"}}},
		{"tool without a value", "tools:\n  echo:\n", []problem{{2, `the rule for "echo" has no value: write []`}}},
		{"empty scope", "tools:\n  echo: [\"\"]\n", []problem{{2, "empty scope"}}},
		{"scope with a space", "tools:\n  echo: [\"a b\"]\n", []problem{{2, `scope "a b" contains a space`}}},
		{"scope with a quote", "tools:\n  echo: ['a\"b']\n", []problem{{2, "RFC 6749 §3.3"}}},
		{"scope with a backslash", "tools:\n  echo: ['a\\b']\n", []problem{{2, "RFC 6749 §3.3"}}},
		{"scope non-ASCII", "tools:\n  echo: [añadir]\n", []problem{{2, "RFC 6749 §3.3"}}},
		{"scope null", "tools:\n  echo: [~]\n", []problem{{2, "a scope in the rule for \"echo\" is missing"}}},
		{"scope a list", "tools:\n  echo: [[a]]\n", []problem{{2, "must be a string, not a list"}}},
		{"tools a list", "tools: [echo]\n", []problem{{1, "tools must be a mapping"}}},
		{"tools null", "tools:\n", []problem{{1, "tools must be a mapping"}}},
		{"duplicate tool", "tools:\n  echo: []\n  get: []\n  echo: [a]\n", []problem{{4, `"echo" is already a key in tools, at line 2`}}},
		{"tool name with a space", "tools:\n  get sum: []\n", []problem{{2, `"get sum" contains a space`}}},
		{"tool name with a slash", "tools:\n  a/b: []\n", []problem{{2, `"a/b" contains "/"`}}},
		{"tool name non-ASCII", "tools:\n  café: []\n", []problem{{2, "non-ASCII"}}},
		{"tool name too long", "tools:\n  " + strings.Repeat("a", 129) + ": []\n", []problem{{2, "129 characters"}}},
		{"tool name empty", "tools:\n  \"\": []\n", []problem{{2, "empty tool name"}}},
		{"tool name null", "tools:\n  ~: []\n", []problem{{2, "a key in tools is missing"}}},
		{"glob with a bracket", "tools:\n  \"admin-[ab]*\": []\n", []problem{{2, `glob "admin-[ab]*" contains "["`}}},
		{"name with a bracket", "tools:\n  \"admin-[ab]\": []\n", []problem{{2, `tool name "admin-[ab]" contains "["`}}},
		{"glob with a slash", "tools:\n  \"admin/*\": []\n", []problem{{2, `contains "/"`}}},
		{"glob with a backslash", "tools:\n  'a\\*': []\n", []problem{{2, `contains "\\"`}}},
		{"glob matching everything", "tools:\n  \"*\": []\n", []problem{{2, "matches every tool"}}},
		{"glob of stars", "tools:\n  \"***\": []\n", []problem{{2, "matches every tool"}}},
		{"glob too long to match", "tools:\n  \"" + strings.Repeat("?", 129) + "*\": []\n", []problem{{2, "can never match"}}},
		{"argument rule on a glob", "tools:\n  \"a*\":\n    argument: x\n    values: {a: []}\n", []problem{{2, "needs an exact tool name"}}},
		{"argument rule without values", "tools:\n  calc:\n    argument: op\n", []problem{{2, `the rule for "calc" has no values`}}},
		{"argument rule with empty values", "tools:\n  calc:\n    argument: op\n    values: {}\n", []problem{{4, "values of the rule for \"calc\" are empty"}}},
		{"argument rule values a list", "tools:\n  calc:\n    argument: op\n    values: [add]\n", []problem{{4, "must be a mapping"}}},
		{"argument rule without argument", "tools:\n  calc:\n    values: {add: []}\n", []problem{{2, `the rule for "calc" has no argument`}}},
		{"argument empty", "tools:\n  calc:\n    argument: \"\"\n    values: {add: []}\n", []problem{{3, "argument of the rule for \"calc\" is empty"}}},
		{"argument not a string", "tools:\n  calc:\n    argument: [op]\n    values: {add: []}\n", []problem{{3, "must be a string"}}},
		{"unknown key in a rule", "tools:\n  calc:\n    argument: op\n    value: {add: []}\n", []problem{{2, "has no values"}, {4, `unknown key "value"`}}},
		{"duplicate argument value", "tools:\n  calc:\n    argument: op\n    values:\n      add: []\n      add: [x]\n", []problem{{6, `"add" is already a key in the values of the rule for "calc"`}}},
		{"bad scope in a value", "tools:\n  calc:\n    argument: op\n    values:\n      add: [\"a b\"]\n", []problem{{5, "contains a space"}}},
		{"bad rule default", "tools:\n  calc:\n    argument: op\n    values: {add: []}\n    default: allow\n", []problem{{5, "the default of the rule for \"calc\" must be deny or a list"}}},
		{"scopes not a mapping", "scopes: [a]\n", []problem{{1, "scopes must be a mapping"}}},
		{"described scope invalid", "scopes:\n  \"a b\": x\n", []problem{{2, "contains a space"}}},
		{"description not a string", "scopes:\n  a: [x]\n", []problem{{2, `the description of "a" must be a string`}}},
		{"description missing", "scopes:\n  a:\n", []problem{{2, `the description of "a" is missing`}}},
		{"duplicate described scope", "scopes:\n  a: x\n  a: y\n", []problem{{3, `"a" is already a key in scopes`}}},
		{"anchor and alias", "default: &d [a]\ntools:\n  echo: *d\n", []problem{{1, "anchors (&d)"}, {3, "aliases (*d)"}}},
		{"merge key", "tools:\n  base: &b {argument: x, values: {a: []}}\n  calc:\n    <<: *b\n", []problem{{2, "anchors"}, {3, "has no argument"}, {3, "has no values"}, {4, "aliases"}, {4, `unknown key "<<"`}}},
		{"tag", "default: !!binary aGk=\n", []problem{{1, "tags are not allowed"}}},
		{"custom tag", "tools:\n  echo: [!x a]\n", []problem{{2, "tags are not allowed"}}},
		{"complex key", "tools:\n  ? [a]\n  : []\n", []problem{{2, "must be a string, not a list"}}},
		{
			"every problem at once, in line order",
			"default: maybe\ntools:\n  echo:\n  \"bad name\": []\n  ok: [\"\"]\n  \"*\": []\n  calc:\n    argument: op\n  echo: deny\nextra: 1\n",
			[]problem{{1, "default must be deny"}, {3, "has no value"}, {4, "contains a space"}, {5, "empty scope"}, {6, "matches every tool"}, {7, "has no values"}, {9, `"echo" is already a key`}, {10, `unknown key "extra"`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := scopes.ParsePolicy([]byte(tt.doc))
			var pe *scopes.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePolicy(%q) = %v, %v; want a *PolicyError", tt.doc, p, err)
			}
			if p != nil {
				t.Errorf("a policy came with the error")
			}
			if len(pe.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(pe.Problems), len(tt.want), err)
			}
			for i, w := range tt.want {
				g := pe.Problems[i]
				if g.Line != w.line || !strings.Contains(g.Msg, w.msg) {
					t.Errorf("problem %d = line %d %q; want line %d containing %q", i, g.Line, g.Msg, w.line, w.msg)
				}
			}
			// The error's text names every problem with its line.
			for _, g := range pe.Problems {
				if !strings.Contains(err.Error(), g.String()) {
					t.Errorf("Error() %q lacks %q", err, g.String())
				}
				if g.Line > 0 && !strings.HasPrefix(g.String(), fmt.Sprintf("line %d: ", g.Line)) {
					t.Errorf("Problem.String() = %q", g.String())
				}
			}
		})
	}
}

func TestParsePolicyAccepts(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		tool  string
		args  map[string]string
		want  []string
		deny  bool
		tools []string
	}{
		{name: "the issue's example", doc: `
default: deny
scopes:
  op:add: Add numbers
tools:
  echo: []
  get-sum: [math:add]
  "admin-*": [admin]
  calculator:
    argument: operation
    values: {add: [op:add], subtract: [op:sub], multiply: [op:mult], divide: [op:div]}
`, tool: "admin-x", want: []string{"admin"}, tools: []string{"echo", "get-sum", "calculator"}},
		{name: "JSON", doc: `{"default": [], "tools": {"get-sum": ["math:add"], "calculator": {"argument": "operation", "values": {"add": ["op:add"]}, "default": "deny"}}}`, tool: "calculator", args: map[string]string{"operation": "add"}, want: []string{"op:add"}, tools: []string{"get-sum", "calculator"}},
		{name: "JSON with tabs", doc: "{\n\t\"default\": \"deny\",\n\t\"tools\": {\"echo\": []}\n}\n", tool: "echo", tools: []string{"echo"}},
		{name: "block lists", doc: "tools:\n  get-sum:\n    - math:add\n    - math\n", tool: "get-sum", want: []string{"math:add", "math"}, tools: []string{"get-sum"}},
		{name: "numbers and booleans are names", doc: "tools:\n  2fa: []\n  123: [7]\n  \"true\": []\n", tool: "123", want: []string{"7"}, tools: []string{"2fa", "123", "true"}},
		{name: "quoted deny is deny", doc: "tools:\n  legacy: \"deny\"\n", tool: "legacy", deny: true, tools: []string{"legacy"}},
		{name: "explicit str tag", doc: "tools:\n  echo: [!!str 123]\n", tool: "echo", want: []string{"123"}, tools: []string{"echo"}},
		{name: "empty argument value", doc: "tools:\n  c:\n    argument: op\n    values: {\"\": [x]}\n", tool: "c", args: map[string]string{"op": ""}, want: []string{"x"}, tools: []string{"c"}},
		{name: "value with spaces", doc: "tools:\n  c:\n    argument: op\n    values: {\"a b\": [x]}\n", tool: "c", args: map[string]string{"op": "a b"}, want: []string{"x"}, tools: []string{"c"}},
		{name: "all scope-token characters", doc: "tools:\n  c: ['!#$%&()*+,-./:;<=>?@[]^_`{|}~']\n", tool: "c", want: []string{"!#$%&()*+,-./:;<=>?@[]^_`{|}~"}, tools: []string{"c"}},
		{name: "longest tool name", doc: "tools:\n  " + strings.Repeat("a", 128) + ": [x]\n", tool: strings.Repeat("a", 128), want: []string{"x"}, tools: []string{strings.Repeat("a", 128)}},
		{name: "only a default", doc: "default: []\n", tool: "anything", tools: nil},
		{name: "CRLF line ends", doc: "default: deny\r\ntools:\r\n  echo: []\r\n", tool: "echo", tools: []string{"echo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.doc)
			r := p.Requirement(tt.tool, args(tt.args))
			if r.Denied != tt.deny || !slices.Equal(r.Scopes(), tt.want) {
				t.Errorf("Requirement(%q) = %+v %q; want denied %v, %q", tt.tool, r, r.Scopes(), tt.deny, tt.want)
			}
			if got := p.Tools(); !slices.Equal(got, tt.tools) {
				t.Errorf("Tools() = %q, want %q", got, tt.tools)
			}
			assertRoundTrip(t, p)
		})
	}
}

// Bounds on what the parser is handed.
func TestParsePolicyBounds(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		doc := "default: deny\n# " + strings.Repeat("x", scopes.MaxPolicyBytes) + "\n"
		_, err := scopes.ParsePolicy([]byte(doc))
		var pe *scopes.PolicyError
		if !errors.As(err, &pe) || len(pe.Problems) != 1 || !strings.Contains(pe.Problems[0].Msg, "bytes") {
			t.Fatalf("ParsePolicy(%d bytes) = %v", len(doc), err)
		}
	})
	t.Run("just under the size", func(t *testing.T) {
		doc := "default: deny\n# "
		doc += strings.Repeat("x", scopes.MaxPolicyBytes-len(doc)-1) + "\n"
		if _, err := scopes.ParsePolicy([]byte(doc)); err != nil {
			t.Fatalf("ParsePolicy(%d bytes) = %v", len(doc), err)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		n := scopes.MaxPolicyBytes/2 - 20
		doc := "default: " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
		if _, err := scopes.ParsePolicy([]byte(doc)); err == nil {
			t.Fatal("a deeply nested policy parsed")
		}
	})
	t.Run("alias bomb", func(t *testing.T) {
		// The classic billion laughs: refused for its anchors, and never
		// expanded on the way.
		var b strings.Builder
		b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i < 10; i++ {
			fmt.Fprintf(&b, "a%d: &a%d [", i, i)
			for j := 0; j < 10; j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "*a%d", i-1)
			}
			b.WriteString("]\n")
		}
		b.WriteString("default: *a9\n")
		_, err := scopes.ParsePolicy([]byte(b.String()))
		var pe *scopes.PolicyError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "anchors") {
			t.Fatalf("ParsePolicy(alias bomb) = %v", err)
		}
	})
}

// assertRoundTrip: the policy's rendering parses back to a policy with the
// same listings and the same decisions for every rule and value.
func assertRoundTrip(t *testing.T, p *scopes.Policy) {
	t.Helper()
	doc := p.YAML()
	q, err := scopes.ParsePolicy(doc)
	if err != nil {
		t.Fatalf("the rendering does not parse: %v\n%s", err, doc)
	}
	if !slices.Equal(p.Scopes(), q.Scopes()) || !slices.Equal(p.Tools(), q.Tools()) || !slices.Equal(p.Described(), q.Described()) {
		t.Fatalf("round trip changed the listings:\n%s", doc)
	}
	for _, s := range p.Described() {
		if p.Describe(s) != q.Describe(s) {
			t.Fatalf("round trip changed the description of %q", s)
		}
	}
	if string(q.YAML()) != string(doc) {
		t.Fatalf("rendering is not stable:\n%s\n---\n%s", doc, q.YAML())
	}
	for _, tool := range append(p.Tools(), "unknown-tool-x", "") {
		values := append(p.ArgumentValues(tool), "", "unlisted value")
		for _, v := range values {
			a, b := p.Requirement(tool, scopes.Arg(p.Argument(tool), v)), q.Requirement(tool, scopes.Arg(q.Argument(tool), v))
			if a.Denied != b.Denied || a.Visible != b.Visible || !slices.Equal(a.Scopes(), b.Scopes()) {
				t.Fatalf("round trip changed the decision for %q %q: %+v vs %+v", tool, v, a, b)
			}
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"default: deny\ntools:\n  echo: []\n  get-sum: [math:add]\n  \"admin-*\": [admin]\n  calculator:\n    argument: operation\n    values: {add: [op:add], subtract: [op:sub]}\n",
		calculatorYAML,
		`{"default": [], "tools": {"a": ["x"], "b*": "deny"}}`,
		"scopes:\n  op: All\ntools:\n  c:\n    argument: x\n    values: {a: deny}\n    default: [y]\n",
		"default: &a [x]\ntools:\n  e: *a\n",
		"default: maybe\ntools:\n  echo:\n  \"bad name\": []\n",
		"tools:\n  \"?*?\": [a]\n  \"a*b\": [c]\n  \"*-x\": deny\n",
		"", "---\n---\n", "[", "default: [\"\\\"\"]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := scopes.ParsePolicy(data)
		if err != nil {
			var pe *scopes.PolicyError
			if p != nil || !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("ParsePolicy error %T %v with policy %v", err, err, p)
			}
			lines := strings.Count(string(data), "\n") + strings.Count(string(data), "\r") + 2 // YAML breaks lines at both
			for i, pr := range pe.Problems {
				if pr.Msg == "" || pr.Line < 0 || pr.Line > lines {
					t.Fatalf("problem %+v out of range (%d lines)", pr, lines)
				}
				if i > 0 && pr.Line < pe.Problems[i-1].Line {
					t.Fatalf("problems not in line order: %v", err)
				}
			}
			return
		}
		// Everything an accepted policy says is well formed.
		all := p.Scopes()
		for _, s := range append(all, p.Described()...) {
			if !scopes.ValidToken(s) {
				t.Fatalf("accepted scope %q is not a scope-token", s)
			}
		}
		for _, tool := range p.Tools() {
			if !scopes.ValidToolName(tool) {
				t.Fatalf("accepted tool name %q is not a valid MCP tool name", tool)
			}
			if p.Label(tool) != tool {
				t.Fatalf("Label(%q) = %q", tool, p.Label(tool))
			}
		}
		// Decisions are consistent with each other: a token holding every
		// scope the policy mentions may make every call the policy does not
		// deny, a token holding none only those that need none.
		for _, tool := range append(p.Tools(), "zz-not-named", "a") {
			arg := p.Argument(tool)
			for _, v := range append(p.ArgumentValues(tool), "unlisted-zz") {
				r := p.Requirement(tool, scopes.Arg(arg, v))
				if r.Denied {
					if p.Allowed(all, tool, scopes.Arg(arg, v)) == nil {
						t.Fatalf("a denied call of %q is allowed", tool)
					}
					continue
				}
				if !r.Visible {
					t.Fatalf("%q allowed but not visible", tool)
				}
				if err := p.Allowed(all, tool, scopes.Arg(arg, v)); err != nil {
					t.Fatalf("Allowed(all scopes, %q, %q) = %v", tool, v, err)
				}
				if !p.Callable(all, tool) {
					t.Fatalf("Callable(all, %q) = false but %q may be called", tool, v)
				}
				for _, s := range r.Scopes() {
					if !slices.Contains(all, s) {
						t.Fatalf("%q needs %q, which Scopes() does not list", tool, s)
					}
				}
				if (p.Allowed(nil, tool, scopes.Arg(arg, v)) == nil) != (len(r.Scopes()) == 0) {
					t.Fatalf("Allowed(nil, %q) disagrees with Scopes() %q", tool, r.Scopes())
				}
			}
		}
		assertRoundTrip(t, p)
	})
}
