package accesstoken

import (
	"testing"
)

func TestStaticJWT(t *testing.T) {
	c := NewChecker("https://idp.example.com/", []string{"https://mcp.example.com/mcp"}, false)
	for _, tt := range []struct {
		name string
		cl   Claims
		want Reason // "" accepted
	}{
		{"complete", Claims{Iss: "https://idp.example.com/", HasExp: true, Aud: []string{"https://mcp.example.com/mcp"}, HasAud: true}, ""},
		{"no exp", Claims{Iss: "https://idp.example.com/", Aud: []string{"https://mcp.example.com/mcp"}, HasAud: true}, ReasonFormat},
		{"no iss", Claims{HasExp: true, Aud: []string{"https://mcp.example.com/mcp"}, HasAud: true}, ReasonIssuer},
		{"iss without the trailing slash (RFC 9068 §4: exact)", Claims{Iss: "https://idp.example.com", HasExp: true, Aud: []string{"https://mcp.example.com/mcp"}, HasAud: true}, ReasonIssuer},
		{"wrong audience", Claims{Iss: "https://idp.example.com/", HasExp: true, Aud: []string{"x"}, HasAud: true}, ReasonAudience},
		{"refresh typ", Claims{Iss: "https://idp.example.com/", HasExp: true, Aud: []string{"https://mcp.example.com/mcp"}, HasAud: true, Typ: "Refresh"}, ReasonTokenType},
	} {
		err := c.StaticJWT(&tt.cl)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || err.Reason != tt.want):
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	if err := NewChecker("", []string{"a"}, false).StaticJWT(&Claims{Iss: "x", HasExp: true, Aud: []string{"a"}, HasAud: true}); err == nil {
		t.Error("a Checker without an issuer accepted a JWT")
	}
}

func TestClientAndAzp(t *testing.T) {
	m, err := ReadMembers([]byte(`{"azp":"claude","sub":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Claims()
	if err != nil || c.Azp != "claude" || c.Client() != "claude" {
		t.Fatalf("%+v %v", c, err)
	}
	c.ClientID = "cid"
	if c.Client() != "cid" {
		t.Errorf("Client() = %q, want client_id first", c.Client())
	}
	if m, err = ReadMembers([]byte(`{"azp":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Claims(); err == nil {
		t.Error("azp a number accepted")
	}
}
