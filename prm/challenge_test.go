package prm

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

const testPRM = "https://calc.example.com/.well-known/oauth-protected-resource/mcp"

func TestChallengeString(t *testing.T) {
	tests := []struct {
		name string
		ch   Challenge
		want string
	}{
		{"empty", Challenge{}, `Bearer`},
		{"no token", Challenge{
			ResourceMetadata: testPRM,
			Scope:            []string{"op:add", "op:sub", "op:mult", "op:div"},
		}, `Bearer resource_metadata="` + testPRM + `", scope="op:add op:sub op:mult op:div"`},
		{"invalid token", Challenge{
			ResourceMetadata: testPRM,
			Error:            ErrInvalidToken,
			ErrorDescription: "The access token expired",
		}, `Bearer resource_metadata="` + testPRM + `", error="invalid_token", error_description="The access token expired"`},
		{"insufficient scope", Challenge{
			ResourceMetadata: testPRM,
			Scope:            []string{"op:div"},
			Error:            ErrInsufficientScope,
			ErrorDescription: "divide needs op:div",
		}, `Bearer resource_metadata="` + testPRM + `", scope="op:div", error="insufficient_scope", error_description="divide needs op:div"`},
		{"invalid request", Challenge{Error: ErrInvalidRequest}, `Bearer error="invalid_request"`},
		{"only scope", Challenge{Scope: []string{"a"}}, `Bearer scope="a"`},
		{"only description", Challenge{ErrorDescription: "x, y=z"}, `Bearer error_description="x, y=z"`},
		{"bad scopes dropped", Challenge{Scope: []string{"", "a b", `q"`, `b\s`, "ok", "é", "\x7f", "!#[]~"}},
			`Bearer scope="ok !#[]~"`},
		{"all scopes bad", Challenge{Scope: []string{"", " "}, Error: ErrInvalidToken}, `Bearer error="invalid_token"`},
		{"description CRLF injection", Challenge{
			Error:            ErrInvalidToken,
			ErrorDescription: "bad\r\nSet-Cookie: a=b",
		}, `Bearer error="invalid_token", error_description="bad  Set-Cookie: a=b"`},
		{"description quote and backslash", Challenge{
			ErrorDescription: `say "hi" \ bye`,
		}, `Bearer error_description="say 'hi' ? bye"`},
		{"description quote breakout", Challenge{
			ErrorDescription: `x", error="invalid_request`,
		}, `Bearer error_description="x', error='invalid_request"`},
		{"description non-ASCII and controls", Challenge{
			ErrorDescription: "é\x00\x1b\x7f\xff\tz",
		}, `Bearer error_description="????? z"`},
		{"error sanitized", Challenge{Error: "a\"b\nc"}, `Bearer error="a'b c"`},
		{"resource_metadata encoded", Challenge{
			ResourceMetadata: "https://h/a b\"c\\d\r\né",
		}, `Bearer resource_metadata="https://h/a%20b%22c%5Cd%0D%0A%C3%A9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ch.String(); got != tt.want {
				t.Errorf("String() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteQuotedContent(t *testing.T) {
	for in, want := range map[string]string{
		"":       "",
		"abc":    "abc",
		`a"b`:    `a\"b`,
		`a\b`:    `a\\b`,
		`\"`:     `\\\"`,
		"x y, z": "x y, z",
	} {
		var b strings.Builder
		writeQuotedContent(&b, in)
		if b.String() != want {
			t.Errorf("writeQuotedContent(%q) = %q, want %q", in, b.String(), want)
		}
	}
}

// The Go MCP SDK's client parses what we send.
func TestChallengeSDKRoundTrip(t *testing.T) {
	for _, ch := range []Challenge{
		{ResourceMetadata: testPRM, Scope: []string{"op:add", "op:sub"}},
		{ResourceMetadata: testPRM, Scope: []string{"op:div"}, Error: ErrInsufficientScope, ErrorDescription: "needs op:div, please, a=b"},
		{ResourceMetadata: testPRM, Error: ErrInvalidToken, ErrorDescription: "token expired"},
		{ResourceMetadata: "http://localhost:8080/.well-known/oauth-protected-resource/mcp?x=1,y=2"},
		{Error: ErrInvalidRequest, ErrorDescription: `quote " and \ and , and =`},
	} {
		assertSDKParses(t, ch)
	}
}

func assertSDKParses(t *testing.T, ch Challenge) {
	t.Helper()
	s := ch.String()
	got, err := oauthex.ParseWWWAuthenticate([]string{s})
	if err != nil {
		t.Fatalf("ParseWWWAuthenticate(%q): %v", s, err)
	}
	if len(got) != 1 {
		t.Fatalf("ParseWWWAuthenticate(%q) = %d challenges: %+v", s, len(got), got)
	}
	if got[0].Scheme != "bearer" {
		t.Errorf("%q: scheme %q", s, got[0].Scheme)
	}
	want := map[string]string{
		"resource_metadata": encodeURLChars(ch.ResourceMetadata),
		"scope":             joinScopes(ch.Scope),
		"error":             sanitizeErrorText(ch.Error),
		"error_description": sanitizeErrorText(ch.ErrorDescription),
	}
	for k, v := range want {
		if v == "" {
			if _, ok := got[0].Params[k]; ok {
				t.Errorf("%q: unexpected param %s=%q", s, k, got[0].Params[k])
			}
			continue
		}
		if got[0].Params[k] != v {
			t.Errorf("%q: %s = %q, want %q", s, k, got[0].Params[k], v)
		}
	}
	if len(got[0].Params) > len(want) {
		t.Errorf("%q: extra params %v", s, got[0].Params)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	ch := &Challenge{ResourceMetadata: testPRM, Scope: []string{"op:div"}, Error: ErrInsufficientScope}
	WriteError(rec, http.StatusForbidden, ch, ErrorBody{Error: ErrInsufficientScope, ErrorDescription: "needs op:div"})
	if rec.Code != http.StatusForbidden {
		t.Errorf("status %d", rec.Code)
	}
	want := `Bearer resource_metadata="` + testPRM + `", scope="op:div", error="insufficient_scope"`
	if got := rec.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	if got := rec.Body.String(); got != `{"error":"insufficient_scope","error_description":"needs op:div"}` {
		t.Errorf("body = %s", got)
	}

	rec = httptest.NewRecorder()
	WriteError(rec, http.StatusServiceUnavailable, nil, ErrorBody{Error: "temporarily_unavailable"})
	if _, ok := rec.Header()["Www-Authenticate"]; ok {
		t.Error("WWW-Authenticate set for nil challenge")
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"error":"temporarily_unavailable"}` {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}

func FuzzChallenge(f *testing.F) {
	f.Add(testPRM, "op:add,op:sub", ErrInvalidToken, "token expired")
	f.Add("", "", "", "")
	f.Add("https://h/\r\nX: y", "a b,\"", "x\"y", "a\r\nb\\\"c")
	f.Add("http://localhost/\\", "op:div", ErrInsufficientScope, `\`)
	f.Fuzz(func(t *testing.T, rm, scopes, errCode, desc string) {
		ch := Challenge{
			ResourceMetadata: rm,
			Scope:            strings.Split(scopes, ","),
			Error:            errCode,
			ErrorDescription: desc,
		}
		s := ch.String()
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f {
				t.Fatalf("String() = %q contains byte %#x", s, c)
			}
		}
		if !strings.HasPrefix(s, "Bearer") {
			t.Fatalf("String() = %q", s)
		}
		// The SDK must parse every output and see exactly the sanitized
		// values; for valid inputs those are the inputs themselves.
		assertSDKParses(t, ch)
		if isValidURLChars(rm) && encodeURLChars(rm) != rm {
			t.Errorf("valid resource_metadata %q altered", rm)
		}
		if isValidErrorText(desc) && sanitizeErrorText(desc) != desc {
			t.Errorf("valid error_description %q altered", desc)
		}
	})
}

func isValidURLChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func isValidErrorText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
