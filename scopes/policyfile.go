package scopes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxPolicyBytes bounds the policy document. A policy is written by the
// operator, but it is still read before anything else is checked; 256 KiB
// is room for thousands of tools.
const MaxPolicyBytes = 256 << 10

// Problem is one thing wrong with a policy document.
type Problem struct {
	Line int // 1-based; 0 when the problem concerns the document as a whole
	Msg  string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Msg
	}
	return "line " + strconv.Itoa(p.Line) + ": " + p.Msg
}

// PolicyError lists every problem found in a policy document, in line
// order, so that an operator fixes them all in one pass.
type PolicyError struct {
	Problems []Problem
}

func (e *PolicyError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid policy: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid policy (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ParsePolicy reads a policy document (POLICY, POLICY_FILE), in YAML; JSON
// is YAML too. A malformed document is a *PolicyError listing every problem
// with its line (a YAML syntax error stops the YAML parser, so it is the
// only problem reported with it). The syntax:
//
//	default: deny                # tools no rule names or matches: deny, or a scope list ([] = any valid token)
//	scopes:                      # optional: what each scope allows, for the consent and landing pages
//	  math:add: Add numbers
//	tools:
//	  echo: []                   # any valid token
//	  get-sum: [math:add]        # every listed scope is needed
//	  "admin-*": [admin]         # a glob: * any run of characters, ? one character
//	  legacy-export: deny        # hidden and refused, like an unknown tool
//	  calculator:                # the decision depends on one string argument
//	    argument: operation
//	    values: {add: [op:add], divide: [op:div]}
//	    default: deny            # a value not listed, or the argument absent or not a string (deny when omitted)
//
// Decisions: an exact tool name wins over globs; a tool matched by several
// globs needs what each of them needs (denied if one denies), so neither
// the order of lines nor a broad glob added later can weaken a narrower
// one; a tool nothing matches gets the top-level default, deny when
// omitted. Scopes follow the hierarchy of [Satisfies]: "admin" grants
// "admin:users".
//
// Parsing is strict, because a mistake here is an authorization hole:
// unknown keys, a missing value (write [] for "any valid token"), a scope
// that is not an RFC 6749 §3.3 scope-token, a name no MCP tool can have, a
// duplicate key, YAML anchors, aliases and tags, and more than one document
// are all errors, reported together with their lines.
func ParsePolicy(data []byte) (*Policy, error) {
	if len(data) > MaxPolicyBytes {
		return nil, &PolicyError{Problems: []Problem{{Msg: fmt.Sprintf("the policy is %d bytes, more than the %d this gateway reads", len(data), MaxPolicyBytes)}}}
	}
	doc, prob := parseYAML(data)
	if prob != nil {
		return nil, &PolicyError{Problems: []Problem{*prob}}
	}
	b := &builder{
		p: &Policy{
			exact:        map[string]*rule{},
			descriptions: map[string]string{},
			def:          need{deny: true},
		},
		scopeSeen: map[string]bool{},
	}
	b.document(doc)
	if len(b.problems) > 0 {
		slices.SortStableFunc(b.problems, func(x, y Problem) int { return x.Line - y.Line })
		return nil, &PolicyError{Problems: b.problems}
	}
	b.p.valid = true
	return b.p, nil
}

// parseYAML reads exactly one YAML document into its node tree. The tree
// keeps aliases as references (nothing is expanded, so an alias bomb costs
// nothing here) and every node's line; the parser bounds nesting itself.
func parseYAML(data []byte) (doc *yaml.Node, prob *Problem) {
	defer func() {
		// The YAML parser is a port of a C library; if some input makes it
		// panic, that is a malformed policy, not a crashed gateway.
		if r := recover(); r != nil {
			doc, prob = nil, &Problem{Msg: fmt.Sprintf("the YAML parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var d yaml.Node
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Problem{Msg: "the policy is empty; write at least \"default: deny\" or \"default: []\""}
		}
		return nil, yamlProblem(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlProblem(err)
	default:
		return nil, &Problem{Line: next.Line, Msg: "a policy is a single YAML document; remove the \"---\" and what follows it"}
	}
	return &d, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlProblem(err error) *Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			return &Problem{Line: n, Msg: "not valid YAML: " + m[2]}
		}
	}
	return &Problem{Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// builder turns the node tree into a Policy, collecting every problem.
type builder struct {
	p         *Policy
	problems  []Problem
	scopeSeen map[string]bool
}

func (b *builder) addf(n *yaml.Node, format string, args ...any) {
	b.problems = append(b.problems, Problem{Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) document(doc *yaml.Node) {
	b.refuseAnchors(doc)
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		b.addf(doc, "the policy must be a mapping with the keys default, scopes and tools")
		return
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		if top.Kind != yaml.AliasNode {
			b.addf(top, "the policy must be a mapping with the keys default, scopes and tools, not %s", kindName(top))
		}
		return
	}
	b.pairs(top, "the policy", func(key string, k, v *yaml.Node) {
		switch key {
		case "default":
			if n, ok := b.need(v, "default"); ok {
				b.p.def = n
			}
		case "scopes":
			b.descriptions(v)
		case "tools":
			b.tools(v)
		default:
			b.addf(k, "unknown key %q (a policy has default, scopes and tools)", key)
		}
	})
}

// refuseAnchors reports every anchor and alias anywhere in the document.
// A policy has no use for them, and refusing them outright means no
// decision can depend on how an alias would be expanded.
func (b *builder) refuseAnchors(doc *yaml.Node) {
	stack := []*yaml.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch {
		case n.Kind == yaml.AliasNode:
			b.addf(n, "YAML aliases (*%s) are not allowed in a policy; write the value out", n.Value)
			continue // its target is reported where it is defined
		case n.Anchor != "":
			b.addf(n, "YAML anchors (&%s) are not allowed in a policy", n.Anchor)
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
}

// pairs calls f for each key of mapping m, reporting keys that are not
// strings and keys seen before.
func (b *builder) pairs(m *yaml.Node, where string, f func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key, ok := b.text(k, "a key in "+where)
		if !ok {
			continue
		}
		if line, dup := seen[key]; dup {
			b.addf(k, "%q is already a key in %s, at line %d", key, where, line)
			continue
		}
		seen[key] = k.Line
		f(key, k, v)
	}
}

// text returns a scalar's text as written. Plain numbers and booleans are
// taken as the text the operator typed (a tool may be called "2fa" or
// "true"); null, tags and collections are refused.
func (b *builder) text(n *yaml.Node, what string) (string, bool) {
	switch {
	case n.Kind == yaml.AliasNode:
		return "", false // already reported
	case n.Kind != yaml.ScalarNode:
		b.addf(n, "%s must be a string, not %s", what, kindName(n))
		return "", false
	case n.Style&yaml.TaggedStyle != 0 && n.ShortTag() != "!!str":
		b.addf(n, "%s has the YAML tag %s; tags are not allowed in a policy", what, n.Tag)
		return "", false
	case n.ShortTag() == "!!null":
		b.addf(n, "%s is missing", what)
		return "", false
	}
	return n.Value, true
}

// need reads "deny" or a list of scopes.
func (b *builder) need(n *yaml.Node, what string) (need, bool) {
	switch {
	case n.Kind == yaml.AliasNode:
		return need{}, false
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Style&yaml.TaggedStyle == 0:
		b.addf(n, "%s has no value: write [] for any valid token, a list of scopes such as [read], or deny", what)
		return need{}, false
	case n.Kind == yaml.ScalarNode:
		s, ok := b.text(n, what)
		if !ok {
			return need{}, false
		}
		if s == "deny" {
			return need{deny: true}, true
		}
		b.addf(n, "%s must be deny or a list of scopes such as [%s], not the string %q", what, suggestList(s), s)
		return need{}, false
	case n.Kind != yaml.SequenceNode:
		b.addf(n, "%s must be deny or a list of scopes such as [read], not %s", what, kindName(n))
		return need{}, false
	}
	out := need{scopes: []string{}}
	ok := true
	for _, item := range n.Content {
		s, good := b.text(item, "a scope in "+what)
		if !good {
			ok = false
			continue
		}
		if !b.scope(item, s) {
			ok = false
			continue
		}
		if !slices.Contains(out.scopes, s) {
			out.scopes = append(out.scopes, s)
		}
	}
	if !ok {
		return need{}, false
	}
	for _, s := range out.scopes {
		if !b.scopeSeen[s] {
			b.scopeSeen[s] = true
			b.p.scopes = append(b.p.scopes, s)
		}
	}
	return out, true
}

// scope checks one scope-token (RFC 6749 §3.3): it is what the token's
// scope claim is compared with and what a WWW-Authenticate challenge will
// carry, so it must be one printable token.
func (b *builder) scope(n *yaml.Node, s string) bool {
	switch {
	case s == "":
		b.addf(n, "empty scope")
	case strings.Contains(s, " "):
		b.addf(n, "scope %q contains a space; list each scope separately, such as [%s]", s, suggestList(s))
	case !ValidToken(s):
		b.addf(n, "scope %q is not an RFC 6749 §3.3 scope-token (printable ASCII other than space, '\"' and '\\')", s)
	default:
		return true
	}
	return false
}

func suggestList(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return "read"
	}
	return strings.Join(f, ", ")
}

func (b *builder) descriptions(m *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		if m.Kind != yaml.AliasNode {
			b.addf(m, "scopes must be a mapping from scope to description, not %s", kindName(m))
		}
		return
	}
	b.pairs(m, "scopes", func(s string, k, v *yaml.Node) {
		if !b.scope(k, s) {
			return
		}
		d, ok := b.text(v, fmt.Sprintf("the description of %q", s))
		if !ok {
			return
		}
		b.p.described = append(b.p.described, s)
		b.p.descriptions[s] = d
	})
}

func (b *builder) tools(m *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		if m.Kind != yaml.AliasNode {
			b.addf(m, "tools must be a mapping from tool name (or glob) to its scopes, not %s", kindName(m))
		}
		return
	}
	b.pairs(m, "tools", func(name string, k, v *yaml.Node) {
		r := &rule{key: name, line: k.Line}
		if isGlob(name) {
			g, prob := compileGlob(name)
			if prob != "" {
				b.addf(k, "%s", prob)
				return
			}
			r.glob = g
		} else if prob := toolNameProblem(name); prob != "" {
			b.addf(k, "%s", prob)
			return
		}
		what := fmt.Sprintf("the rule for %q", name)
		if v.Kind == yaml.MappingNode {
			if r.glob != nil {
				b.addf(k, "%s reads an argument, which needs an exact tool name: the tools a glob matches differ in their arguments", what)
				return
			}
			if !b.argumentRule(r, k, v, what) {
				return
			}
		} else {
			n, ok := b.need(v, what)
			if !ok {
				return
			}
			r.need = n
			r.visible = !n.deny
		}
		b.p.rules = append(b.p.rules, r)
		if r.glob != nil {
			b.p.globs = append(b.p.globs, r)
			return
		}
		b.p.exact[name] = r
		b.p.tools = append(b.p.tools, name)
	})
}

// argumentRule reads a rule that depends on one argument; at is the rule's
// key, where a missing part is reported.
func (b *builder) argumentRule(r *rule, at, m *yaml.Node, what string) bool {
	ok := true
	var hasArgument, hasValues bool
	r.other = need{deny: true}
	b.pairs(m, what, func(key string, k, v *yaml.Node) {
		switch key {
		case "argument":
			hasArgument = true
			s, good := b.text(v, "the argument of "+what)
			if good && s == "" {
				b.addf(v, "the argument of %s is empty", what)
				good = false
			}
			ok = ok && good
			r.argument = s
		case "values":
			hasValues = true
			ok = b.values(r, v, what) && ok
		case "default":
			n, good := b.need(v, "the default of "+what)
			ok = ok && good
			r.other = n
		default:
			b.addf(k, "unknown key %q in %s (a rule that reads an argument has argument, values and default)", key, what)
			ok = false
		}
	})
	if !hasArgument {
		b.addf(at, "%s has no argument: name the string argument its values are for", what)
		ok = false
	}
	if !hasValues {
		b.addf(at, "%s has no values: list the argument values and the scopes each needs", what)
		ok = false
	}
	if !ok {
		return false
	}
	r.visible = !r.other.deny
	for _, n := range r.values {
		r.visible = r.visible || !n.deny
	}
	return true
}

func (b *builder) values(r *rule, m *yaml.Node, what string) bool {
	if m.Kind != yaml.MappingNode {
		if m.Kind != yaml.AliasNode {
			b.addf(m, "the values of %s must be a mapping from argument value to scopes, not %s", what, kindName(m))
		}
		return false
	}
	if len(m.Content) == 0 {
		b.addf(m, "the values of %s are empty: list the argument values and the scopes each needs", what)
		return false
	}
	ok := true
	r.values = map[string]need{}
	b.pairs(m, "the values of "+what, func(value string, k, v *yaml.Node) {
		n, good := b.need(v, fmt.Sprintf("the value %q of %s", value, what))
		if !good {
			ok = false
			return
		}
		r.values[value] = n
		r.order = append(r.order, value)
	})
	return ok
}

// toolNameProblem explains why name is not a valid MCP tool name; "" when
// it is one.
func toolNameProblem(name string) string {
	const rules = "MCP tool names are 1 to 128 characters of A-Z a-z 0-9 _ - ."
	switch {
	case name == "":
		return "empty tool name (" + rules + ")"
	case len(name) > MaxToolNameLength:
		return fmt.Sprintf("tool name %.40q... is %d characters long (%s)", name, len(name), rules)
	}
	for i := 0; i < len(name); i++ {
		if !toolNameByte(name[i]) {
			return fmt.Sprintf("tool name %q contains %s (%s; globs add * and ?)", name, describeByte(name[i]), rules)
		}
	}
	return ""
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing"
		}
		return "a value tagged " + n.ShortTag()
	case yaml.AliasNode:
		return "an alias"
	}
	return "empty"
}
