package scopes

import "sync"

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
