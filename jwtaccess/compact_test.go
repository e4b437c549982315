package jwtaccess

import (
	"strings"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
)

// TestCompactJWS: only three non-empty parts of the base64url alphabet
// pass (RFC 7515 §7.1). parseCompact relies on it: it splits at the first
// and last dots and leaves whitespace and padding to this check.
func TestCompactJWS(t *testing.T) {
	for _, tt := range []struct {
		token string
		want  bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", true},
		{"a-_Z09.b.c", true},
		{"a.b.c.d.e", false}, // JWE
		{"a.b", false},
		{"a..c", false},
		{".b.c", false},
		{"a.b.", false},
		{"a+.b.c", false}, // the standard alphabet
		{"a/.b.c", false},
		{"a=.b.c", false}, // padding
		{"a .b.c", false},
		{"a\n.b.c", false},
		{"a\x00.b.c", false},
		{"a\xc3\xa9.b.c", false},
		{"", false},
		{strings.Repeat("a", accesstoken.MaxLength-4) + ".b.c", true},
		{strings.Repeat("a", accesstoken.MaxLength-3) + ".b.c", false},
	} {
		if got := compactJWS(tt.token); got != tt.want {
			t.Errorf("compactJWS(%.40q) = %v, want %v", tt.token, got, tt.want)
		}
	}
}
