package scopes

import (
	"fmt"
	"slices"
)

// A Policy says, for every MCP tool, whether it exists for clients and which
// scopes a call needs, possibly depending on one string argument of the
// call. It is the one object the HTTP step-up (403 insufficient_scope before
// anything runs), a built-in tool's own check, tools/list filtering, the
// protected resource metadata and the consent and landing pages consult, so
// they cannot disagree.
//
// Build one with [ParsePolicy] (the declared policy, see policyfile.go for
// the syntax) or [Calculator] (the built-in one). A Policy is immutable and
// safe for concurrent use. The zero value, and a nil *Policy, deny every
// tool and mention no scope: a policy nobody declared must not let
// anything through.
type Policy struct {
	valid        bool             // built by the parser
	def          need             // tools no rule names or matches
	exact        map[string]*rule // rules keyed by exact tool name
	globs        []*rule          // rules keyed by a glob, as declared
	rules        []*rule          // every rule, as declared
	tools        []string         // exact tool names, as declared
	scopes       []string         // every scope some decision needs, in first-seen order
	described    []string         // scopes with a description, as declared
	descriptions map[string]string
}

// need is one decision's outcome: refused whatever the token carries
// (deny), or every scope in scopes (none: any valid token).
type need struct {
	deny   bool
	scopes []string // read-only once parsed; shared by every Requirement
}

// rule is one entry under "tools:".
type rule struct {
	key  string // the tool name or glob, as written
	line int
	glob *glob // nil for an exact tool name

	need need // a rule that reads no argument

	argument string          // the string argument the decision depends on; "" for none
	values   map[string]need // per argument value
	order    []string        // the values, as declared
	other    need            // a value not listed, or the argument absent or not a string
	visible  bool            // some outcome is not deny
}

// ArgFunc reads one string argument of a tools/call by name. ok is false
// when the argument is absent or is not a JSON string; the policy then
// applies its rule's default for unlisted values.
type ArgFunc func(name string) (value string, ok bool)

// Arg is an ArgFunc that knows a single argument, for a tool that has
// already decoded its input.
func Arg(name, value string) ArgFunc {
	return func(n string) (string, bool) {
		if n == name {
			return value, true
		}
		return "", false
	}
}

// Requirement is the policy's decision for one tools/call.
type Requirement struct {
	Tool string
	// Visible is false for a tool the policy denies outright: it is left
	// out of tools/list and a call is answered as for an unknown tool, so
	// that a client cannot tell a hidden tool from a missing one.
	Visible bool
	// Denied means no scope allows this call: the tool is not visible, or
	// the argument's value is refused. A step-up challenge would be
	// pointless, so it must not be answered with 403 insufficient_scope.
	Denied bool
	// Argument and Value are the argument the decision read and its value
	// ("" when the tool's rule reads none, or the argument was absent).
	Argument string
	Value    string

	scopes []string // shared with the policy: never handed out unclipped
}

// Scopes returns every scope the call needs (nil: any valid token, or
// Denied). It is a copy.
func (r Requirement) Scopes() []string {
	if r.Denied || len(r.scopes) == 0 {
		return nil
	}
	return slices.Clone(r.scopes)
}

// AppendScopes appends the scopes the call needs to dst, leaving out those
// already in dst, so that a batch's members add up to one challenge
// without allocating per member.
func (r Requirement) AppendScopes(dst []string) []string {
	if r.Denied {
		return dst
	}
	return appendMissing(dst, r.scopes)
}

// Check returns nil when a token granted these scopes may make the call, a
// *DeniedError when no token may, and an *InsufficientScopeError (RFC 6750
// §3.1) naming the missing scopes otherwise. It allocates only when it
// refuses.
func (r Requirement) Check(granted []string) error {
	if r.Denied {
		return &DeniedError{Tool: r.Tool, Unknown: !r.Visible, Argument: r.Argument, Value: r.Value}
	}
	if satisfiesAll(granted, r.scopes) {
		return nil
	}
	return Check(granted, r.scopes)
}

// DeniedError says the policy refuses a call whatever scopes the token
// carries.
type DeniedError struct {
	Tool string
	// Unknown: the tool itself is denied. The MCP specification answers an
	// unknown tool with a JSON-RPC protocol error (server/tools, "Error
	// Handling"), and a denied tool must look exactly like one.
	Unknown bool
	// Argument and Value: the argument whose value the tool's rule refuses
	// (Value "" also when the argument was absent or not a string).
	Argument string
	Value    string
}

func (e *DeniedError) Error() string {
	// The tool name and value come from the client: quoted and cut short,
	// so that an error message never carries control characters or a
	// megabyte of someone else's input.
	if e.Unknown {
		return fmt.Sprintf("unknown tool %.128q", e.Tool)
	}
	return fmt.Sprintf("tool %.128q does not accept %s %.128q", e.Tool, e.Argument, e.Value)
}

// Requirement decides a tools/call of tool, reading its one relevant
// argument through arg (nil: no arguments). An exact tool name wins over
// globs; when several globs match and no exact name does, the call needs
// everything each of them needs (and is denied if any denies), so that the
// order of a policy's lines never weakens it; a tool matched by nothing gets
// the default.
func (p *Policy) Requirement(tool string, arg ArgFunc) Requirement {
	if p == nil || !p.valid {
		return Requirement{Tool: tool, Denied: true}
	}
	if r, ok := p.exact[tool]; ok {
		return r.decide(tool, arg)
	}
	req := Requirement{Tool: tool, Visible: true}
	matched := false
	for _, g := range p.globs {
		if !g.glob.match(tool) {
			continue
		}
		if g.need.deny {
			return Requirement{Tool: tool, Denied: true}
		}
		if !matched {
			req.scopes = g.need.scopes
			matched = true
			continue
		}
		// A second glob: a fresh slice, never the policy's.
		req.scopes = appendMissing(slices.Clip(req.scopes), g.need.scopes)
	}
	if !matched {
		if p.def.deny {
			return Requirement{Tool: tool, Denied: true}
		}
		req.scopes = p.def.scopes
	}
	return req
}

func (r *rule) decide(tool string, arg ArgFunc) Requirement {
	req := Requirement{Tool: tool, Visible: r.visible}
	n := r.need
	if r.argument != "" {
		req.Argument = r.argument
		n = r.other
		if arg != nil {
			if v, ok := arg(r.argument); ok {
				req.Value = v
				if vn, listed := r.values[v]; listed {
					n = vn
				}
			}
		}
	}
	req.Denied = n.deny
	req.scopes = slices.Clip(n.scopes)
	return req
}

// Allowed reports whether a token granted these scopes may call tool with
// the argument arg reads: nil, a *DeniedError or an
// *InsufficientScopeError (see [Requirement.Check]).
func (p *Policy) Allowed(granted []string, tool string, arg ArgFunc) error {
	return p.Requirement(tool, arg).Check(granted)
}

// Visible reports whether tool exists for clients at all: false only when
// the policy denies it outright (by its own rule, a matching glob, or the
// default deny). A tool whose argument rule refuses some values is visible.
func (p *Policy) Visible(tool string) bool {
	return p.Requirement(tool, nil).Visible
}

// Matches reports whether a rule of the policy decides tool: its exact
// name, or a glob that matches it. false means only the default applies:
// nobody wrote a rule for the tool, which the configuration doctor points
// out for an upstream's tools.
func (p *Policy) Matches(tool string) bool {
	if p == nil || !p.valid {
		return false
	}
	if _, ok := p.exact[tool]; ok {
		return true
	}
	for _, g := range p.globs {
		if g.glob.match(tool) {
			return true
		}
	}
	return false
}

// Callable reports whether a token granted these scopes may call tool with
// at least one argument value: the test for TOOLS_LIST=allowed, which lists
// only what the token can use.
func (p *Policy) Callable(granted []string, tool string) bool {
	if p == nil {
		return false
	}
	r, ok := p.exact[tool]
	if !ok || r.argument == "" {
		req := p.Requirement(tool, nil)
		return !req.Denied && satisfiesAll(granted, req.scopes)
	}
	if !r.other.deny && satisfiesAll(granted, r.other.scopes) {
		return true
	}
	for _, n := range r.values {
		if !n.deny && satisfiesAll(granted, n.scopes) {
			return true
		}
	}
	return false
}

// Argument returns the name of the string argument tool's rule reads, ""
// when its decision reads none. The HTTP step-up peeks at exactly this
// argument of a tools/call body.
func (p *Policy) Argument(tool string) string {
	if p == nil {
		return ""
	}
	if r, ok := p.exact[tool]; ok {
		return r.argument
	}
	return ""
}

// Lists reports whether tool's rule lists the argument value v, without
// copying the list (a label on every call's path).
func (p *Policy) Lists(tool, v string) bool {
	if p == nil {
		return false
	}
	r, ok := p.exact[tool]
	if !ok {
		return false
	}
	_, listed := r.values[v]
	return listed
}

// ArgumentValues returns the argument values tool's rule lists, as
// declared (nil when it reads no argument).
func (p *Policy) ArgumentValues(tool string) []string {
	if p == nil {
		return nil
	}
	if r, ok := p.exact[tool]; ok {
		return slices.Clone(r.order)
	}
	return nil
}

// Scopes returns every scope some decision of the policy needs, in the
// order the policy first mentions them: the default scopes_supported of the
// protected resource metadata (RFC 9728 §2). Scopes that are only described
// (a parent such as "op") are not in it; see [Policy.Described].
func (p *Policy) Scopes() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.scopes)
}

// Described returns the scopes the policy describes, as declared.
func (p *Policy) Described() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.described)
}

// Describe says, for people, what a scope allows (the consent page, the
// landing page); "" when the policy does not describe it.
func (p *Policy) Describe(scope string) string {
	if p == nil {
		return ""
	}
	return p.descriptions[scope]
}

// Tools returns the tool names the policy names exactly, as declared: the
// bounded label set for metrics and logs.
func (p *Policy) Tools() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.tools)
}

// OtherTool is the metrics and log label of a tool the policy does not name.
const OtherTool = "other"

// Label returns tool when the policy names it exactly, and [OtherTool]
// otherwise, so that a label set never grows with what clients send. It
// returns the policy's own copy of the name, never the caller's string.
func (p *Policy) Label(tool string) string {
	if p == nil {
		return OtherTool
	}
	if r, ok := p.exact[tool]; ok {
		return r.key
	}
	return OtherTool
}

// satisfiesAll is Check without the error: it never allocates.
func satisfiesAll(granted, required []string) bool {
	for _, s := range required {
		if !Satisfies(granted, s) {
			return false
		}
	}
	return true
}

func appendMissing(dst, src []string) []string {
	for _, s := range src {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}
