package introspect

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
)

// TestInternerShares: what many tokens carry alike is held once by the
// cache (fewer objects for the collector to mark on every cycle), what is
// particular to a token is its own, and the values are the same either way.
func TestInternerShares(t *testing.T) {
	known := newInterner([]string{"op:add", "op:sub"}, []string{testResource})
	claims := func(sub, client string, scopes ...string) *accesstoken.Claims {
		return &accesstoken.Claims{Sub: sub, ClientID: client, Scopes: scopes, Aud: []string{testResource}, HasAud: true}
	}
	a, b := infoOf(claims("alice", "app", "op:add", "op:sub"), known), infoOf(claims("bob", "app", "op:add", "op:sub"), known)
	if &a.Scopes[0] != &b.Scopes[0] {
		t.Error("a list of known scopes is not shared")
	}
	if !sameBox(a.Extra["client_id"], b.Extra["client_id"]) || !sameBox(a.Extra["aud"], b.Extra["aud"]) {
		t.Error("client_id or aud is boxed per token")
	}
	if a.Extra["sub"] != "alice" || b.Extra["sub"] != "bob" || a.Extra["client_id"] != "app" ||
		!reflect.DeepEqual(a.Extra["aud"], []string{testResource}) || !reflect.DeepEqual(b.Scopes, []string{"op:add", "op:sub"}) {
		t.Errorf("values changed: %+v %+v", a, b)
	}
	// A list with a scope nobody configured is the token's own.
	c, d := infoOf(claims("carol", "app", "op:add", "other"), known), infoOf(claims("dan", "app", "op:add", "other"), known)
	if &c.Scopes[0] == &d.Scopes[0] || !reflect.DeepEqual(c.Scopes, []string{"op:add", "other"}) {
		t.Errorf("a list with an unknown scope was shared, or changed: %v", c.Scopes)
	}
	// Past the bounds, values are copied again, and still right.
	for i := range maxClientIDs + 10 {
		id := fmt.Sprintf("client-%d", i)
		if got := infoOf(claims("x", id, "op:sub"), known).Extra["client_id"]; got != id {
			t.Fatalf("client_id %v, want %s", got, id)
		}
	}
	if n := len(known.clients); n != maxClientIDs {
		t.Errorf("%d client ids interned, want the bound %d", n, maxClientIDs)
	}
}

// sameBox reports whether two interface values point at one boxed value
// (an interface is a type word and a data pointer).
func sameBox(x, y any) bool {
	return (*[2]uintptr)(unsafe.Pointer(&x))[1] == (*[2]uintptr)(unsafe.Pointer(&y))[1]
}
