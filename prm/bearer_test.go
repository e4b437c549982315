package prm

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unsafe"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
)

func TestTokenFromHeader(t *testing.T) {
	long := strings.Repeat("a", accesstoken.MaxLength)
	tests := []struct {
		name   string
		values []string
		want   string
		reason string // "" for success, "-" for ErrNoToken
	}{
		{"no header", nil, "", "-"},
		{"empty slice", []string{}, "", "-"},
		{"simple", []string{"Bearer abc"}, "abc", ""},
		{"lower scheme", []string{"bearer abc"}, "abc", ""},
		{"upper scheme", []string{"BEARER abc"}, "abc", ""},
		{"mixed scheme", []string{"bEaReR abc"}, "abc", ""},
		{"jwt", []string{"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln-_~+/"}, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln-_~+/", ""},
		{"padding", []string{"Bearer YWJj=="}, "YWJj==", ""},
		{"all chars", []string{"Bearer AZaz09-._~+/="}, "AZaz09-._~+/=", ""},
		{"several spaces", []string{"Bearer    abc"}, "abc", ""},
		{"surrounding OWS", []string{" \tBearer abc\t "}, "abc", ""},
		{"max length", []string{"Bearer " + long}, long, ""},

		{"two values", []string{"Bearer a", "Bearer b"}, "", ProblemMultipleHeaders},
		{"two empty values", []string{"", ""}, "", ProblemMultipleHeaders},
		{"empty value", []string{""}, "", ProblemEmptyHeader},
		{"whitespace value", []string{" \t "}, "", ProblemEmptyHeader},
		{"scheme only", []string{"Bearer"}, "", ProblemMissingToken},
		{"scheme and spaces", []string{"Bearer   "}, "", ProblemMissingToken},
		{"tab separator", []string{"Bearer\tabc"}, "", ProblemSeparator},
		{"space then tab", []string{"Bearer \tabc"}, "", ProblemInvalidCharacter},
		{"basic", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, "", ProblemUnsupported},
		{"dpop", []string{"DPoP abc"}, "", ProblemUnsupported},
		{"token68 without scheme", []string{"abc"}, "", ProblemUnsupported},
		{"scheme prefix", []string{"Bearerx abc"}, "", ProblemUnsupported},
		{"short", []string{"Bear"}, "", ProblemUnsupported},
		{"too long", []string{"Bearer " + long + "a"}, "", ProblemTooLong},
		{"two tokens", []string{"Bearer abc def"}, "", ProblemTrailingData},
		{"trailing param", []string{"Bearer abc, realm=\"x\""}, "", ProblemTrailingData},
		{"params instead of token", []string{`Bearer token="abc"`}, "", ProblemInvalidCharacter},
		{"comma after token", []string{"Bearer abc,"}, "", ProblemTrailingData},
		{"tab after token", []string{"Bearer abc\tdef"}, "", ProblemTrailingData},
		{"only padding", []string{"Bearer =="}, "", ProblemInvalidCharacter},
		{"padding in middle", []string{"Bearer ab=c"}, "", ProblemInvalidCharacter},
		{"bad char", []string{"Bearer ab*c"}, "", ProblemInvalidCharacter},
		{"quote", []string{`Bearer "abc"`}, "", ProblemInvalidCharacter},
		{"non-ASCII", []string{"Bearer abcé"}, "", ProblemInvalidCharacter},
		{"NUL", []string{"Bearer ab\x00c"}, "", ProblemInvalidCharacter},
		{"CRLF", []string{"Bearer abc\r\nX: y"}, "", ProblemInvalidCharacter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TokenFromHeader(tt.values)
			switch tt.reason {
			case "":
				if err != nil || got != tt.want {
					t.Fatalf("TokenFromHeader(%q) = %q, %v; want %q", tt.values, got, err, tt.want)
				}
			case "-":
				if err != ErrNoToken || got != "" {
					t.Fatalf("TokenFromHeader(%q) = %q, %v; want ErrNoToken", tt.values, got, err)
				}
			default:
				var me *MalformedError
				if !errors.As(err, &me) || me.Problem != tt.reason || got != "" {
					t.Fatalf("TokenFromHeader(%q) = %q, %v; want reason %q", tt.values, got, err, tt.reason)
				}
				if want := "malformed Authorization header: " + tt.reason; err.Error() != want {
					t.Errorf("Error() = %q, want %q", err, want)
				}
			}
		})
	}
}

// A valid header costs nothing, and the token shares the header's memory.
func TestTokenFromHeaderNoAlloc(t *testing.T) {
	values := []string{"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}
	n := testing.AllocsPerRun(100, func() {
		if _, err := TokenFromHeader(values); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
	tok, _ := TokenFromHeader(values)
	off := uintptr(unsafe.Pointer(unsafe.StringData(tok))) - uintptr(unsafe.Pointer(unsafe.StringData(values[0])))
	if off != uintptr(len("Bearer ")) {
		t.Error("token is not a substring of the header value")
	}
}

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		target string
		header map[string][]string
		want   string
		reason string // "" success, "-" ErrNoToken
	}{
		{"header", "/mcp", map[string][]string{"Authorization": {"Bearer abc"}, "Content-Type": {"application/json"}}, "abc", ""},
		{"no header", "/mcp", nil, "", "-"},
		{"other query", "/mcp?session=1", map[string][]string{"Authorization": {"Bearer abc"}}, "abc", ""},
		{"query token", "/mcp?access_token=abc", nil, "", ProblemQueryToken},
		{"query token and header", "/mcp?x=1&access_token=abc", map[string][]string{"Authorization": {"Bearer abc"}}, "", ProblemQueryToken},
		{"empty query token", "/mcp?access_token", nil, "", ProblemQueryToken},
		{"encoded query token", "/mcp?access%5Ftoken=abc", nil, "", ProblemQueryToken},
		{"query token after bad escape", "/mcp?x=%zz&access_token=abc", nil, "", ProblemQueryToken},
		{"form body", "/mcp", map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}}, "", ProblemFormBody},
		{"form body with header", "/mcp", map[string][]string{"Authorization": {"Bearer abc"}, "Content-Type": {"Application/X-WWW-Form-URLEncoded ; charset=utf-8"}}, "", ProblemFormBody},
		{"multipart is not form-urlencoded", "/mcp", map[string][]string{"Authorization": {"Bearer abc"}, "Content-Type": {"multipart/form-data; boundary=x"}}, "abc", ""},
		{"two headers", "/mcp", map[string][]string{"Authorization": {"Bearer a", "Bearer b"}}, "", ProblemMultipleHeaders},
		{"basic", "/mcp", map[string][]string{"Authorization": {"Basic YTpi"}}, "", ProblemUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader("access_token=abc"))
			for k, vs := range tt.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			got, err := TokenFromRequest(r)
			switch tt.reason {
			case "":
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
			case "-":
				if !errors.Is(err, ErrNoToken) {
					t.Fatalf("got %q, %v; want ErrNoToken", got, err)
				}
			default:
				var me *MalformedError
				if !errors.As(err, &me) || me.Problem != tt.reason || got != "" {
					t.Fatalf("got %q, %v; want reason %q", got, err, tt.reason)
				}
			}
			if r.Body != nil {
				// The body is never read.
				rest := make([]byte, 64)
				n, _ := r.Body.Read(rest)
				if string(rest[:n]) != "access_token=abc" {
					t.Errorf("body was read: %q left", rest[:n])
				}
			}
		})
	}
}

func BenchmarkTokenFromHeader(b *testing.B) {
	values := []string{"Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20iLCJzdWIiOiJ1c2VyMTIzIiwiYXVkIjoiaHR0cHM6Ly9jYWxjLmV4YW1wbGUuY29tL21jcCIsImV4cCI6MTcwMDAwMDAwMCwic2NvcGUiOiJvcDphZGQgb3A6c3ViIn0.c2lnbmF0dXJlLXBsYWNlaG9sZGVyLXNpZ25hdHVyZS1wbGFjZWhvbGRlcg"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TokenFromHeader(values); err != nil {
			b.Fatal(err)
		}
	}
}

func isB64Token(s string) bool {
	i := 0
	for i < len(s) && isB64TokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isHeaderReason(r string) bool {
	switch r {
	case ProblemMultipleHeaders, ProblemEmptyHeader, ProblemUnsupported,
		ProblemSeparator, ProblemMissingToken, ProblemTooLong,
		ProblemInvalidCharacter, ProblemTrailingData:
		return true
	}
	return false
}

func FuzzTokenFromHeader(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "bearer YWJj==", "Bearer", "Bearer ", "Bearer\tabc", "Basic YTpi",
		"Bearer a b", "Bearer a, realm=\"x\"", " Bearer  abc ", "", "Bearer ==", "Bearer a=b",
		"Bearer " + strings.Repeat("x", accesstoken.MaxLength+1), "Bearer abc\r\n", "Bearer é",
	} {
		f.Add(s, false)
	}
	f.Add("Bearer abc", true)
	f.Fuzz(func(t *testing.T, v string, twice bool) {
		values := []string{v}
		if twice {
			values = append(values, v)
		}
		tok, err := TokenFromHeader(values)
		if err != nil {
			if tok != "" {
				t.Fatalf("token %q returned with error %v", tok, err)
			}
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T) is not a *MalformedError", err, err)
			}
			// The error never echoes the input: its text is one of the
			// fixed reasons.
			if !isHeaderReason(me.Problem) || err.Error() != "malformed Authorization header: "+me.Problem {
				t.Fatalf("error %q for %q is not a fixed reason", err, v)
			}
			return
		}
		if twice {
			t.Fatalf("accepted two header values: %q", tok)
		}
		if !isB64Token(tok) || len(tok) > accesstoken.MaxLength {
			t.Fatalf("accepted invalid token %q", tok)
		}
		if !strings.HasSuffix(strings.Trim(v, " \t"), tok) || !strings.HasPrefix(strings.ToLower(strings.Trim(v, " \t")), "bearer ") {
			t.Fatalf("token %q is not the credential of %q", tok, v)
		}
		if strings.TrimLeft(strings.Trim(v, " \t")[len("bearer"):], " ") != tok {
			t.Fatalf("token %q is not all that follows the scheme in %q", tok, v)
		}
	})
}

func TestIsB64TokenChar(t *testing.T) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
	for c := 0; c < 256; c++ {
		if got, want := isB64TokenChar(byte(c)), strings.IndexByte(chars, byte(c)) >= 0; got != want {
			t.Errorf("isB64TokenChar(%q) = %v", byte(c), got)
		}
	}
}
