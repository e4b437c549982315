package scopes_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

func TestSatisfies(t *testing.T) {
	tests := []struct {
		name     string
		granted  []string
		required string
		want     bool
	}{
		{"exact", []string{"op:add"}, "op:add", true},
		{"exact among others", []string{"profile", "op:div", "op:add"}, "op:add", true},
		{"parent covers child", []string{"op"}, "op:add", true},
		{"parent covers every op", []string{"op"}, "op:div", true},
		{"parent covers grandchild", []string{"op"}, "op:add:fast", true},
		{"partial word prefix", []string{"o"}, "op:add", false},
		{"prefix with trailing colon", []string{"op:"}, "op:add", false},
		{"truncated child", []string{"op:ad"}, "op:add", false},
		{"child does not cover parent", []string{"op:add"}, "op", false},
		{"sibling", []string{"op:sub"}, "op:add", false},
		{"longer granted", []string{"op:addition"}, "op:add", false},
		{"prefix without colon", []string{"op"}, "opx", false},
		{"empty granted string", []string{""}, "op:add", false},
		{"empty granted covers nothing even with colon", []string{""}, ":add", false},
		{"nil granted", nil, "op:add", false},
		{"case sensitive", []string{"OP:ADD"}, "op:add", false},
		{"case sensitive parent", []string{"OP"}, "op:add", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scopes.Satisfies(tt.granted, tt.required); got != tt.want {
				t.Errorf("Satisfies(%q, %q) = %v, want %v", tt.granted, tt.required, got, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name           string
		granted        []string
		required       []string
		wantMissing    []string // nil: Check must return nil
		wantChallenge  []string
		wantMsgContain string
	}{
		{name: "nothing required", granted: nil, required: nil},
		{name: "exact", granted: []string{"op:add"}, required: []string{"op:add"}},
		{name: "parent", granted: []string{"op"}, required: []string{"op:add", "op:div"}},
		{
			name: "missing one", granted: []string{"op:add"}, required: []string{"op:div"},
			wantMissing: []string{"op:div"}, wantChallenge: []string{"op:div", "op:add"}, wantMsgContain: "op:div",
		},
		{
			name: "missing some of several", granted: []string{"op:add", "openid"}, required: []string{"op:add", "op:div", "op:mult"},
			wantMissing: []string{"op:div", "op:mult"}, wantChallenge: []string{"op:add", "op:div", "op:mult", "openid"}, wantMsgContain: "op:div op:mult",
		},
		{
			name: "no grant", granted: nil, required: []string{"op:sub"},
			wantMissing: []string{"op:sub"}, wantChallenge: []string{"op:sub"}, wantMsgContain: "op:sub",
		},
		{
			name: "empties dropped and duplicates removed", granted: []string{"", "op:add", "op:add", "profile"}, required: []string{"op:div", "op:div"},
			wantMissing: []string{"op:div", "op:div"}, wantChallenge: []string{"op:div", "op:add", "profile"}, wantMsgContain: "op:div",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := scopes.Check(tt.granted, tt.required)
			if tt.wantMissing == nil {
				if err != nil {
					t.Fatalf("Check(%q, %q) = %v, want nil", tt.granted, tt.required, err)
				}
				return
			}
			var ise *scopes.InsufficientScopeError
			if !errors.As(err, &ise) {
				t.Fatalf("Check(%q, %q) = %v (%T), want *InsufficientScopeError", tt.granted, tt.required, err, err)
			}
			if !slices.Equal(ise.Missing, tt.wantMissing) {
				t.Errorf("Missing = %q, want %q", ise.Missing, tt.wantMissing)
			}
			if !slices.Equal(ise.Required, tt.required) {
				t.Errorf("Required = %q, want %q", ise.Required, tt.required)
			}
			if !slices.Equal(ise.Granted, tt.granted) {
				t.Errorf("Granted = %q, want %q", ise.Granted, tt.granted)
			}
			if got := ise.ChallengeScopes(); !slices.Equal(got, tt.wantChallenge) {
				t.Errorf("ChallengeScopes() = %q, want %q", got, tt.wantChallenge)
			}
			if !strings.Contains(err.Error(), tt.wantMsgContain) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.wantMsgContain)
			}
		})
	}
}

// Check must copy its inputs: mutating the caller's slices afterwards must
// not change the error.
func TestCheckCopiesInputs(t *testing.T) {
	granted := []string{"op:add"}
	required := []string{"op:div"}
	err := scopes.Check(granted, required)
	var ise *scopes.InsufficientScopeError
	if !errors.As(err, &ise) {
		t.Fatalf("Check = %v, want *InsufficientScopeError", err)
	}
	granted[0], required[0] = "changed", "changed"
	if ise.Granted[0] != "op:add" || ise.Required[0] != "op:div" {
		t.Errorf("error aliases caller slices: Granted=%q Required=%q", ise.Granted, ise.Required)
	}
}

func TestChallengeScopesDoesNotMutate(t *testing.T) {
	req := make([]string, 1, 8) // spare capacity: an append-in-place bug would show
	req[0] = "op:div"
	e := &scopes.InsufficientScopeError{Missing: []string{"op:div"}, Required: req, Granted: []string{"op:add"}}
	_ = e.ChallengeScopes()
	if got := req[:2]; got[1] != "" {
		t.Errorf("ChallengeScopes wrote into Required's backing array: %q", got)
	}
	if len(e.Required) != 1 {
		t.Errorf("Required changed to %q", e.Required)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: "", want: []string{}},
		{name: "only spaces", in: "   ", want: []string{}},
		{name: "single", in: "op:add", want: []string{"op:add"}},
		{name: "several", in: "op:add op:sub op:mult op:div", want: []string{"op:add", "op:sub", "op:mult", "op:div"}},
		{name: "runs of spaces", in: "  op:add    op:sub  ", want: []string{"op:add", "op:sub"}},
		{name: "dedupe keeps first order", in: "op:sub op:add op:sub op:add", want: []string{"op:sub", "op:add"}},
		{name: "all printable specials", in: "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z", want: []string{"a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z"}},
		{name: "double quote", in: `op:add "evil`, wantErr: true},
		{name: "backslash", in: `op\add`, wantErr: true},
		{name: "tab separator", in: "op:add\top:sub", wantErr: true},
		{name: "newline", in: "op:add\nop:sub", wantErr: true},
		{name: "CR LF injection", in: "op:add\r\nX-Evil: 1", wantErr: true},
		{name: "NUL", in: "op:\x00add", wantErr: true},
		{name: "DEL", in: "op:add\x7f", wantErr: true},
		{name: "non-ASCII", in: "op:añadir", wantErr: true},
		{name: "invalid UTF-8", in: "op:\xff", wantErr: true},
		{name: "bad token after good ones", in: "op:add op:sub \"", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scopes.Parse(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = %q, nil; want error", tt.in, got)
				}
				if got != nil {
					t.Errorf("Parse(%q) returned %q with its error, want nil", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"op:add", true},
		{"op", true},
		{"!", true}, // %x21
		{"#", true}, // %x23
		{"[", true}, // %x5B
		{"]", true}, // %x5D
		{"~", true}, // %x7E
		{"https://x/y", true},
		{"", false},
		{" ", false}, // %x20
		{"a b", false},
		{`"`, false},    // %x22
		{`\`, false},    // %x5C
		{"\x7f", false}, // DEL
		{"\x1f", false}, // control
		{"\t", false},
		{"é", false}, // non-ASCII
		{"\x80", false},
	}
	for _, tt := range tests {
		if got := scopes.ValidToken(tt.in); got != tt.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// Every byte value is classified exactly as RFC 6749 §3.3 says.
func TestValidTokenEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
		if got := scopes.ValidToken(string([]byte{byte(c)})); got != want {
			t.Errorf("ValidToken(%#x) = %v, want %v", c, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "op:add op:sub", "  op   op:div ", `op:"add`, "op:\\", "a\tb", "é", "op:add op:add"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := scopes.Parse(s)
		if err != nil {
			if got != nil {
				t.Fatalf("Parse(%q) returned %q with error %v", s, got, err)
			}
			return
		}
		fields := strings.Split(s, " ")
		seen := map[string]bool{}
		for _, tok := range got {
			if !scopes.ValidToken(tok) {
				t.Fatalf("Parse(%q) returned invalid token %q", s, tok)
			}
			if !slices.Contains(fields, tok) {
				t.Fatalf("Parse(%q) returned %q, which is not a space-separated field of the input", s, tok)
			}
			if seen[tok] {
				t.Fatalf("Parse(%q) returned %q twice", s, tok)
			}
			seen[tok] = true
		}
		// Every non-empty field made it into the result.
		for _, fld := range fields {
			if fld != "" && !seen[fld] {
				t.Fatalf("Parse(%q) dropped field %q", s, fld)
			}
		}
	})
}
