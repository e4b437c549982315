package rpcpeek

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/segmentio/encoding/json"
)

// sdkUnmarshal is the Go MCP SDK's internal/json.Unmarshal, copied: the
// nesting check, then segmentio's stream decoder with case-sensitive
// struct fields (it reads the first value and ignores the rest).
func sdkUnmarshal(data []byte, v any) error {
	if sdkTooDeep(data, 1000) {
		return errors.New("too deep")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DontMatchCaseInsensitiveStructFields()
	return dec.Decode(v)
}

// sdkTooDeep is internal/json.checkMaxDepth, copied.
func sdkTooDeep(data []byte, maxDepth int) bool {
	var depth int
	var inString, escaped bool
	for _, b := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		switch b {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return true
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return false
}

// sdkMessage is what the SDK runs for one message: its method and, for a
// tools/call whose params decode into the SDK's own mcp.CallToolParamsRaw,
// the tool and raw arguments.
type sdkMessage struct {
	id         []byte // the raw "id"
	method     string
	call       bool // params decoded: the tool handler would be looked up
	tool       string
	arguments  []byte
	hasRequest bool
}

// sdkRead mirrors mcp.readBatch and jsonrpc2.DecodeMessage (without the
// jsonrpc version and id checks: accepting more than the SDK only makes
// the comparison stricter). ok is false when the SDK rejects the body.
func sdkRead(data []byte) (msgs []sdkMessage, ok bool) {
	decode := func(raw []byte) (sdkMessage, bool) {
		var w struct {
			ID     json.RawMessage `json:"id,omitempty"`
			Method json.RawMessage `json:"method"`
			Params json.RawMessage `json:"params,omitempty"`
		}
		if err := sdkUnmarshal(raw, &w); err != nil {
			return sdkMessage{}, false
		}
		m := sdkMessage{id: w.ID}
		if len(w.Method) > 0 {
			if err := sdkUnmarshal(w.Method, &m.method); err != nil {
				return sdkMessage{}, false
			}
			m.hasRequest = true
		}
		if m.method == MethodToolsCall {
			var p mcp.CallToolParamsRaw
			if sdkUnmarshal(w.Params, &p) == nil {
				m.call, m.tool, m.arguments = true, p.Name, p.Arguments
			}
		}
		return m, true
	}
	var batch []json.RawMessage
	if err := sdkUnmarshal(data, &batch); err == nil {
		if len(batch) == 0 {
			return nil, false
		}
		for _, raw := range batch {
			m, ok := decode(raw)
			if !ok {
				return nil, false
			}
			msgs = append(msgs, m)
		}
		return msgs, true
	}
	m, ok := decode(data)
	if !ok {
		return nil, false
	}
	return []sdkMessage{m}, true
}

// stdRead decodes the body with encoding/json, a parser that matches keys
// case-insensitively and refuses trailing data. ok is false when it
// refuses the body.
func stdRead(data []byte) (msgs []Message, ok bool) {
	decode := func(raw []byte) (Message, bool) {
		var w struct {
			Method *string            `json:"method"`
			Params stdjson.RawMessage `json:"params"`
		}
		if stdjson.Unmarshal(raw, &w) != nil {
			return Message{}, false
		}
		var m Message
		if w.Method != nil {
			m.Method = *w.Method
		}
		if m.Method == MethodToolsCall {
			var p struct {
				Name      *string            `json:"name"`
				Arguments stdjson.RawMessage `json:"arguments"`
			}
			if stdjson.Unmarshal(w.Params, &p) != nil || p.Name == nil {
				return Message{}, false
			}
			m.Tool = *p.Name
			if len(p.Arguments) > 0 && string(p.Arguments) != "null" {
				m.Arguments = p.Arguments
			}
		}
		return m, true
	}
	d := bytes.TrimLeft(data, " \t\r\n")
	if len(d) > 0 && d[0] == '[' {
		var batch []stdjson.RawMessage
		if stdjson.Unmarshal(data, &batch) != nil {
			return nil, false
		}
		for _, raw := range batch {
			m, ok := decode(raw)
			if !ok {
				return nil, false
			}
			msgs = append(msgs, m)
		}
		return msgs, true
	}
	m, ok := decode(data)
	return []Message{m}, ok
}

func equalArgs(a, b []byte) bool {
	if len(a) == 0 || string(a) == "null" {
		return len(b) == 0 || string(b) == "null"
	}
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	return stdjson.Compact(&ca, a) == nil && stdjson.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

func FuzzPeek(f *testing.F) {
	for _, s := range []string{
		call("calculator", addArgs),
		call("calculator", `{"operation":"add","operation":"divide"}`),
		call("calculator", `{"Operation":"divide","operation":"add"}`),
		call(`calcul\u0061tor`, `{"oper\u0061tion":"\u0064ivide"}`),
		call(`x\ud800`, `{"operation":"\udc00"}`),
		"[" + call("calculator", addArgs) + `,{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","param\u017f":{"name":"x"}}`,
		call("calculator", addArgs) + call("admin", "{}"),
		`{"jsonrpc":"2.0","id":NaN,"method":"tools/call","params":{"name":"x"}}`,
		"\ufeff" + call("calculator", addArgs),
		`[]`, `null`, ``, `[`, `{"method":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		got, err := Peek(body)
		if !bytes.Equal(orig, body) {
			t.Fatal("Peek modified its input")
		}
		var syn *SyntaxError
		var amb *AmbiguityError
		switch {
		case err == nil, errors.As(err, &amb):
		case errors.As(err, &syn):
			if len(got.Messages) != 0 {
				t.Fatalf("syntax error %v with messages %+v", err, got.Messages)
			}
		default:
			t.Fatalf("Peek returned %T %v", err, err)
		}
		// Every argument Peek reads must come back the same way, or with
		// an ambiguity.
		args := map[int]argRead{}
		for i, m := range got.Messages {
			v, present, aerr := m.StringArgument("operation")
			if aerr != nil {
				if !errors.As(aerr, &amb) || v != "" || present {
					t.Fatalf("StringArgument: %q %v %v", v, present, aerr)
				}
			}
			args[i] = argRead{v, present, aerr}
		}

		// What the SDK runs, Peek sees: a body the SDK accepts is never
		// a syntax error, and each of its tool calls is reported with the
		// same tool and arguments.
		sdk, sdkOK := sdkRead(body)
		if sdkOK {
			if syn != nil {
				t.Fatalf("the SDK accepts %q, Peek says %v", body, err)
			}
			if len(sdk) != len(got.Messages) {
				t.Fatalf("the SDK reads %d messages, Peek %d", len(sdk), len(got.Messages))
			}
			for i, s := range sdk {
				g := got.Messages[i]
				if s.method != g.Method {
					t.Fatalf("message %d: the SDK reads method %q, Peek %q", i, s.method, g.Method)
				}
				if !bytes.Equal(bytes.TrimSpace(s.id), bytes.TrimSpace(g.ID)) {
					t.Fatalf("message %d: the SDK reads id %s, Peek %s", i, s.id, g.ID)
				}
				if s.call && (s.tool != g.Tool || !equalArgs(s.arguments, g.Arguments)) {
					t.Fatalf("message %d: the SDK calls %q with %s, Peek reports %q with %s (err %v)", i, s.tool, s.arguments, g.Tool, g.Arguments, err)
				}
				if s.call && len(g.Arguments) > 0 {
					checkArgAgainstSDK(t, g.Arguments, args[i])
				}
			}
		}

		// A body Peek calls unambiguous reads the same in encoding/json,
		// whenever encoding/json reads it at all.
		if err != nil {
			return
		}
		std, stdOK := stdRead(body)
		if !stdOK {
			return
		}
		if len(std) != len(got.Messages) {
			t.Fatalf("encoding/json reads %d messages, Peek %d", len(std), len(got.Messages))
		}
		for i, s := range std {
			g := got.Messages[i]
			if s.Method != g.Method || s.Tool != g.Tool || !equalArgs(s.Arguments, g.Arguments) {
				t.Fatalf("message %d: encoding/json reads {%q %q %s}, Peek {%q %q %s}", i, s.Method, s.Tool, s.Arguments, g.Method, g.Tool, g.Arguments)
			}
			if a := args[i]; a.err == nil && len(g.Arguments) > 0 {
				var v struct {
					Operation any `json:"operation"`
				}
				if stdjson.Unmarshal(g.Arguments, &v) == nil {
					want := argRead{}
					if str, ok := v.Operation.(string); ok {
						want = argRead{str, true, nil}
					}
					if want.value != a.value || want.present != a.present {
						t.Fatalf("encoding/json reads operation %#v, Peek %q %v", v.Operation, a.value, a.present)
					}
				}
			}
		}
	})
}

type argRead struct {
	value   string
	present bool
	err     error
}

// checkArgAgainstSDK: what the calculator tool would receive (the SDK
// decodes arguments into a map, then the tool's struct) is what
// StringArgument returned, unless it reported an ambiguity.
func checkArgAgainstSDK(t *testing.T, arguments []byte, a argRead) {
	t.Helper()
	if a.err != nil {
		return
	}
	var m map[string]any
	if sdkUnmarshal(arguments, &m) != nil {
		return // the tool would not run
	}
	v, found := m["operation"]
	str, isString := v.(string)
	switch {
	case !found || v == nil:
		if a.present {
			t.Fatalf("the SDK has no operation in %s, Peek read %q", arguments, a.value)
		}
	case !isString:
		t.Fatalf("the SDK reads operation %#v in %s; Peek reported no ambiguity", v, arguments)
	case str != a.value || !a.present:
		t.Fatalf("the SDK reads operation %q in %s, Peek %q %v", str, arguments, a.value, a.present)
	}
}

// The seed corpus of the gateway's former peek, FuzzRequiredScopes, is in
// testdata/fuzz/FuzzPeek too (same signature); this test keeps one known
// case from it honest outside fuzzing.
func TestFuzzSeedsDecodeLikeSDK(t *testing.T) {
	body := []byte(call("calculator", `{"operation":"add","operation":"divide"}`))
	sdk, ok := sdkRead(body)
	if !ok || len(sdk) != 1 || !sdk[0].call {
		t.Fatalf("sdkRead = %+v, %v", sdk, ok)
	}
	var m map[string]any
	if err := sdkUnmarshal(sdk[0].arguments, &m); err != nil {
		t.Fatal(err)
	}
	// The SDK keeps the last duplicate: this is why Peek must refuse it
	// for parsers that keep the first.
	if got := fmt.Sprint(m["operation"]); got != "divide" {
		t.Errorf("the SDK reads operation %q, want divide", got)
	}
}
