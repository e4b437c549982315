package scopes

import (
	"path"
	"strings"
	"testing"
)

func TestValidToolName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"getUser", true},
		{"DATA_EXPORT_v2", true},
		{"admin.tools.list", true},
		{"a-b_c.d", true},
		{"0", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"get user", false},
		{"a/b", false},
		{"a,b", false},
		{"a*", false},
		{"café", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := ValidToolName(tt.name); got != tt.want {
			t.Errorf("ValidToolName(%q) = %v, want %v", tt.name, got, tt.want)
		}
		if got := toolNameProblem(tt.name) == ""; got != tt.want {
			t.Errorf("toolNameProblem(%q) = %q, want ok %v", tt.name, toolNameProblem(tt.name), tt.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern string
		name    string
		want    bool
	}{
		{"admin-*", "admin-", true},
		{"admin-*", "admin-users", true},
		{"admin-*", "admin-a/b", true}, // unlike path.Match
		{"admin-*", "admin-a\nb", true},
		{"admin-*", "xadmin-users", false},
		{"admin-*", "admin", false},
		{"admin-*", "Admin-users", false},
		{"*-read", "x-read", true},
		{"*-read", "x-read-x", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "abbc", false},
		{"a?c", "a€c", true}, // ? is one character, not one byte
		{"a.c", "abc", false},
		{"a.c", "a.c", true},
		{"a**b", "ab", true},
		{"a**b", "axxb", true},
		{"*a*", "banana", true},
		{"?*", "x", true},
		{"?*", "", false},
	}
	for _, tt := range tests {
		g, prob := compileGlob(tt.pattern)
		if prob != "" {
			t.Fatalf("compileGlob(%q): %s", tt.pattern, prob)
		}
		if got := g.match(tt.name); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestCompileGlobProblems(t *testing.T) {
	tests := []struct {
		pattern string
		want    string // "" for a good pattern
	}{
		{"a*", ""},
		{"?", ""},
		{strings.Repeat("?", 128) + "*", ""},
		{strings.Repeat("?", 129) + "*", "can never match"},
		{"*", "matches every tool"},
		{"**", "matches every tool"},
		{"a[b]*", `"["`},
		{"a\\*", `"\\"`},
		{"a/*", `"/"`},
		{"a *", "a space"},
		{"a\t*", "control character"},
		{"é*", "non-ASCII"},
	}
	for _, tt := range tests {
		_, prob := compileGlob(tt.pattern)
		if tt.want == "" {
			if prob != "" {
				t.Errorf("compileGlob(%q) = %q, want no problem", tt.pattern, prob)
			}
			continue
		}
		if !strings.Contains(prob, tt.want) {
			t.Errorf("compileGlob(%q) = %q, want it to contain %q", tt.pattern, prob, tt.want)
		}
	}
}

// globWitness is the shortest name a good pattern matches.
func globWitness(pattern string) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
		case '?':
			b.WriteByte('a')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzGlob: every pattern compileGlob accepts matches some valid tool
// name, and matches exactly as path.Match does on names without '/' (the
// one character whose meaning differs).
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"admin-*", "admin-users"}, {"*-read", "x-read"}, {"a?c", "abc"}, {"a**b", "ab"},
		{"?*?", "ab"}, {"*a*b*", "xaxbx"}, {"a?c", "a€c"}, {"a*", "a\xff"}, {"[", "["}, {"*", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, prob := compileGlob(pattern)
		if prob != "" {
			if g != nil {
				t.Fatal("a glob came with a problem")
			}
			return
		}
		w := globWitness(pattern)
		if !ValidToolName(w) || !g.match(w) {
			t.Fatalf("%q accepted but its witness %q is not a matching valid name", pattern, w)
		}
		if g.match("") {
			t.Fatalf("%q matches the empty name", pattern)
		}
		if strings.Contains(name, "/") {
			return
		}
		want, err := path.Match(pattern, name)
		if err != nil {
			t.Fatalf("path.Match(%q): %v", pattern, err)
		}
		if got := g.match(name); got != want {
			t.Fatalf("%q matches %q = %v, path.Match says %v", pattern, name, got, want)
		}
	})
}
