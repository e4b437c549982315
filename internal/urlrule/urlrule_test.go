package urlrule

import (
	"strings"
	"testing"
)

func TestServerAndIdentifier(t *testing.T) {
	for _, tt := range []struct {
		in                 string
		server, identifier string // "" accepted, else a substring of the error
	}{
		{"https://auth.example.com", "", ""},
		{"https://auth.example.com/tenant/", "", ""},
		{"http://127.0.0.1:9000/x", "", ""},
		{"http://localhost/x", "", ""},
		{"http://[::1]:80/x", "", ""},
		{"http://auth.example.com", "must use https", "must use https"},
		{"ftp://auth.example.com", "scheme must be https", "scheme must be https"},
		{"/relative", "not an absolute URL", "not an absolute URL"},
		{"https://", "not an absolute URL", "not an absolute URL"},
		{"https://auth.example.com/x#frag", "fragment", "fragment"},
		{"https://auth.example.com/x#", "fragment", "fragment"},
		{"https://auth.example.com/introspect?tenant=1", "", "must not have a query"},
		{"https://auth.example.com/x?", "", "must not have a query"},
		{"https://auth.example.com/%zz", "not a valid URL", "not a valid URL"},
	} {
		check := func(name string, err error, want string) {
			t.Helper()
			switch {
			case want == "" && err != nil:
				t.Errorf("%s(%q) = %v, want ok", name, tt.in, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("%s(%q) = %v, want an error containing %q", name, tt.in, err, want)
			}
		}
		_, err := Server(tt.in)
		check("Server", err, tt.server)
		_, err = Identifier(tt.in)
		check("Identifier", err, tt.identifier)
	}
}

func TestSameIssuer(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"https://a.example", "https://a.example", true},
		{"https://a.example/", "https://a.example", true},
		{"https://a.example", "https://a.example/", true},
		{"https://a.example//", "https://a.example", false},
		{"https://a.example/x", "https://a.example/y", false},
		{"https://A.example", "https://a.example", false},
	} {
		if got := SameIssuer(tt.a, tt.b); got != tt.want {
			t.Errorf("SameIssuer(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
