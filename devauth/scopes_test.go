package devauth

// The scopes the tests offer: the built-in tools' (tools/policy.yaml),
// which this package does not import, and what they mean.
const (
	scopeAdd      = "op:add"
	scopeSubtract = "op:sub"
	scopeMultiply = "op:mult"
	scopeDivide   = "op:div"
	scopeParent   = "op"
)

func testScopes() []string { return []string{scopeAdd, scopeSubtract, scopeMultiply, scopeDivide} }

func testDescribe(scope string) string {
	return map[string]string{
		scopeAdd: "Add numbers", scopeSubtract: "Subtract numbers", scopeMultiply: "Multiply numbers",
		scopeDivide: "Divide numbers", scopeParent: "All calculator operations",
	}[scope]
}
