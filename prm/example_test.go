package prm_test

import (
	"fmt"

	"github.com/mcp-gateway/mcp-gateway/prm"
)

// The challenge a resource server sends with 403 when a token lacks a scope
// (RFC 6750 §3, RFC 9728 §5.1).
func ExampleChallenge_String() {
	ch := prm.Challenge{
		ResourceMetadata: "https://calc.example.com/.well-known/oauth-protected-resource/mcp",
		Scope:            []string{"op:div", "op:add"},
		Error:            prm.ErrInsufficientScope,
	}
	fmt.Println(ch.String())
	// Output:
	// Bearer resource_metadata="https://calc.example.com/.well-known/oauth-protected-resource/mcp", scope="op:div op:add", error="insufficient_scope"
}

// Only the Authorization header carries a token, and only in the RFC 6750
// §2.1 form.
func ExampleTokenFromHeader() {
	tok, err := prm.TokenFromHeader([]string{"Bearer abc.def"})
	fmt.Printf("%q %v\n", tok, err)
	_, err = prm.TokenFromHeader([]string{"Basic dXNlcjpwYXNz"})
	fmt.Println(err)
	// Output:
	// "abc.def" <nil>
	// malformed Authorization header: unsupported scheme
}
