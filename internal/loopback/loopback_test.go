package loopback

import "testing"

func TestHost(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"localhost", true}, {"LOCALHOST", true}, {"127.0.0.1", true}, {"127.8.9.10", true},
		{"::1", true}, {"[::1]", true}, {"::ffff:127.0.0.1", true},
		{"", false}, {"localhost.example.com", false}, {"10.0.0.1", false}, {"0.0.0.0", false},
		{"::", false}, {"example.com", false}, {"127.0.0.1.nip.io", false}, {"[::1", false},
	} {
		if got := Host(tt.in); got != tt.want {
			t.Errorf("Host(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestHostPort(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"127.0.0.1:8080", true}, {"[::1]:443", true}, {"localhost:1", true}, {"localhost", true},
		{"evil.example:80", false}, {"10.1.2.3:80", false}, {"", false},
		// The gateway's DNS-rebinding check reads Host headers in these forms.
		{"127.0.0.1:80", true}, {"127.0.0.1", true}, {"127.9.9.9:1", true}, {"::1", true}, {"[::1]", true},
		{"LOCALHOST:3000", true}, {"0.0.0.0:80", false}, {"evil.example", false}, {"localhost.evil.example", false},
	} {
		if got := HostPort(tt.in); got != tt.want {
			t.Errorf("HostPort(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
