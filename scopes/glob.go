package scopes

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxToolNameLength is the longest tool name the MCP specification
// recommends (2025-11-25, server/tools, "Tool Names": "SHOULD be between 1
// and 128 characters in length (inclusive)").
const MaxToolNameLength = 128

// ValidToolName reports whether name follows the MCP tool-name rules
// (2025-11-25, server/tools, "Tool Names"): 1 to 128 characters, each an
// ASCII letter, digit, underscore, hyphen or dot. The specification says
// SHOULD, and the Go SDK only logs a name that breaks them; a policy still
// refuses to name such a tool, because a rule for a name no conforming
// server uses is almost certainly a typo that would leave the real tool to
// the default.
func ValidToolName(name string) bool {
	if name == "" || len(name) > MaxToolNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !toolNameByte(name[i]) {
			return false
		}
	}
	return true
}

func toolNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// isGlob reports whether a policy key is a glob rather than a tool name.
func isGlob(key string) bool { return strings.ContainsAny(key, "*?") }

// glob is a compiled tool-name pattern: '*' matches any run of characters
// (including none), '?' exactly one character, every other character
// itself. Unlike path.Match, '*' also crosses '/': tool names are not paths,
// and a server that names a tool "admin/delete" (the SEP-986 draft allowed
// '/') must still be covered by "admin*". There are deliberately no
// character classes or escapes: the only characters a tool name should
// contain need neither, and a smaller language leaves less to misread.
type glob struct {
	re *regexp.Regexp
}

// compileGlob checks pattern and compiles it. The problem it returns is a
// sentence for the operator; "" means the pattern is good. A pattern must
// be able to match at least one valid tool name and must not match every
// name (that is what the policy's default is for).
func compileGlob(pattern string) (*glob, string) {
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; c != '*' && c != '?' && !toolNameByte(c) {
			return nil, fmt.Sprintf("glob %q contains %s, which no valid MCP tool name contains (tool names are made of A-Z a-z 0-9 _ - . and globs add * and ?)", pattern, describeByte(c))
		}
	}
	fixed := len(pattern) - strings.Count(pattern, "*")
	switch {
	case fixed == 0:
		return nil, fmt.Sprintf("glob %q matches every tool; say that with the policy's default instead", pattern)
	case fixed > MaxToolNameLength:
		return nil, fmt.Sprintf("glob %q can never match: it needs %d characters and a tool name has at most %d", pattern, fixed, MaxToolNameLength)
	}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if i == 0 || pattern[i-1] != '*' { // runs of stars mean one star
				b.WriteString(`.*`)
			}
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil { // cannot happen: the expression is built from quoted literals
		return nil, fmt.Sprintf("glob %q: %v", pattern, err)
	}
	return &glob{re: re}, ""
}

// match reports whether the tool name matches. Regular-expression matching
// is linear in the name's length (RE2), so a hostile name cannot make it
// backtrack.
func (g *glob) match(name string) bool { return g.re.MatchString(name) }

func describeByte(c byte) string {
	switch {
	case c == ' ':
		return "a space"
	case c < 0x20 || c == 0x7f:
		return fmt.Sprintf("the control character %#02x", c)
	case c >= 0x80:
		return "a non-ASCII character"
	}
	return fmt.Sprintf("%q", string(c))
}
