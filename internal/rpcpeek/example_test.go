package rpcpeek_test

import (
	"errors"
	"fmt"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// requiredScopes is the HTTP step-up's decision as the gateway should make
// it: every tools/call in the body (one, or each member of a batch) is
// decided by the one policy, reading exactly the argument its rule names.
// It returns the scopes to check (appended to dst), or the error that
// refuses the body outright: an ambiguity, or a call no scope allows.
func requiredScopes(p *scopes.Policy, body []byte, dst []string) ([]string, error) {
	b, err := rpcpeek.Peek(body)
	var syn *rpcpeek.SyntaxError
	if errors.As(err, &syn) {
		return dst, nil // the SDK rejects it; a proxy must refuse it instead
	}
	if err != nil {
		return dst, err
	}
	for _, m := range b.Messages {
		if m.Method != rpcpeek.MethodToolsCall {
			continue
		}
		var argErr error
		req := p.Requirement(m.Tool, func(name string) (string, bool) {
			v, ok, err := m.StringArgument(name)
			argErr = err
			return v, ok
		})
		if argErr != nil {
			return dst, argErr
		}
		if req.Denied {
			return dst, req.Check(nil)
		}
		dst = req.AppendScopes(dst)
	}
	return dst, nil
}

func Example() {
	policy, err := scopes.ParsePolicy([]byte(`
default: deny
tools:
  echo: []
  calculator:
    argument: operation
    values: {add: [op:add], divide: [op:div]}
`))
	if err != nil {
		panic(err)
	}
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"divide","a":6,"b":3}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}},` +
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add"}}}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","Operation":"divide"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"shell","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"modulo"}}}`,
	} {
		need, err := requiredScopes(policy, []byte(body), nil)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Println("needs:", need, "; a token with op:add:", scopes.Check([]string{"op:add"}, need))
	}
	// Output:
	// needs: [op:div] ; a token with op:add: insufficient scope: this operation needs op:div
	// needs: [op:add] ; a token with op:add: <nil>
	// refused: ambiguous JSON-RPC body (message 0): argument "operation": a key differs from it only in case
	// refused: unknown tool "shell"
	// refused: tool "calculator" does not accept operation "modulo"
}
