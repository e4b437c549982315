package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// leaks reports whether a JSON text, read with the standard library's
// decoder into maps (exact keys, the last duplicate winning, as
// JavaScript's JSON.parse), holds a response whose result lists the tool
// named "secret".
func leaks(data []byte) bool {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return false
	}
	msgs, ok := v.([]any)
	if !ok {
		msgs = []any{v}
	}
	for _, m := range msgs {
		obj, _ := m.(map[string]any)
		result, _ := obj["result"].(map[string]any)
		tools, _ := result["tools"].([]any)
		for _, t := range tools {
			tool, _ := t.(map[string]any)
			if name, _ := tool["name"].(string); name == "secret" {
				return true
			}
		}
	}
	return false
}

func keepNotSecret(name string) bool { return name != "secret" }

var sseSeeds = []string{
	"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"},{\"name\":\"echo\"}]}}\n\n",
	"id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}}\r\n\r\n",
	"\xEF\xBB\xBFdata: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}}\r\r",
	"data: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}\n\xEF\xBB\xBF\ndata: }\n\n",
	"data: [{\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}},{\"id\":2,\"result\":{}}]\n\n",
	": comment\n\nretry: 5\ndata\n\ndata:x\n\n",
	"data: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\",\"name\":\"ok\"},{\"name\":\"ok\",\"name\":\"secret\"}]}}\n\n",
	"data: {\"id\":1,\"result\":{\"tools\":[{\"Name\":\"secret\"}],\"Tools\":[{\"name\":\"secret\"}]}}\n\n",
	"data: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"sec\\u0072et\"}]},\"result\":{\"tools\":[{\"name\":\"secret\"}]}}\n\n",
	"data: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}}",
}

// FuzzSSERewriter: whatever the upstream streams, in whatever chunks, a
// client parsing the output by the standard never receives a tool list
// naming the filtered tool; and a stream without a tool list passes
// with its events unchanged.
func FuzzSSERewriter(f *testing.F) {
	for i, s := range sseSeeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		r := newSSERewriter(io.NopCloser(&chunked{data: stream, n: int(chunk%16) + 1}), 1<<12, func(d []byte) ([]byte, bool, error) {
			return filterTools(d, nil, keepNotSecret)
		})
		out, err := io.ReadAll(io.LimitReader(r, 1<<16))
		var re *RewriteError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, ev := range parseEvents(string(out)) {
			if leaks([]byte(ev)) {
				t.Fatalf("filtered tool in output event %q (input %q)", ev, stream)
			}
		}
		// A client lax about BOMs on any line.
		lax := strings.ReplaceAll(string(out), "\xEF\xBB\xBF", "")
		for _, ev := range parseEvents(lax) {
			if leaks([]byte(ev)) {
				t.Fatalf("filtered tool in output event (lax client) %q (input %q)", ev, stream)
			}
		}
		if err == nil && !bytes.Contains(stream, []byte("tools")) && !bytes.Contains(stream, []byte(`\u`)) {
			in, got := parseEvents(string(stream)), parseEvents(string(out))
			if strings.Join(in, "\x00") != strings.Join(got, "\x00") {
				t.Fatalf("events changed with nothing to filter:\n in %q\nout %q", in, got)
			}
		}
	})
}

// chunked returns its data n bytes at a time.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// FuzzFilterTools: after filterTools, no matched response names the
// filtered tool, as a client's decoder reads it; filtering again changes
// nothing.
func FuzzFilterTools(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"},{"name":"echo"}],"nextCursor":"x"}}`,
		`[{"id":1,"result":{"tools":[{"name":"secret"}]}},{"id":"a","result":{"tools":[]}}]`,
		`{"id":1,"result":{"tools":[{"name":"secret","name":"x"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"x","name":"secret"}]}}`,
		`{"id":1,"result":{"tools":null}}`,
		`{"id":1,"result":{"tools":{"name":"secret"}}}`,
		`{"id":1,"result":{"tools":[{"name":"sec\u0072et"}]}}`,
		`{"id":1,"result":[1]}`,
		`{"id":1e0,"result":{"tools":[{"name":"secret"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"secret"}]},"id":2}`,
		` [ ] `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, changed, err := filterTools(data, nil, keepNotSecret)
		if err != nil {
			var re *RewriteError
			if !errors.As(err, &re) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !changed && !bytes.Equal(out, data) {
			t.Fatalf("unchanged but different: %q", out)
		}
		if leaks(out) {
			t.Fatalf("filtered tool left in %q (from %q)", out, data)
		}
		if changed && bytes.ContainsAny(out, "\r\n") {
			t.Fatalf("rewritten JSON has a line break: %q", out)
		}
		if again, changed2, err := filterTools(out, nil, keepNotSecret); err == nil && changed2 {
			t.Fatalf("not idempotent: %q -> %q", out, again)
		}
	})
}

// FuzzRequestID: an id the proxy accepts for matching is valid JSON, and
// an upstream echoing it unchanged is matched.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{`1`, `-1`, `"a"`, `"\u0041"`, `1.0`, `01`, `9007199254740991`, `1e3`, `null`, `"`, `-0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, ok := requestID(raw)
		if !ok {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		back, ok := responseID(raw)
		if !ok || back != id {
			t.Fatalf("requestID %q, responseID %q %v", id, back, ok)
		}
		// The same value re-encoded by another implementation matches too.
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(v)
		if back2, ok := responseID(again); !ok || back2 != id {
			t.Fatalf("re-encoded %q: %q %v, want %q", again, back2, ok, id)
		}
	})
}

// FuzzParseRequest: a body that the standard library's decoder reads as
// a tools/list request (exact keys, last duplicate wins) is never taken
// for something else: the proxy either matches its id or refuses it.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"id":1,"method":"ping","method":"tools/list"}`,
		`{"id":1,"method":"tools/list","METHOD":"ping"}`,
		`[{"id":1,"method":"tools/list"},{"id":2,"method":"initialize"}]`,
		`{"id":"x","method":"tools\/list"}`,
		`{"id":1,"method":"tools/list"} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info := parseRequest(body)
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		msgs, ok := v.([]any)
		if !ok {
			msgs = []any{v}
		}
		lists := 0
		for _, m := range msgs {
			if obj, _ := m.(map[string]any); obj != nil && obj["method"] == "tools/list" {
				lists++
			}
		}
		if lists > 0 && len(info.toolsList) == 0 && !info.badListID {
			t.Fatalf("tools/list in %q not recognised: %+v", body, info)
		}
	})
}
