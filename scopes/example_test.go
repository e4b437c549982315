package scopes_test

import (
	"errors"
	"fmt"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// A parent scope covers its children; a missing scope is an error that says
// what a step-up challenge must ask for.
func ExampleCheck() {
	fmt.Println(scopes.Check([]string{"op"}, []string{"op:div"}))

	err := scopes.Check([]string{"op:add"}, []string{"op:div"})
	var insufficient *scopes.InsufficientScopeError
	if errors.As(err, &insufficient) {
		fmt.Println(insufficient.Missing, insufficient.ChallengeScopes())
	}
	// Output:
	// <nil>
	// [op:div] [op:div op:add]
}
