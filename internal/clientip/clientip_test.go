package clientip

import "testing"

func TestKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{" 192.0.2.7 ", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"127.0.0.1", "127.0.0.1"},
		{"not-an-ip", "not-an-ip"},
		{"", ""},
	} {
		if got := Key(tt.in); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Two addresses of one /64 are one client; of two /64s, two.
	if Key("2001:db8::1") != Key("2001:db8::ffff:1") {
		t.Error("one /64 gave two keys")
	}
	if Key("2001:db8:0:1::1") == Key("2001:db8:0:2::1") {
		t.Error("two /64s gave one key")
	}
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "::1", "fe80::1%eth0", "::ffff:10.0.0.1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := Key(s)
		// Idempotent on what it returns for an address: a key is its own key
		// (a /64 prefix is not an address, so it is returned as is).
		if Key(k) != k {
			t.Errorf("Key(Key(%q)) = %q, want %q", s, Key(k), k)
		}
	})
}
