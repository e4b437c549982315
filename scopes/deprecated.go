package scopes

// Default returns the built-in calculator policy.
//
// Deprecated: use [Calculator], or [ParsePolicy] for a declared policy.
func Default() *Policy { return Calculator() }

// ForOperation returns the single scope the calculator tool's operation
// argument needs; ok is false for an operation the policy does not list
// with exactly one scope.
//
// Deprecated: use [Policy.Requirement] or [Policy.Allowed] with
// Arg("operation", op).
func (p *Policy) ForOperation(op string) (scope string, ok bool) {
	if p == nil {
		return "", false
	}
	r, found := p.exact[CalculatorTool]
	if !found || r.argument != "operation" {
		return "", false
	}
	n, listed := r.values[op]
	if !listed || n.deny || len(n.scopes) != 1 {
		return "", false
	}
	return n.scopes[0], true
}

// ForToolCall returns the scopes a tools/call of the calculator with the
// given operation needs; nil for every other tool, as before policies were
// declared.
//
// Deprecated: use [Policy.Requirement], which decides every tool.
func (p *Policy) ForToolCall(tool, operation string) []string {
	if tool != CalculatorTool {
		return nil
	}
	return p.Requirement(tool, Arg("operation", operation)).Scopes()
}
