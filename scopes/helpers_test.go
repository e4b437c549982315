package scopes_test

import (
	"testing"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// calculatorYAML is a policy shaped like the built-in tools' one
// (tools/policy.yaml), which this package cannot import.
const calculatorYAML = `default: []
scopes:
  op:add: Add numbers
  op: All calculator operations
tools:
  whoami: []
  calculator:
    argument: operation
    values: {add: [op:add], subtract: [op:sub], multiply: [op:mult], divide: [op:div]}
    default: []
`

func calculatorPolicy(tb testing.TB) *scopes.Policy {
	tb.Helper()
	p, err := scopes.ParsePolicy([]byte(calculatorYAML))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
