package rpcpeek

import (
	"errors"
	"strings"
	"testing"
)

func call(tool, args string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
}

const addArgs = `{"operation":"add","a":1,"b":2}`

func TestPeek(t *testing.T) {
	type want struct {
		batch bool
		msgs  []Message // compared when the body is not a syntax error
		kind  string    // "", "syntax" or "ambiguous"
		why   string    // a substring of the error
	}
	tc := func(method, tool, args string) Message {
		var a []byte
		if args != "" {
			a = []byte(args)
		}
		return Message{Method: method, Tool: tool, Arguments: a}
	}
	addCall := tc("tools/call", "calculator", addArgs)
	tests := []struct {
		name string
		body string
		want want
	}{
		{"tools/call", call("calculator", addArgs), want{msgs: []Message{addCall}}},
		{"tools/list", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, want{msgs: []Message{tc("tools/list", "", "")}}},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, want{msgs: []Message{tc("notifications/initialized", "", "")}}},
		{"response has no method", `{"jsonrpc":"2.0","id":1,"result":{}}`, want{msgs: []Message{{}}}},
		{"other method", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"x"}}`, want{msgs: []Message{tc("resources/read", "", "")}}},
		{"no arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`, want{msgs: []Message{tc("tools/call", "whoami", "")}}},
		{"null arguments", call("whoami", "null"), want{msgs: []Message{tc("tools/call", "whoami", "")}}},
		{"whitespace around", " \t\r\n" + call("calculator", addArgs) + "\n ", want{msgs: []Message{addCall}}},
		{"keys in any order", `{"params":{"arguments":` + addArgs + `,"name":"calculator"},"method":"tools/call","id":1,"jsonrpc":"2.0"}`, want{msgs: []Message{addCall}}},
		{"escaped key is the key", `{"jsonrpc":"2.0","id":1,"met\u0068od":"tools/call","params":{"na\u006de":"calculator","arguments":` + addArgs + `}}`, want{msgs: []Message{addCall}}},
		{"escaped value is the value", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"calcul\u0061tor","arguments":` + addArgs + `}}`, want{msgs: []Message{addCall}}},
		{"surrogate pair", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x\ud83d\ude00"}}`, want{msgs: []Message{tc("tools/call", "x\U0001F600", "")}}},
		{"duplicate id is not read", `{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}`, want{msgs: []Message{tc("tools/list", "", "")}}},
		{"duplicate argument keys are read later", call("calculator", `{"operation":"add","operation":"divide"}`), want{msgs: []Message{tc("tools/call", "calculator", `{"operation":"add","operation":"divide"}`)}}},
		{"batch", "[" + call("calculator", addArgs) + `,{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, want{batch: true, msgs: []Message{addCall, tc("tools/list", "", "")}}},
		{"batch with odd params member", `[{"jsonrpc":"2.0","method":"notifications/progress","params":[1,2]},` + call("calculator", addArgs) + `]`, want{batch: true, msgs: []Message{tc("notifications/progress", "", ""), addCall}}},

		// What the SDK rejects: nothing runs there.
		{"empty", "", want{kind: "syntax", why: "empty"}},
		{"only whitespace", " \n\t", want{kind: "syntax", why: "empty"}},
		{"empty batch", "[]", want{kind: "syntax", why: "empty batch"}},
		{"null", "null", want{kind: "syntax"}},
		{"string", `"tools/call"`, want{kind: "syntax"}},
		{"number", `1`, want{kind: "syntax"}},
		{"not JSON", "divide please", want{kind: "syntax"}},
		{"truncated", `{"jsonrpc":"2.0","method":"tools/call"`, want{kind: "syntax"}},
		{"truncated batch", "[" + call("calculator", addArgs), want{kind: "syntax"}},
		{"byte-order mark", "\ufeff" + call("calculator", addArgs), want{kind: "syntax"}},
		{"NaN", `{"jsonrpc":"2.0","id":NaN,"method":"tools/call","params":{"name":"x"}}`, want{kind: "syntax"}},
		{"method a number", `{"jsonrpc":"2.0","id":1,"method":5}`, want{kind: "syntax", why: "method"}},
		{"batch member not an object", "[" + call("calculator", addArgs) + ",5]", want{kind: "syntax", why: "member 1"}},
		{"batch member null", "[null]", want{kind: "syntax", why: "member 0"}},
		{"too deep", `{"jsonrpc":"2.0","method":"tools/list","params":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, want{kind: "syntax", why: "deeper"}},
		{"too deep in trailing data", call("calculator", addArgs) + strings.Repeat("[", 1001), want{kind: "syntax", why: "deeper"}},

		// What another parser could read differently.
		{"trailing data", call("calculator", addArgs) + "x", want{kind: "ambiguous", why: "after", msgs: []Message{addCall}}},
		{"second message", call("calculator", addArgs) + call("admin", "{}"), want{kind: "ambiguous", why: "after", msgs: []Message{addCall}}},
		{"trailing data after batch", "[" + call("calculator", addArgs) + "]]", want{kind: "ambiguous", batch: true, why: "after", msgs: []Message{addCall}}},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"calculator","arguments":` + addArgs + `}}`, want{kind: "ambiguous", why: `"method" appears more than once`, msgs: []Message{addCall}}},
		{"duplicate params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"},"params":{"name":"calculator","arguments":` + addArgs + `}}`, want{kind: "ambiguous", why: `"params" appears`, msgs: []Message{addCall}}},
		{"method in another case", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"x"}}`, want{kind: "ambiguous", why: "case", msgs: []Message{tc("tools/list", "", "")}}},
		{"only METHOD", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"x"}}`, want{kind: "ambiguous", why: "case", msgs: []Message{{}}}},
		{"params with a long s", `{"jsonrpc":"2.0","id":1,"method":"tools/call","param\u017f":{"name":"x"}}`, want{kind: "ambiguous", why: "case", msgs: []Message{tc("tools/call", "", "")}}},
		{"name twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin","name":"calculator","arguments":` + addArgs + `}}`, want{kind: "ambiguous", why: `"name" appears`, msgs: []Message{addCall}}},
		{"Name beside name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"admin","name":"calculator","arguments":` + addArgs + `}}`, want{kind: "ambiguous", why: "case", msgs: []Message{addCall}}},
		{"arguments twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{},"arguments":` + addArgs + `}}`, want{kind: "ambiguous", why: `"arguments" appears`, msgs: []Message{addCall}}},
		{"Arguments beside arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","Arguments":{},"arguments":` + addArgs + `}}`, want{kind: "ambiguous", why: "case", msgs: []Message{addCall}}},
		{"method null", `{"jsonrpc":"2.0","id":1,"method":null}`, want{kind: "ambiguous", why: "null", msgs: []Message{{}}}},
		{"method in capitals", `{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"x"}}`, want{kind: "ambiguous", why: "case", msgs: []Message{tc("TOOLS/CALL", "", "")}}},
		{"params not an object", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["calculator"]}`, want{kind: "ambiguous", why: "params", msgs: []Message{tc("tools/call", "", "")}}},
		{"no params", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, want{kind: "ambiguous", why: "params", msgs: []Message{tc("tools/call", "", "")}}},
		{"no name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, want{kind: "ambiguous", why: "name", msgs: []Message{tc("tools/call", "", "")}}},
		{"name a number", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}`, want{kind: "ambiguous", why: "name", msgs: []Message{tc("tools/call", "", "")}}},
		{"arguments a list", call("calculator", `["add"]`), want{kind: "ambiguous", why: "arguments", msgs: []Message{tc("tools/call", "calculator", `["add"]`)}}},
		{"name with invalid UTF-8", call("calc\xffulator", addArgs), want{kind: "ambiguous", why: "UTF-8", msgs: []Message{tc("tools/call", "calc\ufffdulator", addArgs)}}},
		{"name with a lone high surrogate", call(`calc\ud800ulator`, addArgs), want{kind: "ambiguous", why: "surrogate", msgs: []Message{tc("tools/call", "calc\ufffdulator", addArgs)}}},
		{"name with a lone low surrogate", call(`calc\udc00`, addArgs), want{kind: "ambiguous", why: "surrogate", msgs: []Message{tc("tools/call", "calc\ufffd", addArgs)}}},
		{"name with reversed surrogates", call(`x\udc00\ud800`, addArgs), want{kind: "ambiguous", why: "surrogate", msgs: []Message{tc("tools/call", "x\ufffd\ufffd", addArgs)}}},
		{"batch member ambiguous", "[" + call("calculator", addArgs) + `,{"jsonrpc":"2.0","id":2,"method":"tools/list","method":"tools/call","params":{"name":"x"}}]`, want{kind: "ambiguous", batch: true, why: "message 1", msgs: []Message{addCall, tc("tools/call", "x", "")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Peek([]byte(tt.body))
			var syn *SyntaxError
			var amb *AmbiguityError
			switch tt.want.kind {
			case "":
				if err != nil {
					t.Fatalf("Peek(%s) error %v, want none", tt.body, err)
				}
			case "syntax":
				if !errors.As(err, &syn) {
					t.Fatalf("Peek(%s) error %v (%T), want *SyntaxError", tt.body, err, err)
				}
				if len(got.Messages) != 0 || got.Batch {
					t.Errorf("Peek returned %+v with a syntax error", got)
				}
			case "ambiguous":
				if !errors.As(err, &amb) {
					t.Fatalf("Peek(%s) error %v (%T), want *AmbiguityError", tt.body, err, err)
				}
			}
			if err != nil && !strings.Contains(err.Error(), tt.want.why) {
				t.Errorf("error %q does not contain %q", err, tt.want.why)
			}
			if tt.want.kind == "syntax" {
				return
			}
			if got.Batch != tt.want.batch {
				t.Errorf("Batch = %v, want %v", got.Batch, tt.want.batch)
			}
			if len(got.Messages) != len(tt.want.msgs) {
				t.Fatalf("got %d messages %+v, want %d", len(got.Messages), got.Messages, len(tt.want.msgs))
			}
			for i, w := range tt.want.msgs {
				g := got.Messages[i]
				if g.Method != w.Method || g.Tool != w.Tool || string(g.Arguments) != string(w.Arguments) || (g.Arguments == nil) != (w.Arguments == nil) {
					t.Errorf("message %d = {%q %q %q}, want {%q %q %q}", i, g.Method, g.Tool, g.Arguments, w.Method, w.Tool, w.Arguments)
				}
			}
		})
	}
}

// TestPeekID: the id is the raw value the SDK reads, the last of
// duplicates, for the gateway to echo when it answers a call itself.
func TestPeekID(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       []string // per message; "" for no id
	}{
		{"number", call("calculator", addArgs), []string{"1"}},
		{"string", `{"jsonrpc":"2.0","id":"a\"b","method":"tools/list"}`, []string{`"a\"b"`}},
		{"absent", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, []string{""}},
		{"null", `{"jsonrpc":"2.0","id":null,"method":"tools/list"}`, []string{"null"}},
		{"object", `{"jsonrpc":"2.0","id":{"x":1},"method":"tools/list"}`, []string{`{"x":1}`}},
		{"last of duplicates", `{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}`, []string{"2"}},
		{"batch", "[" + call("calculator", addArgs) + `,{"jsonrpc":"2.0","id":"x","method":"tools/list"},{"jsonrpc":"2.0","method":"n"}]`, []string{"1", `"x"`, ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Peek([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Messages) != len(tt.want) {
				t.Fatalf("%d messages", len(b.Messages))
			}
			for i, w := range tt.want {
				if got := b.Messages[i].ID; string(got) != w || (w == "") != (got == nil) {
					t.Errorf("message %d: id %q, want %q", i, got, w)
				}
			}
		})
	}
}

func TestStringArgument(t *testing.T) {
	tests := []struct {
		name        string
		args        string // "" for no arguments at all
		arg         string
		want        string
		wantPresent bool
		why         string // non-empty: an *AmbiguityError containing it
	}{
		{"present", addArgs, "operation", "add", true, ""},
		{"absent", `{"a":1}`, "operation", "", false, ""},
		{"no arguments", "", "operation", "", false, ""},
		{"null", `{"operation":null}`, "operation", "", false, ""},
		{"empty string", `{"operation":""}`, "operation", "", true, ""},
		{"escaped", `{"operation":"\u0064ivide"}`, "operation", "divide", true, ""},
		{"escaped key", `{"oper\u0061tion":"divide"}`, "operation", "divide", true, ""},
		{"other keys in other cases are fine", `{"A":1,"a":2,"operation":"add"}`, "operation", "add", true, ""},
		{"nested look-alike is not read", `{"x":{"operation":"divide"},"operation":"add"}`, "operation", "add", true, ""},
		{"duplicate", `{"operation":"add","operation":"divide"}`, "operation", "", false, "more than once"},
		{"case variant", `{"Operation":"divide","operation":"add"}`, "operation", "", false, "case"},
		{"only a case variant", `{"OPERATION":"divide"}`, "operation", "", false, "case"},
		{"Kelvin sign", `{"\u212aey":"x","key":"y"}`, "key", "", false, "case"},
		{"number", `{"operation":5}`, "operation", "", false, "not a string"},
		{"object", `{"operation":{"add":true}}`, "operation", "", false, "not a string"},
		{"list", `{"operation":["add"]}`, "operation", "", false, "not a string"},
		{"bool", `{"operation":true}`, "operation", "", false, "not a string"},
		{"invalid UTF-8", "{\"operation\":\"a\xffdd\"}", "operation", "", false, "UTF-8"},
		{"lone surrogate", `{"operation":"add\ud800"}`, "operation", "", false, "surrogate"},
		{"arguments not an object", `"add"`, "operation", "", false, "not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator"}}`
			if tt.args != "" {
				body = call("calculator", tt.args)
			}
			b, err := Peek([]byte(body))
			var amb *AmbiguityError
			if err != nil && !errors.As(err, &amb) {
				t.Fatalf("Peek: %v", err)
			}
			v, present, err := b.Messages[0].StringArgument(tt.arg)
			if tt.why != "" {
				var amb *AmbiguityError
				if !errors.As(err, &amb) || !strings.Contains(err.Error(), tt.why) {
					t.Fatalf("StringArgument(%q) of %s = %q, %v, %v; want an *AmbiguityError containing %q", tt.arg, tt.args, v, present, err, tt.why)
				}
				if v != "" || present {
					t.Errorf("a value came with the error: %q, %v", v, present)
				}
				return
			}
			if err != nil || v != tt.want || present != tt.wantPresent {
				t.Errorf("StringArgument(%q) of %s = %q, %v, %v; want %q, %v, nil", tt.arg, tt.args, v, present, err, tt.want, tt.wantPresent)
			}
		})
	}
}

// Peek hands out slices of the body and must never write to it.
func TestPeekDoesNotModifyBody(t *testing.T) {
	body := []byte(call(`calcul\u0061tor`, `{"operation":"\u0064ivide"}`))
	orig := string(body)
	b, err := Peek(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Messages[0].StringArgument("operation"); err != nil {
		t.Fatal(err)
	}
	if string(body) != orig {
		t.Errorf("body changed: %q", body)
	}
}

func TestErrorsName(t *testing.T) {
	if got := (&SyntaxError{Reason: "empty body"}).Error(); !strings.Contains(got, "empty body") {
		t.Errorf("SyntaxError.Error() = %q", got)
	}
	if got := (&AmbiguityError{Index: 3, Reason: "x"}).Error(); !strings.Contains(got, "message 3") || !strings.Contains(got, "x") {
		t.Errorf("AmbiguityError.Error() = %q", got)
	}
}
