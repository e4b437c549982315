package tools

import (
	_ "embed"
	"slices"
	"sync"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// The built-in tools' names, and the calculator's operations as they appear
// in its "operation" argument.
const (
	CalculatorTool = "calculator"
	WhoamiTool     = "whoami"

	OpAdd      = "add"
	OpSubtract = "subtract"
	OpMultiply = "multiply"
	OpDivide   = "divide"
)

// Operations lists the calculator's operations in a stable order.
func Operations() []string { return slices.Clone(operations[:]) }

var operations = [...]string{OpAdd, OpSubtract, OpMultiply, OpDivide}

//go:embed policy.yaml
var policyYAML []byte

// policy parses the built-in policy once. The document is part of the
// binary and a test parses it, so failing here is a build defect.
var policy = sync.OnceValue(func() *scopes.Policy {
	p, err := scopes.ParsePolicy(policyYAML)
	if err != nil {
		panic("tools: the built-in policy does not parse: " + err.Error())
	}
	return p
})

// Policy returns the built-in tools' policy, which the gateway enforces
// when neither POLICY nor POLICY_FILE is set: each calculator operation
// needs its own scope (add op:add, subtract op:sub, multiply op:mult,
// divide op:div; "op" grants all), whoami any valid token. It is literally
// the policy document policy.yaml, embedded in the binary; [PolicyYAML]
// returns its text.
func Policy() *scopes.Policy { return policy() }

// PolicyYAML returns the built-in policy's document, a starting point for
// writing one's own.
func PolicyYAML() []byte { return append([]byte(nil), policyYAML...) }
