package accesstoken_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/internal/claimsref"
)

func TestReadMembers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		data   string
		want   *accesstoken.Claims
		err    string // "" no error
		active string // the raw "active"
		nonce  bool
	}{
		{name: "typical JWT", data: `{"iss":"https://idp","sub":"u","aud":"https://mcp","client_id":"c","scope":"op:add op:sub","exp":1900000000,"iat":1800000000.9,"jti":"x"}`,
			want: &accesstoken.Claims{Iss: "https://idp", Sub: "u", Aud: []string{"https://mcp"}, HasAud: true, ClientID: "c", Scopes: []string{"op:add", "op:sub"}, Exp: 1900000000, HasExp: true, Iat: 1800000000, HasIat: true}},
		{name: "introspection answer", data: ` {"active" : true, "scp":["a","b c"], "aud":[], "nbf":0} `, active: "true",
			want: &accesstoken.Claims{Scopes: []string{"a", "b", "c"}, Aud: []string{}, HasAud: true, HasNbf: true}},
		{name: "escapes and non-ASCII go through the decoder", data: `{"sub":"\u0061\"b","email":"é@x","aud":"a\/b"}`,
			want: &accesstoken.Claims{Sub: `a"b`, Email: "é@x", Aud: []string{"a/b"}, HasAud: true}},
		{name: "the last duplicate wins, null included", data: `{"exp":1,"exp":null,"sub":"a","sub":"b"}`, want: &accesstoken.Claims{Sub: "b"}},
		{name: "names are case-sensitive", data: `{"EXP":"x","Sub":1,"Nonce":"n"}`, want: &accesstoken.Claims{}},
		{name: "nonce present even as null", data: `{"nonce":null}`, want: &accesstoken.Claims{}, nonce: true},
		{name: "escaped names are names", data: `{"\u0065xp":5,"\u006eonce":"n"}`, want: &accesstoken.Claims{Exp: 5, HasExp: true}, nonce: true},
		{name: "a name with a NUL is another name", data: `{"exp\u0000":"x"}`, want: &accesstoken.Claims{}},
		{name: "unreadable scope grants nothing", data: `{"scope":1,"scp":"ok \"bad"}`, want: &accesstoken.Claims{Scopes: []string{"ok"}}},
		{name: "exp a string", data: `{"exp":"1"}`, err: "unparsable exp"},
		{name: "exp out of range", data: `{"exp":1e400}`, err: "unparsable exp"},
		{name: "exp negative", data: `{"exp":-1}`, err: "unparsable exp"},
		{name: "exp after year 9999", data: `{"exp":253402300800}`, err: "unparsable exp"},
		{name: "nbf an object", data: `{"nbf":{}}`, err: "unparsable nbf"},
		{name: "azp a number", data: `{"azp":1}`, err: "unparsable azp"},
		{name: "aud an array of numbers", data: `{"aud":[1]}`, err: "unparsable aud"},
		{name: "null", data: `null`, err: accesstoken.ErrNotObject.Error()},
		{name: "array", data: `[]`, err: accesstoken.ErrNotObject.Error()},
		{name: "trailing data", data: `{} {}`, err: accesstoken.ErrNotObject.Error()},
		{name: "invalid JSON in an unknown member", data: `{"x":tru}`, err: accesstoken.ErrNotObject.Error()},
		{name: "leading zero", data: `{"exp":01}`, err: accesstoken.ErrNotObject.Error()},
		{name: "empty", data: ``, err: accesstoken.ErrNotObject.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := accesstoken.ReadMembers([]byte(tt.data))
			var cl *accesstoken.Claims
			if err == nil {
				cl, err = m.Claims()
			}
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cl, tt.want) {
				t.Errorf("claims\n got %+v\nwant %+v", cl, tt.want)
			}
			if string(m.Active()) != tt.active || m.HasNonce() != tt.nonce {
				t.Errorf("active %q nonce %v, want %q %v", m.Active(), m.HasNonce(), tt.active, tt.nonce)
			}
		})
	}
}

// FuzzReadMembers: ReadMembers and Members.Claims must read every input as
// claimsref does (encoding/json, a map, member by member): the same error,
// the same claims, the same "active" and "nonce". A member one reads and
// the other does not (a duplicate or escaped name, a case variant, invalid
// UTF-8, an odd number) would be a parser differential in an authorization
// decision.
func FuzzReadMembers(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://a","aud":"x","exp":1,"scope":"a b","active":true}`,
		`{"iss":"a","iss":"b"}`, `{"aud":["x"],"aud":"y"}`, `{"exp":"1"}`, `{"exp":1e400}`, `{"exp":-0,"nbf":1E3,"iat":1.9e9}`,
		`{"exp":12345678901234567890123}`, `{"exp":0.0000001}`, `{"exp":253402300799.99}`,
		`{"nonce":null}`, `{"Nonce":"x"}`, `{"scp":["a","b c"],"scope":null}`, `{"active":true,"active":false}`, `{"ACTIVE":true}`,
		"{\"sub\":\"\xff\"}", `{"sub":"\ud800"}`, `{"sub":"a\u0000b"}`, "{\"sub\":\"\x7f\"}", "{\"sub\":\"a\tb\"}",
		`{} trailing`, "\ufeff{}", `null`, `[]`, `{"azp":1}`, `{"exp\u0000":1}`, `{"\u0065xp":"x"}`,
		`{"aud":[]}`, `{"aud":[null]}`, `{"aud":null}`, `{"x":[[[[[[[[[[]]]]]]]]]]}`, `{"x":"\"}`, `{"a_very_long_member_name_beyond_sixteen":1,"exp":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ref, wantErr := claimsref.Read(data)
		m, err := accesstoken.ReadMembers(data)
		var got *accesstoken.Claims
		if err == nil {
			got, err = m.Claims()
		}
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("%q: error %v, claimsref %v", data, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
		if errors.Is(wantErr, accesstoken.ErrNotObject) {
			return
		}
		if a, ok := ref["active"]; !bytesEqual(m.Active(), a, ok) {
			t.Fatalf("%q: active %q, claimsref %q", data, m.Active(), a)
		}
		if _, ok := ref["nonce"]; m.HasNonce() != ok {
			t.Fatalf("%q: nonce %v, claimsref %v", data, m.HasNonce(), ok)
		}
	})
}

func bytesEqual(got, want json.RawMessage, present bool) bool {
	return (got != nil) == present && string(got) == string(want)
}

// BenchmarkReadMembers is one JWT payload read: ReadMembers and Claims,
// against claimsref, the map that they replace.
func BenchmarkReadMembers(b *testing.B) {
	data := []byte(`{"iss":"http://127.0.0.1:41234","sub":"user-00000042-0000-4000-8000-000000000000","aud":"http://127.0.0.1:8080/mcp","client_id":"bench-client","scope":"op:add op:sub op:mult op:div","exp":1900000000,"iat":1800000000,"jti":"jti-42"}`)
	b.Run("members", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := accesstoken.ReadMembers(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Claims(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("claimsref", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := claimsref.Read(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
