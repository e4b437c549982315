package scopes

import (
	_ "embed"
	"sync"
)

//go:embed calculator.yaml
var calculatorYAML []byte

// calculator parses the built-in policy once. The document is part of the
// binary and a test parses it, so failing here is a build defect.
var calculator = sync.OnceValue(func() *Policy {
	p, err := ParsePolicy(calculatorYAML)
	if err != nil {
		panic("scopes: the built-in calculator policy does not parse: " + err.Error())
	}
	return p
})

// Calculator returns the built-in policy, used when no policy is
// configured: the calculator's operations need op:add, op:sub, op:mult and
// op:div ("op" grants all), whoami needs any valid token, and so does any
// other tool. It is literally the policy document calculator.yaml, embedded
// in the binary; [CalculatorYAML] returns its text.
func Calculator() *Policy { return calculator() }

// CalculatorYAML returns the built-in policy's document, a starting point
// for writing one's own.
func CalculatorYAML() []byte { return append([]byte(nil), calculatorYAML...) }

// AnyValidToken returns the policy "default: []": every tool is visible
// and needs only a valid token. It is what a proxy enforces when no policy
// is configured (with a warning: the upstream then decides alone).
func AnyValidToken() *Policy { return anyValidToken() }

var anyValidToken = sync.OnceValue(func() *Policy {
	p, err := ParsePolicy([]byte("default: []\n"))
	if err != nil {
		panic("scopes: the any-valid-token policy does not parse: " + err.Error())
	}
	return p
})
