package tokendigest

import (
	"crypto/sha256"
	"testing"
)

func TestRevocation(t *testing.T) {
	for _, tt := range []struct {
		name, token, digestOf string
	}{
		{"JWS: the signing input", "aGVhZA.cGF5bG9hZA.c2ln", "aGVhZA.cGF5bG9hZA"},
		{"JWS, another signature: the same", "aGVhZA.cGF5bG9hZA.b3RoZXI", "aGVhZA.cGF5bG9hZA"},
		{"opaque", "2YotnFZFEjr1zCsicMWpAA", "2YotnFZFEjr1zCsicMWpAA"},
		{"one dot", "a.b", "a.b"},
		{"JWE (four dots)", "a.b.c.d.e", "a.b.c.d.e"},
		{"empty signature part", "a.b.", "a.b"},
		{"empty", "", ""},
	} {
		if got, want := Revocation(tt.token), sha256.Sum256([]byte(tt.digestOf)); got != want {
			t.Errorf("%s: Revocation(%q) is not the digest of %q", tt.name, tt.token, tt.digestOf)
		}
	}
}
