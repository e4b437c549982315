package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// hideSecret is a FilterTool that hides the tool named "secret" and
// anything starting with "admin-".
func hideSecret(_ context.Context, name string) bool {
	return name != "secret" && !strings.HasPrefix(name, "admin-")
}

// TestToolsListFiltered: with FilterTool, the Go SDK client's tools/list
// never shows a filtered tool, whether the upstream answers in JSON or
// in an event stream; calls are not rewritten.
func TestToolsListFiltered(t *testing.T) {
	for _, m := range upstreamModes {
		t.Run(m.name, func(t *testing.T) {
			up := newUpstream(t, m.opts)
			var seenCtx []string
			fr := front(t, newProxy(t, up.URL, Config{FilterTool: func(ctx context.Context, name string) bool {
				if c, ok := callerFrom(ctx); ok {
					seenCtx = append(seenCtx, string(c.key.kind)+":"+c.key.id)
				}
				return hideSecret(ctx, name)
			}}))
			cs := connect(t, fr.URL, "alice-token", nil, nil)
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatalf("ListTools: %v", err)
			}
			var names []string
			for _, tl := range res.Tools {
				names = append(names, tl.Name)
			}
			slices.Sort(names)
			if want := []string{"echo", "slow"}; !slices.Equal(names, want) {
				t.Errorf("tools = %v, want %v", names, want)
			}
			if len(seenCtx) == 0 || seenCtx[0] != "s:alice" {
				t.Errorf("FilterTool saw callers %v, want the request's (s:alice)", seenCtx)
			}
		})
	}
}

// TestToolsListFilterRefusals: what the proxy cannot match or read is
// refused, never passed unfiltered.
func TestToolsListFilterRefusals(t *testing.T) {
	up := newUpstream(t, upstreamOpts{stateless: true, jsonResponse: true})
	fr := front(t, newProxy(t, up.URL, Config{FilterTool: hideSecret}))
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":null,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"tools/list"}`,
		`not json`,
	} {
		resp := post(t, fr.URL, "alice-token", "", body, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", body, resp.StatusCode)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// rawUpstream answers every POST with the given content type and body.
func rawUpstream(t *testing.T, contentType, body string, header http.Header) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const toolsResult = `"result":{"tools":[{"name":"echo"},{"name":"secret","description":"s"},{"name":"admin-x"},{"name":7},{"description":"nameless"}],"nextCursor":"c2"}`

// TestToolsListAnswers covers the answers the proxy rewrites or refuses,
// in JSON and in event streams.
func TestToolsListAnswers(t *testing.T) {
	for _, tt := range []struct {
		name        string
		contentType string
		header      http.Header
		request     string
		answer      string
		status      int
		want        []string // tool names the client sees in the rewritten answer
		unchanged   bool     // the answer passes byte for byte
	}{
		{name: "json", contentType: "application/json", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: `{"jsonrpc":"2.0","id":1,` + toolsResult + `}`, status: 200, want: []string{"echo"}},
		{name: "json string id", contentType: "application/json", request: `{"jsonrpc":"2.0","id":"a\u0062","method":"tools/list"}`,
			answer: `{"jsonrpc":"2.0","id":"ab",` + toolsResult + `}`, status: 200, want: []string{"echo"}},
		{name: "json number respelled", contentType: "application/json", request: `{"jsonrpc":"2.0","id":10,"method":"tools/list"}`,
			answer: `{"jsonrpc":"2.0","id":1e1,` + toolsResult + `}`, status: 200, want: []string{"echo"}},
		{name: "json batch", contentType: "application/json", request: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`,
			answer: `[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}]}},{"jsonrpc":"2.0","id":2,` + toolsResult + `}]`, status: 200, want: []string{"secret", "echo"}},
		{name: "json other id untouched", contentType: "application/json", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: `{"jsonrpc":"2.0","id":2,` + toolsResult + `}`, status: 200, unchanged: true},
		{name: "json error answer", contentType: "application/json", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}`, status: 200, unchanged: true},
		{name: "json tools not an array", contentType: "application/json", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: `{"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"secret"}}}`, status: 502},
		{name: "compressed", contentType: "application/json", header: http.Header{"Content-Encoding": {"gzip"}}, request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: `xx`, status: 502},
		{name: "unknown type", contentType: "text/plain", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: `{"jsonrpc":"2.0","id":1,` + toolsResult + `}`, status: 502},
		{name: "not tools/list untouched", contentType: "application/json", request: `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`,
			answer: `{"jsonrpc":"2.0","id":1,` + toolsResult + `}`, status: 200, unchanged: true},
		{name: "sse", contentType: "text/event-stream", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: "id: e1\nevent: message\n: note\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":1,\rdata:" + toolsResult + "}\n\n", status: 200, want: []string{"echo"}},
		{name: "sse after a notification", contentType: "text/event-stream", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n" + "data: {\"jsonrpc\":\"2.0\",\"id\":1," + toolsResult + "}\n\n", status: 200, want: []string{"echo"}},
		{name: "sse with BOM", contentType: "text/event-stream", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: "\xEF\xBB\xBFdata: {\"jsonrpc\":\"2.0\",\"id\":1," + toolsResult + "}\n\n", status: 200, want: []string{"echo"}},
		{name: "sse cut short", contentType: "text/event-stream", request: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			answer: "data: {\"jsonrpc\":\"2.0\",\"id\":1," + toolsResult + "}\n", status: 200, want: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := rawUpstream(t, tt.contentType, tt.answer, tt.header)
			fr := front(t, newProxy(t, up.URL, Config{FilterTool: hideSecret}))
			resp := post(t, fr.URL, "alice-token", "", tt.request, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				if code, _ := errorBody(t, resp); code != codeBadGateway {
					t.Errorf("error %q", code)
				}
				return
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.unchanged {
				if string(body) != tt.answer {
					t.Errorf("answer changed:\n got %s\nwant %s", body, tt.answer)
				}
				return
			}
			if strings.Contains(string(body), "secret\"") && !slices.Contains(tt.want, "secret") || strings.Contains(string(body), "admin-x") {
				t.Errorf("a filtered tool reached the client: %s", body)
			}
			if got := toolNames(t, body, tt.contentType == "text/event-stream"); !slices.Equal(got, tt.want) {
				t.Errorf("tools %v, want %v (body %q)", got, tt.want, body)
			}
			if tt.contentType == "application/json" && resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(body))
			}
		})
	}
}

// toolNames reads every tool name from the responses in a JSON answer or
// in the data of an event stream (as a client would parse it).
func toolNames(t *testing.T, body []byte, sse bool) []string {
	t.Helper()
	var payloads [][]byte
	if sse {
		for _, ev := range parseEvents(string(body)) {
			payloads = append(payloads, []byte(ev))
		}
	} else {
		payloads = [][]byte{body}
	}
	var names []string
	for _, p := range payloads {
		var msgs []json.RawMessage
		if bytes.HasPrefix(bytes.TrimSpace(p), []byte("[")) {
			if err := json.Unmarshal(p, &msgs); err != nil {
				t.Fatalf("batch %q: %v", p, err)
			}
		} else {
			msgs = []json.RawMessage{p}
		}
		for _, m := range msgs {
			var r struct {
				Result struct {
					Tools []struct {
						Name any `json:"name"`
					} `json:"tools"`
					NextCursor string `json:"nextCursor"`
				} `json:"result"`
			}
			if err := json.Unmarshal(m, &r); err != nil {
				t.Fatalf("message %q: %v", m, err)
			}
			for _, tl := range r.Result.Tools {
				s, _ := tl.Name.(string)
				names = append(names, s)
			}
		}
	}
	return names
}

// parseEvents is a reference SSE parser written from the standard for
// the tests (independent of the rewriter): the data of each dispatched
// event.
func parseEvents(stream string) []string {
	stream = strings.TrimPrefix(stream, "\xEF\xBB\xBF")
	stream = strings.ReplaceAll(stream, "\r\n", "\n")
	stream = strings.ReplaceAll(stream, "\r", "\n")
	var out []string
	var data []string
	has := false
	lines := strings.Split(stream, "\n")
	// The last element follows the last line break: an unterminated line.
	for _, line := range lines[:len(lines)-1] {
		if line == "" {
			if has {
				out = append(out, strings.Join(data, "\n"))
			}
			data, has = nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		name, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		if name == "data" {
			data = append(data, value)
			has = true
		}
	}
	return out
}

// TestGetStreamFiltered: on a GET stream (which may replay the answer to
// an earlier POST on resumption), any tool list is filtered, whatever its
// id.
func TestGetStreamFiltered(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "id: 5\ndata: {\"jsonrpc\":\"2.0\",\"id\":99,"+toolsResult+"}\n\n")
	}))
	defer up.Close()
	p := newProxy(t, up.URL, Config{FilterTool: hideSecret})
	req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "4")
	req = req.WithContext(WithIdentity(req.Context(), testIdentities["alice-token"]))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d", rec.Code)
	}
	if got := toolNames(t, rec.Body.Bytes(), true); !slices.Equal(got, []string{"echo"}) {
		t.Errorf("tools %v (body %q)", got, rec.Body.String())
	}
	if !strings.HasPrefix(rec.Body.String(), "id: 5\n") {
		t.Errorf("event id lost: %q", rec.Body.String())
	}
}

// TestRewriteBound: an answer larger than MaxRewriteBytes is refused.
func TestRewriteBound(t *testing.T) {
	answer := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"` + strings.Repeat("x", 2000) + `"}]}}`
	for _, ct := range []string{"application/json", "text/event-stream"} {
		t.Run(ct, func(t *testing.T) {
			body := answer
			if ct == "text/event-stream" {
				body = "data: " + answer + "\n\n"
			}
			up := rawUpstream(t, ct, body, nil)
			fr := front(t, newProxy(t, up.URL, Config{FilterTool: hideSecret, MaxRewriteBytes: 1024}))
			req, _ := http.NewRequest(http.MethodPost, fr.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			req.Header.Set("Authorization", "Bearer alice-token")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// A stream is cut by aborting the connection, which may
				// happen before the status line is out.
				t.Logf("stream aborted: %v", err)
				return
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if strings.Contains(string(data), "xxxx") {
				t.Errorf("the oversized answer reached the client (HTTP %d)", resp.StatusCode)
			}
			if ct == "application/json" && resp.StatusCode != http.StatusBadGateway {
				t.Errorf("HTTP %d, want 502", resp.StatusCode)
			}
		})
	}
}

func TestSSERewriterPassesThrough(t *testing.T) {
	stream := ": hello\n\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\r\n\r\nretry: 10\ndata\ndata: not json\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"secret\"}]}}\n\n" +
		"data: partial"
	never := func(string) bool { return false }
	r := newSSERewriter(io.NopCloser(iotest.OneByteReader(strings.NewReader(stream))), 1<<10, func(d []byte) ([]byte, bool, error) {
		return filterTools(d, never, func(string) bool { return false })
	})
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	// Every complete event passes byte for byte; the partial one is dropped.
	if want := strings.TrimSuffix(stream, "data: partial"); string(out) != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
}

// TestSSERewriterEventAtATime: Read hands on each event as soon as it is
// complete, without waiting for more input.
func TestSSERewriterEventAtATime(t *testing.T) {
	pr, pw := io.Pipe()
	r := newSSERewriter(pr, 1<<10, func(d []byte) ([]byte, bool, error) { return d, false, nil })
	go func() {
		_, _ = io.WriteString(pw, "data: one\n")
		_, _ = io.WriteString(pw, "\r") // CR ends the event: no need to see what follows
		// The writer then blocks until the reader has taken the first event.
		_, _ = io.WriteString(pw, "\ndata: two\n\n")
		pw.Close()
	}()
	buf := make([]byte, 100)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "data: one\n\r" {
		t.Fatalf("first Read %q, %v", buf[:n], err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestSSERewriterErrors(t *testing.T) {
	boom := errors.New("boom")
	r := newSSERewriter(io.NopCloser(iotest.ErrReader(boom)), 64, nil)
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	r = newSSERewriter(io.NopCloser(strings.NewReader("data: "+strings.Repeat("a", 100))), 64, nil)
	var re *RewriteError
	if _, err := io.ReadAll(r); !errors.As(err, &re) {
		t.Errorf("long line: %v", err)
	}
	r = newSSERewriter(io.NopCloser(strings.NewReader(strings.Repeat("data: a\n", 20))), 64, nil)
	if _, err := io.ReadAll(r); !errors.As(err, &re) {
		t.Errorf("long event: %v", err)
	}
}

func TestRequestID(t *testing.T) {
	for _, tt := range []struct {
		raw      string
		want     string
		ok       bool
		respWant string // responseID, "" when not ok
	}{
		{`1`, "n:1", true, "n:1"},
		{` -42 `, "n:-42", true, "n:-42"},
		{`0`, "n:0", true, "n:0"},
		{`9007199254740991`, "n:9007199254740991", true, "n:9007199254740991"},
		{`9007199254740992`, "", false, ""},
		{`-0`, "", false, "n:0"},
		{`01`, "", false, "n:1"}, // not JSON: never in a decoded answer
		{`1.0`, "", false, "n:1"},
		{`1e2`, "", false, "n:100"},
		{`1.5`, "", false, ""},
		{`"abc"`, "s:abc", true, "s:abc"},
		{`"\u00e9"`, "s:é", true, "s:é"},
		{`""`, "s:", true, "s:"},
		{`null`, "", false, ""},
		{`true`, "", false, ""},
		{`[1]`, "", false, ""},
		{``, "", false, ""},
		{`"unterminated`, "", false, ""},
	} {
		got, ok := requestID(json.RawMessage(tt.raw))
		if got != tt.want || ok != tt.ok {
			t.Errorf("requestID(%s) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
		got, ok = responseID(json.RawMessage(tt.raw))
		if got != tt.respWant || ok != (tt.respWant != "") {
			t.Errorf("responseID(%s) = %q, %v; want %q", tt.raw, got, ok, tt.respWant)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tt := range []struct {
		body       string
		parsed     bool
		initialize bool
		list       []string
		bad        bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"initialize"}`, true, true, nil, false},
		{`{"jsonrpc":"2.0","id":1,"Method":"initialize"}`, true, false, nil, false}, // case-sensitive, as the SDK
		{`{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}`, true, false, []string{"n:1"}, false},
		{`{"jsonrpc":"2.0","id":"x","method":"tools\/list"}`, true, false, []string{"s:x"}, false},
		{`[{"id":1,"method":"tools/list"},{"id":"1","method":"tools/list"},{"method":"notifications/initialized"}]`, true, false, []string{"n:1", "s:1"}, false},
		// A batch with a member that is not a message: the SDK rejects the
		// whole batch, and so does the proxy (read as rpcpeek reads it).
		{`[{"id":1,"method":"tools/list"},3]`, false, false, nil, false},
		{`{"id":1.5,"method":"tools/list"}`, true, false, nil, true},
		{`{"method":"tools/list"}`, true, false, nil, true},
		{`garbage`, false, false, nil, false},
		{``, false, false, nil, false},
		{strings.Repeat("[", 2000), false, false, nil, false},
	} {
		info := parseRequest([]byte(tt.body))
		if info.parsed != tt.parsed || info.initialize != tt.initialize || !slices.Equal(info.toolsList, tt.list) || info.badListID != tt.bad {
			t.Errorf("parseRequest(%.60s) = %+v", tt.body, info)
		}
	}
}
