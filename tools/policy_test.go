package tools_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/scopes"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

// legacyForToolCall is the calculator-only policy as it was before
// policies were declared (scopes/scopes.go at commit fa91aa0), copied: the
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

// The legacy scope list and descriptions, copied likewise.
var (
	legacyAll          = []string{"op:add", "op:sub", "op:mult", "op:div"}
	legacyDescriptions = map[string]string{
		"op:add": "Add numbers", "op:sub": "Subtract numbers", "op:mult": "Multiply numbers",
		"op:div": "Divide numbers", "op": "All calculator operations",
	}
)

func TestPolicyDecidesAsBefore(t *testing.T) {
	p := tools.Policy()
	toolNames := []string{tools.CalculatorTool, tools.WhoamiTool, "unknown-tool", "", "Calculator", "calculator2", "admin-x"}
	ops := append(tools.Operations(), "", "modulo", "ADD", "Divide", "op:add", " add")
	grants := [][]string{nil, {"op"}, {"op:add"}, {"op:div"}, legacyAll, {"profile"}, {"op:"}, {"o"}}
	for _, tool := range toolNames {
		for _, op := range ops {
			want := legacyForToolCall(tool, op)
			req := p.Requirement(tool, scopes.Arg("operation", op))
			if req.Denied || !req.Visible || !slices.Equal(req.Scopes(), want) {
				t.Errorf("Requirement(%q, %q) = %+v %q, want %q", tool, op, req, req.Scopes(), want)
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
	if got := p.Scopes(); !slices.Equal(got, legacyAll) {
		t.Errorf("Scopes() = %q, want %q", got, legacyAll)
	}
	for _, s := range append(slices.Clone(legacyAll), "op", "op:pow", "") {
		if got, want := p.Describe(s), legacyDescriptions[s]; got != want {
			t.Errorf("Describe(%q) = %q, want %q", s, got, want)
		}
	}
	if got, want := p.Described(), append(slices.Clone(legacyAll), "op"); !slices.Equal(got, want) {
		t.Errorf("Described() = %q, want %q", got, want)
	}
	if got, want := p.Tools(), []string{tools.WhoamiTool, tools.CalculatorTool}; !slices.Equal(got, want) {
		t.Errorf("Tools() = %q, want %q", got, want)
	}
	if got := p.Argument(tools.CalculatorTool); got != "operation" {
		t.Errorf("Argument(calculator) = %q", got)
	}
	if got := p.ArgumentValues(tools.CalculatorTool); !slices.Equal(got, tools.Operations()) {
		t.Errorf("ArgumentValues(calculator) = %q, want %q", got, tools.Operations())
	}
}

func TestPolicyIsShared(t *testing.T) {
	first, second := tools.Policy(), tools.Policy()
	if first != second {
		t.Error("Policy() parses its document on every call")
	}
	doc := tools.PolicyYAML()
	p, err := scopes.ParsePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.YAML(), tools.Policy().YAML()) {
		t.Error("PolicyYAML() is not the built-in policy")
	}
	doc[0] = '!'
	if bytes.Equal(tools.PolicyYAML(), doc) {
		t.Error("PolicyYAML() returns the embedded bytes themselves")
	}
}
