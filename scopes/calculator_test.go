package scopes_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// legacyForToolCall is the calculator-only policy as it was before
// policies were declared (scopes.go at commit fa91aa0), copied: the
// built-in policy must decide exactly as it did.
func legacyForToolCall(tool, operation string) []string {
	byOperation := map[string]string{"add": "op:add", "subtract": "op:sub", "multiply": "op:mult", "divide": "op:div"}
	if tool != "calculator" {
		return nil
	}
	if s, ok := byOperation[operation]; ok {
		return []string{s}
	}
	return nil
}

func TestCalculatorDecidesAsBefore(t *testing.T) {
	p := scopes.Calculator()
	tools := []string{scopes.CalculatorTool, scopes.WhoamiTool, "unknown-tool", "", "Calculator", "calculator2", "admin-x"}
	ops := append(scopes.Operations(), "", "modulo", "ADD", "Divide", "op:add", " add")
	grants := [][]string{nil, {"op"}, {"op:add"}, {"op:div"}, {"op:add", "op:sub", "op:mult", "op:div"}, {"profile"}, {"op:"}, {"o"}}
	for _, tool := range tools {
		for _, op := range ops {
			want := legacyForToolCall(tool, op)
			req := p.Requirement(tool, scopes.Arg("operation", op))
			if req.Denied || !req.Visible || !slices.Equal(req.Scopes(), want) {
				t.Errorf("Requirement(%q, %q) = %+v %q, want %q", tool, op, req, req.Scopes(), want)
			}
			if got := p.ForToolCall(tool, op); !slices.Equal(got, want) {
				t.Errorf("ForToolCall(%q, %q) = %q, want %q", tool, op, got, want)
			}
			for _, g := range grants {
				if got, want := p.Allowed(g, tool, scopes.Arg("operation", op)) == nil, scopes.Check(g, want) == nil; got != want {
					t.Errorf("Allowed(%q, %q, %q) = %v, want %v", g, tool, op, got, want)
				}
			}
		}
		// Without the argument at all, as a body without arguments.
		if r := p.Requirement(tool, nil); r.Denied || len(r.Scopes()) != 0 {
			t.Errorf("Requirement(%q, no arguments) = %+v %q, want any valid token", tool, r, r.Scopes())
		}
		if !p.Visible(tool) {
			t.Errorf("Visible(%q) = false", tool)
		}
	}
	// The operation scopes, in their old order, are the metadata's
	// scopes_supported, and the descriptions are the old ones.
	if got := p.Scopes(); !slices.Equal(got, scopes.All()) {
		t.Errorf("Scopes() = %q, want %q", got, scopes.All())
	}
	for _, s := range append(scopes.All(), scopes.Parent, "op:pow", "") {
		if got, want := p.Describe(s), scopes.Describe(s); got != want {
			t.Errorf("Describe(%q) = %q, want %q", s, got, want)
		}
	}
	if got, want := p.Described(), append(scopes.All(), scopes.Parent); !slices.Equal(got, want) {
		t.Errorf("Described() = %q, want %q", got, want)
	}
	if got, want := p.Tools(), []string{scopes.WhoamiTool, scopes.CalculatorTool}; !slices.Equal(got, want) {
		t.Errorf("Tools() = %q, want %q", got, want)
	}
	if got := p.Argument(scopes.CalculatorTool); got != "operation" {
		t.Errorf("Argument(calculator) = %q", got)
	}
	if got := p.ArgumentValues(scopes.CalculatorTool); !slices.Equal(got, scopes.Operations()) {
		t.Errorf("ArgumentValues(calculator) = %q, want %q", got, scopes.Operations())
	}
	for i, op := range scopes.Operations() {
		if s, ok := p.ForOperation(op); !ok || s != scopes.All()[i] {
			t.Errorf("ForOperation(%q) = %q, %v", op, s, ok)
		}
	}
	if s, ok := p.ForOperation("modulo"); ok || s != "" {
		t.Errorf("ForOperation(modulo) = %q, %v", s, ok)
	}
	assertRoundTrip(t, p)
}

func TestCalculatorIsShared(t *testing.T) {
	first, second := scopes.Calculator(), scopes.Calculator()
	if first != second || scopes.Default() != first {
		t.Error("Calculator() parses its document on every call")
	}
	doc := scopes.CalculatorYAML()
	p, err := scopes.ParsePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.YAML(), scopes.Calculator().YAML()) {
		t.Error("CalculatorYAML() is not the built-in policy")
	}
	doc[0] = '!'
	if bytes.Equal(scopes.CalculatorYAML(), doc) {
		t.Error("CalculatorYAML() returns the embedded bytes themselves")
	}
}

func TestAnyValidToken(t *testing.T) {
	p := scopes.AnyValidToken()
	for _, tool := range []string{"anything", "admin-delete", scopes.CalculatorTool} {
		r := p.Requirement(tool, scopes.Arg("operation", "divide"))
		if r.Denied || !r.Visible || r.Scopes() != nil || p.Allowed(nil, tool, nil) != nil {
			t.Errorf("AnyValidToken().Requirement(%q) = %+v", tool, r)
		}
	}
	if p.Scopes() != nil || p.Tools() != nil {
		t.Errorf("AnyValidToken mentions %q, %q", p.Scopes(), p.Tools())
	}
}

// A declared policy other than the calculator's: the deprecated helpers
// answer from it too, and only for the calculator tool.
func TestDeprecatedHelpersOnOtherPolicies(t *testing.T) {
	p := mustParse(t, "default: [x]\ntools:\n  calculator:\n    argument: operation\n    values: {add: [a, b], sub: [c], off: deny}\n")
	if s, ok := p.ForOperation("add"); ok || s != "" {
		t.Errorf("ForOperation(add) with two scopes = %q, %v", s, ok)
	}
	if s, ok := p.ForOperation("sub"); !ok || s != "c" {
		t.Errorf("ForOperation(sub) = %q, %v", s, ok)
	}
	if s, ok := p.ForOperation("off"); ok || s != "" {
		t.Errorf("ForOperation(off) = %q, %v", s, ok)
	}
	if got := p.ForToolCall("calculator", "add"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ForToolCall(calculator, add) = %q", got)
	}
	if got := p.ForToolCall("other", "add"); got != nil {
		t.Errorf("ForToolCall(other) = %q, want nil", got)
	}
	q := mustParse(t, "tools:\n  calculator:\n    argument: op\n    values: {add: [a]}\n")
	if s, ok := q.ForOperation("add"); ok || s != "" {
		t.Errorf("ForOperation on a rule reading another argument = %q, %v", s, ok)
	}
	var nilPolicy *scopes.Policy
	if s, ok := nilPolicy.ForOperation("add"); ok || s != "" {
		t.Errorf("nil ForOperation = %q, %v", s, ok)
	}
}
