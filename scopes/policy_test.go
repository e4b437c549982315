package scopes_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

func mustParse(t testing.TB, doc string) *scopes.Policy {
	t.Helper()
	p, err := scopes.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatalf("ParsePolicy:\n%s\n%v", doc, err)
	}
	return p
}

// args builds an ArgFunc from name/value pairs; a nil map means no
// arguments at all.
func args(kv map[string]string) scopes.ArgFunc {
	if kv == nil {
		return nil
	}
	return func(name string) (string, bool) {
		v, ok := kv[name]
		return v, ok
	}
}

const matcherPolicy = `
default: deny
tools:
  echo: []
  get-sum: [math:add]
  two-scopes: [a, b]
  "admin-*": [admin]
  "*-read": [read]
  "*.secret": deny
  admin-login: []
  legacy: deny
  calculator:
    argument: operation
    values: {add: [op:add], subtract: [op:sub], multiply: [op:mult], divide: [op:div], noop: [], forbidden: deny}
  strict:
    argument: mode
    values: {safe: []}
  lenient:
    argument: mode
    values: {danger: [admin]}
    default: [basic]
  closed:
    argument: mode
    values: {x: deny}
`

func TestRequirement(t *testing.T) {
	p := mustParse(t, matcherPolicy)
	tests := []struct {
		name        string
		tool        string
		args        map[string]string
		wantScopes  []string
		wantDenied  bool
		wantVisible bool
		wantArg     string
		wantValue   string
	}{
		{name: "exact, any token", tool: "echo", wantVisible: true},
		{name: "exact, one scope", tool: "get-sum", wantScopes: []string{"math:add"}, wantVisible: true},
		{name: "exact, every listed scope", tool: "two-scopes", wantScopes: []string{"a", "b"}, wantVisible: true},
		{name: "exact, deny", tool: "legacy", wantDenied: true},
		{name: "glob", tool: "admin-users", wantScopes: []string{"admin"}, wantVisible: true},
		{name: "glob star matches nothing", tool: "admin-", wantScopes: []string{"admin"}, wantVisible: true},
		{name: "glob star crosses slashes", tool: "admin-a/b", wantScopes: []string{"admin"}, wantVisible: true},
		{name: "glob is anchored", tool: "xadmin-users", wantDenied: true},
		{name: "exact wins over glob", tool: "admin-login", wantVisible: true},
		{name: "two globs: both needed", tool: "admin-read", wantScopes: []string{"admin", "read"}, wantVisible: true},
		{name: "glob deny wins over another glob", tool: "admin-x.secret", wantDenied: true},
		{name: "glob deny", tool: "db.secret", wantDenied: true},
		{name: "default deny", tool: "shell", wantDenied: true},
		{name: "case matters", tool: "Echo", wantDenied: true},
		{name: "empty name", tool: "", wantDenied: true},
		{name: "argument value", tool: "calculator", args: map[string]string{"operation": "divide"}, wantScopes: []string{"op:div"}, wantVisible: true, wantArg: "operation", wantValue: "divide"},
		{name: "argument value needing nothing", tool: "calculator", args: map[string]string{"operation": "noop"}, wantVisible: true, wantArg: "operation", wantValue: "noop"},
		{name: "argument value denied", tool: "calculator", args: map[string]string{"operation": "forbidden"}, wantDenied: true, wantVisible: true, wantArg: "operation", wantValue: "forbidden"},
		{name: "unlisted value, rule default omitted: deny", tool: "calculator", args: map[string]string{"operation": "modulo"}, wantDenied: true, wantVisible: true, wantArg: "operation", wantValue: "modulo"},
		{name: "argument value case matters", tool: "calculator", args: map[string]string{"operation": "Divide"}, wantDenied: true, wantVisible: true, wantArg: "operation", wantValue: "Divide"},
		{name: "argument absent", tool: "calculator", args: map[string]string{"a": "1"}, wantDenied: true, wantVisible: true, wantArg: "operation"},
		{name: "no arguments", tool: "calculator", wantDenied: true, wantVisible: true, wantArg: "operation"},
		{name: "other argument ignored", tool: "strict", args: map[string]string{"mode": "safe", "operation": "divide"}, wantVisible: true, wantArg: "mode", wantValue: "safe"},
		{name: "rule default", tool: "lenient", args: map[string]string{"mode": "other"}, wantScopes: []string{"basic"}, wantVisible: true, wantArg: "mode", wantValue: "other"},
		{name: "rule default when absent", tool: "lenient", wantScopes: []string{"basic"}, wantVisible: true, wantArg: "mode"},
		{name: "listed value over rule default", tool: "lenient", args: map[string]string{"mode": "danger"}, wantScopes: []string{"admin"}, wantVisible: true, wantArg: "mode", wantValue: "danger"},
		{name: "a rule that denies everything hides its tool", tool: "closed", args: map[string]string{"mode": "x"}, wantDenied: true, wantArg: "mode", wantValue: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.Requirement(tt.tool, args(tt.args))
			if r.Tool != tt.tool || r.Denied != tt.wantDenied || r.Visible != tt.wantVisible || r.Argument != tt.wantArg || r.Value != tt.wantValue {
				t.Errorf("Requirement(%q, %v) = %+v; want denied %v, visible %v, argument %q = %q", tt.tool, tt.args, r, tt.wantDenied, tt.wantVisible, tt.wantArg, tt.wantValue)
			}
			if got := r.Scopes(); !slices.Equal(got, tt.wantScopes) {
				t.Errorf("Scopes() = %q, want %q", got, tt.wantScopes)
			}
			if got := p.Visible(tt.tool); got != tt.wantVisible {
				t.Errorf("Visible(%q) = %v, want %v", tt.tool, got, tt.wantVisible)
			}
			// A token holding exactly the required scopes may call, one
			// missing any of them may not.
			err := p.Allowed(tt.wantScopes, tt.tool, args(tt.args))
			var denied *scopes.DeniedError
			switch {
			case tt.wantDenied:
				if !errors.As(err, &denied) || denied.Unknown == tt.wantVisible {
					t.Errorf("Allowed = %v, want a *DeniedError (Unknown %v)", err, !tt.wantVisible)
				}
			case err != nil:
				t.Errorf("Allowed(%q) = %v, want nil", tt.wantScopes, err)
			}
			for i := range tt.wantScopes {
				less := slices.Delete(slices.Clone(tt.wantScopes), i, i+1)
				var ise *scopes.InsufficientScopeError
				if err := p.Allowed(less, tt.tool, args(tt.args)); !errors.As(err, &ise) || !slices.Equal(ise.Missing, tt.wantScopes[i:i+1]) {
					t.Errorf("Allowed(%q) = %v, want *InsufficientScopeError missing %q", less, err, tt.wantScopes[i])
				}
			}
		})
	}
}

// The scope hierarchy of Satisfies applies to every decision.
func TestRequirementHierarchy(t *testing.T) {
	p := mustParse(t, matcherPolicy)
	tests := []struct {
		granted []string
		tool    string
		args    map[string]string
		ok      bool
	}{
		{[]string{"op"}, "calculator", map[string]string{"operation": "divide"}, true},
		{[]string{"op"}, "calculator", map[string]string{"operation": "add"}, true},
		{[]string{"op:add"}, "calculator", map[string]string{"operation": "divide"}, false},
		{[]string{"op:div:x"}, "calculator", map[string]string{"operation": "divide"}, false},
		{[]string{"math"}, "get-sum", nil, true},
		{[]string{"ma"}, "get-sum", nil, false},
		{[]string{"admin", "read"}, "admin-read", nil, true},
		{[]string{"admin"}, "admin-read", nil, false},
		{[]string{"op"}, "calculator", map[string]string{"operation": "forbidden"}, false}, // deny: no scope helps
	}
	for _, tt := range tests {
		err := p.Allowed(tt.granted, tt.tool, args(tt.args))
		if (err == nil) != tt.ok {
			t.Errorf("Allowed(%q, %q, %v) = %v, want ok %v", tt.granted, tt.tool, tt.args, err, tt.ok)
		}
	}
}

func TestCallable(t *testing.T) {
	p := mustParse(t, matcherPolicy)
	tests := []struct {
		granted []string
		tool    string
		want    bool
	}{
		{nil, "echo", true},
		{nil, "get-sum", false},
		{[]string{"math:add"}, "get-sum", true},
		{nil, "legacy", false},
		{[]string{"op"}, "legacy", false},
		{nil, "shell", false},
		{nil, "calculator", true}, // noop needs nothing
		{nil, "strict", true},
		{nil, "lenient", false},
		{[]string{"basic"}, "lenient", true},
		{[]string{"admin"}, "lenient", true},
		{[]string{"admin"}, "closed", false},
		{[]string{"admin"}, "admin-users", true},
		{[]string{"read"}, "admin-read", false},
	}
	for _, tt := range tests {
		if got := p.Callable(tt.granted, tt.tool); got != tt.want {
			t.Errorf("Callable(%q, %q) = %v, want %v", tt.granted, tt.tool, got, tt.want)
		}
	}
	// A calculator policy whose every value needs a scope is callable only
	// with one of them.
	c := calculatorPolicy(t)
	if c.Callable(nil, "calculator") != true { // the built-in rule default is []
		t.Error("Calculator(): calculator not callable without scopes (its unknown operations need none)")
	}
	strict := mustParse(t, "tools:\n  calculator:\n    argument: operation\n    values: {add: [op:add], divide: [op:div]}\n")
	for granted, want := range map[string]bool{"": false, "op:add": true, "op:div": true, "op": true, "op:sub": false} {
		if got := strict.Callable(strings.Fields(granted), "calculator"); got != want {
			t.Errorf("strict Callable(%q) = %v, want %v", granted, got, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		doc        string
		wantDenied bool
		wantScopes []string
	}{
		{"default: deny\n", true, nil},
		{"default: []\n", false, nil},
		{"default: [basic, extra]\n", false, []string{"basic", "extra"}},
		{"tools:\n  echo: []\n", true, nil}, // omitted: deny
		{"default: [a, a, b]\n", false, []string{"a", "b"}},
	}
	for _, tt := range tests {
		p := mustParse(t, tt.doc)
		r := p.Requirement("anything", nil)
		if r.Denied != tt.wantDenied || !slices.Equal(r.Scopes(), tt.wantScopes) || r.Visible == tt.wantDenied {
			t.Errorf("%q: Requirement = %+v scopes %q; want denied %v scopes %q", tt.doc, r, r.Scopes(), tt.wantDenied, tt.wantScopes)
		}
	}
}

// A Policy nobody built denies everything.
// TestMatches: a tool is decided by a rule (its name, a glob) or only by
// the default.
func TestMatches(t *testing.T) {
	p := mustParse(t, matcherPolicy)
	for tool, want := range map[string]bool{
		"echo": true, "legacy": true, "calculator": true, "admin-x": true, "notes-read": true, "a.secret": true,
		"unknown": false, "admin": false, "read": false, "echo2": false, "": false,
	} {
		if got := p.Matches(tool); got != want {
			t.Errorf("Matches(%q) = %v, want %v", tool, got, want)
		}
	}
	if scopes.AnyValidToken().Matches("echo") {
		t.Error("the any-valid-token policy has no rule, only its default")
	}
}

func TestZeroAndNilPolicyDeny(t *testing.T) {
	for name, p := range map[string]*scopes.Policy{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			r := p.Requirement("echo", nil)
			if !r.Denied || r.Visible {
				t.Errorf("Requirement = %+v, want denied and invisible", r)
			}
			if p.Visible("echo") || p.Callable([]string{"op"}, "echo") || p.Allowed([]string{"op"}, "echo", nil) == nil {
				t.Error("a zero policy lets a call through")
			}
			if p.Scopes() != nil || p.Tools() != nil || p.Described() != nil || p.Describe("op") != "" || p.Argument("calculator") != "" || p.ArgumentValues("calculator") != nil {
				t.Error("a zero policy mentions something")
			}
			if p.Label("echo") != scopes.OtherTool {
				t.Error("a zero policy labels a tool")
			}
			if p.Matches("echo") {
				t.Error("a zero policy has a rule")
			}
			if got := string(p.YAML()); got != "default: deny\n" {
				t.Errorf("YAML() = %q", got)
			}
		})
	}
}

func TestPolicyListings(t *testing.T) {
	p := mustParse(t, `
default: [base]
scopes:
  op: All operations
  math:add: Add numbers
tools:
  get-sum: [math:add, base]
  "x-*": [glob:scope]
  calculator:
    argument: operation
    values: {add: [op:add], divide: [op:div, math:add]}
    default: [op:other]
  echo: []
`)
	if got, want := p.Scopes(), []string{"base", "math:add", "glob:scope", "op:add", "op:div", "op:other"}; !slices.Equal(got, want) {
		t.Errorf("Scopes() = %q, want %q", got, want)
	}
	if got, want := p.Tools(), []string{"get-sum", "calculator", "echo"}; !slices.Equal(got, want) {
		t.Errorf("Tools() = %q, want %q", got, want)
	}
	if got, want := p.Described(), []string{"op", "math:add"}; !slices.Equal(got, want) {
		t.Errorf("Described() = %q, want %q", got, want)
	}
	if got := p.Describe("math:add"); got != "Add numbers" {
		t.Errorf("Describe(math:add) = %q", got)
	}
	if got := p.Describe("op:add"); got != "" {
		t.Errorf("Describe(op:add) = %q, want empty (not described)", got)
	}
	if got := p.Argument("calculator"); got != "operation" {
		t.Errorf("Argument(calculator) = %q", got)
	}
	if got := p.Argument("echo"); got != "" {
		t.Errorf("Argument(echo) = %q", got)
	}
	if got := p.Argument("x-y"); got != "" {
		t.Errorf("Argument(x-y) = %q", got)
	}
	if got, want := p.ArgumentValues("calculator"), []string{"add", "divide"}; !slices.Equal(got, want) {
		t.Errorf("ArgumentValues = %q, want %q", got, want)
	}
	for tool, want := range map[string]string{"echo": "echo", "calculator": "calculator", "x-y": scopes.OtherTool, "shell": scopes.OtherTool, "": scopes.OtherTool} {
		if got := p.Label(tool); got != want {
			t.Errorf("Label(%q) = %q, want %q", tool, got, want)
		}
	}

	// Every listing is a copy: changing it changes nothing in the policy.
	for _, s := range [][]string{p.Scopes(), p.Tools(), p.Described(), p.ArgumentValues("calculator"), p.Requirement("get-sum", nil).Scopes()} {
		for i := range s {
			s[i] = "changed"
		}
	}
	if p.Scopes()[0] != "base" || p.Tools()[0] != "get-sum" || p.Described()[0] != "op" || p.ArgumentValues("calculator")[0] != "add" || p.Requirement("get-sum", nil).Scopes()[0] != "math:add" {
		t.Error("a returned slice aliases the policy")
	}
}

func TestAppendScopes(t *testing.T) {
	p := mustParse(t, matcherPolicy)
	var need []string
	for _, c := range []struct{ tool, op string }{{"calculator", "divide"}, {"get-sum", ""}, {"calculator", "divide"}, {"two-scopes", ""}, {"calculator", "forbidden"}, {"echo", ""}} {
		need = p.Requirement(c.tool, scopes.Arg("operation", c.op)).AppendScopes(need)
	}
	if want := []string{"op:div", "math:add", "a", "b"}; !slices.Equal(need, want) {
		t.Errorf("AppendScopes over a batch = %q, want %q", need, want)
	}
	// Appending to a slice with spare capacity never touches the policy's.
	r := p.Requirement("two-scopes", nil)
	dst := r.AppendScopes(make([]string, 0, 1))
	dst[0] = "changed"
	if got := p.Requirement("two-scopes", nil).Scopes(); got[0] != "a" {
		t.Errorf("AppendScopes aliased the policy: %q", got)
	}
}

func TestDeniedError(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		err     *scopes.DeniedError
		want    string
		maxSize int
	}{
		{&scopes.DeniedError{Tool: "shell", Unknown: true}, `unknown tool "shell"`, 0},
		{&scopes.DeniedError{Tool: "calculator", Argument: "operation", Value: "modulo"}, `tool "calculator" does not accept operation "modulo"`, 0},
		{&scopes.DeniedError{Tool: "a\r\nX-Evil: 1", Unknown: true}, `unknown tool "a\r\nX-Evil: 1"`, 0},
		{&scopes.DeniedError{Tool: long, Unknown: true}, `unknown tool "xxx`, 200},
		{&scopes.DeniedError{Tool: "c", Argument: "op", Value: long}, `tool "c" does not accept op "xxx`, 300},
	}
	for _, tt := range tests {
		got := tt.err.Error()
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("Error() = %q, want prefix %q", got, tt.want)
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Errorf("Error() = %q carries a raw line break", got)
		}
		if tt.maxSize > 0 && len(got) > tt.maxSize {
			t.Errorf("Error() is %d bytes, want at most %d", len(got), tt.maxSize)
		}
	}
}

func TestArg(t *testing.T) {
	f := scopes.Arg("operation", "add")
	if v, ok := f("operation"); v != "add" || !ok {
		t.Errorf("Arg(operation) = %q, %v", v, ok)
	}
	if v, ok := f("a"); v != "" || ok {
		t.Errorf("Arg(a) = %q, %v", v, ok)
	}
}

func BenchmarkRequirement(b *testing.B) {
	p := calculatorPolicy(b)
	granted := []string{"op:add", "op:div"}
	b.Run("calculator", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Requirement("calculator", scopes.Arg("operation", "divide")).Check(granted); err != nil {
				b.Fatal(err)
			}
		}
	})
	g := mustParse(b, "default: deny\ntools:\n  \"admin-*\": [admin]\n  \"*-read\": [read]\n  \"*.secret\": deny\n")
	b.Run("two-globs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := g.Requirement("admin-read", nil).Check([]string{"admin", "read"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
