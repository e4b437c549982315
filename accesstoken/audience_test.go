package accesstoken

import "testing"

func TestNormalizeAudience(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"HTTPS://Example.COM:443/mcp", "https://example.com/mcp", true},
		{"http://example.com:80/mcp", "http://example.com/mcp", true},
		{"http://example.com:443/mcp", "http://example.com/mcp", false},
		{"https://example.com:8443/mcp", "https://example.com/mcp", false},
		{"https://example.com:/mcp", "https://example.com/mcp", true},
		{"https://example.com", "https://example.com/", true},
		{"https://example.com/mcp", "https://example.com/mcp/", false},
		{"https://example.com/MCP", "https://example.com/mcp", false},
		{"https://example.com/%6D%63%70", "https://example.com/mcp", true},
		{"https://example.com/a%2fb", "https://example.com/a%2Fb", true},
		{"https://example.com/a%2Fb", "https://example.com/a/b", false},
		{"https://example.com/a/./b/../mcp", "https://example.com/a/mcp", true},
		{"https://example.com/mcp?x=1", "https://example.com/mcp?x=1", true},
		{"https://example.com/mcp?x=1", "https://example.com/mcp", false},
		{"https://example.com/mcp#f", "https://example.com/mcp", false},
		{"https://[::1]:443/mcp", "https://[::1]/mcp", true},
		{"https://User@Example.com/mcp", "https://User@example.com/mcp", true},
		{"api://default", "API://DEFAULT", true},
		{"my-api", "MY-API", false},
		{"urn:example:mcp", "URN:example:mcp", false},
		{"https://example.com/%zz", "https://example.com/%zz", true},
		{"https://example.com/%zz", "https://example.com/%ZZ", false},
		{"https://example.com:abc/mcp", "https://example.com/mcp", false},
		{"https://%41PI.example.com/mcp", "https://api.example.com/mcp", true}, // decoded, then lowercased
		{"https://ex%2Fample.com/mcp", "https://ex%2fample.com/mcp", true},     // escapes keep uppercase hex
		{"https://a:b:443/mcp", "https://a:b/mcp", false},                      // a colon in a reg-name: not a URI
		{"https://[::1/mcp", "https://[::1]/mcp", false},                       // an unclosed IP literal
		{"", "", true},
	}
	for _, tt := range tests {
		na, nb := normalizeAudience(tt.a), normalizeAudience(tt.b)
		if (na == nb) != tt.same {
			t.Errorf("normalize(%q) = %q, normalize(%q) = %q; same = %v, want %v", tt.a, na, tt.b, nb, na == nb, tt.same)
		}
	}
}

func TestRemoveDotSegments(t *testing.T) {
	// RFC 3986 §5.2.4 examples plus edge cases.
	tests := map[string]string{
		"/a/b/c/./../../g":   "/a/g",
		"mid/content=5/../6": "mid/6",
		"/mcp":               "/mcp",
		"/mcp/":              "/mcp/",
		"/..":                "/",
		"/a/..":              "/",
		"/a/.":               "/a/",
		"":                   "",
	}
	for in, want := range tests {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzNormalizeAudience: normalizing twice changes nothing. Checker.Static
// relies on it to look an "aud" up as it came before normalizing it: an
// "aud" that equals an accepted (normalized) audience normalizes to itself.
func FuzzNormalizeAudience(f *testing.F) {
	for _, s := range []string{
		"https://mcp.example.com/mcp", "HTTPS://MCP.Example.COM:443/a/../mcp/", "http://[::1]:80/x?y#z",
		"https://u@h:0443/%7e/./a", "urn:x", "https://h:ab/", "https://:443/", "https://h/a/b/../../..", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := normalizeAudience(s)
		if nn := normalizeAudience(n); nn != n {
			t.Fatalf("normalizeAudience(%q) = %q, and again %q", s, n, nn)
		}
	})
}
