// Package scopes is the gateway's scope policy: the declared per-tool
// Policy (policy.go, parsed from YAML by policyfile.go) saying which scopes
// each tool call needs, how granted scopes satisfy required ones (a parent
// scope covers its children), and the insufficient-scope error that carries
// what a step-up must ask for. It knows no tool: the built-in tools' policy
// is tools.Policy().
//
// It is the single source of truth for the HTTP step-up check (which
// answers 403 before the tool runs), tools/list, and the tools' own
// defence-in-depth checks.
//
// Scope syntax is RFC 6749 §3.3: a space-delimited list of scope-tokens, each
// 1*( %x21 / %x23-5B / %x5D-7E ).
package scopes

import (
	"fmt"
	"slices"
	"strings"
)

// Check returns nil when granted satisfies every scope in required, and an
// *InsufficientScopeError otherwise.
func Check(granted, required []string) error {
	var missing []string
	for _, r := range required {
		if !Satisfies(granted, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &InsufficientScopeError{Missing: missing, Required: slices.Clone(required), Granted: slices.Clone(granted)}
}

// Satisfies reports whether granted covers required, either exactly or
// through a parent scope: "op" covers "op:add". Only a whole
// colon-separated prefix counts, so "o" or "op:" never cover "op:add".
func Satisfies(granted []string, required string) bool {
	for _, g := range granted {
		if g == required {
			return true
		}
		if g != "" && strings.HasPrefix(required, g) && len(required) > len(g) && required[len(g)] == ':' {
			return true
		}
	}
	return false
}

// InsufficientScopeError says a token lacks scopes an operation needs
// (RFC 6750 §3.1 insufficient_scope).
type InsufficientScopeError struct {
	Missing  []string // the required scopes not covered by Granted
	Required []string // every scope the operation needs
	Granted  []string // what the token carries
}

func (e *InsufficientScopeError) Error() string {
	return fmt.Sprintf("insufficient scope: this operation needs %s", strings.Join(e.Missing, " "))
}

// ChallengeScopes is the scope list for the step-up challenge: every scope
// the operation needs followed by every scope already granted, without
// duplicates. Clients that replace rather than add scopes when they step up
// then keep what the user already consented to.
func (e *InsufficientScopeError) ChallengeScopes() []string {
	out := make([]string, 0, len(e.Required)+len(e.Granted))
	for _, s := range append(slices.Clone(e.Required), e.Granted...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Parse splits an RFC 6749 §3.3 scope string into its scope-tokens. Runs of
// spaces are tolerated; anything outside the scope-token alphabet is an
// error, so a hostile "scope" claim cannot smuggle quotes or control
// characters into a WWW-Authenticate header.
func Parse(s string) ([]string, error) {
	fields := strings.Split(s, " ")
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		if f == "" {
			continue
		}
		if !ValidToken(f) {
			return nil, fmt.Errorf("scopes: invalid scope-token %q", f)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// ValidToken reports whether s is a non-empty RFC 6749 §3.3 scope-token.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}
