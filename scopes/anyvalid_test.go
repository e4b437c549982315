package scopes_test

import (
	"testing"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

func TestAnyValidToken(t *testing.T) {
	p := scopes.AnyValidToken()
	if p != scopes.AnyValidToken() {
		t.Error("AnyValidToken() parses its document on every call")
	}
	for _, tool := range []string{"anything", "admin-delete", "calculator"} {
		r := p.Requirement(tool, scopes.Arg("operation", "divide"))
		if r.Denied || !r.Visible || r.Scopes() != nil || p.Allowed(nil, tool, nil) != nil {
			t.Errorf("AnyValidToken().Requirement(%q) = %+v", tool, r)
		}
	}
	if p.Scopes() != nil || p.Tools() != nil {
		t.Errorf("AnyValidToken mentions %q, %q", p.Scopes(), p.Tools())
	}
}
