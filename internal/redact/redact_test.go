package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestSubject(t *testing.T) {
	for _, sub := range []string{"", "alice", "auth0|0123456789", strings.Repeat("x", 1000)} {
		got := Subject(sub)
		full := sha256.Sum256([]byte(sub))
		if len(got) != 16 || !strings.HasPrefix(hex.EncodeToString(full[:]), got) {
			t.Errorf("Subject(%q) = %q, want the first 16 hex digits of its SHA-256", sub, got)
		}
		if sub != "" && strings.Contains(got, sub) {
			t.Errorf("Subject(%q) contains the subject", sub)
		}
	}
	if Subject("alice") == Subject("bob") {
		t.Error("two subjects hash alike")
	}
}
