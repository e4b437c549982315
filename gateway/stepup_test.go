package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	segjson "github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/scopes"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

func TestRequiredScopes(t *testing.T) {
	call := func(tool, op string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"operation":"` + op + `","a":1,"b":2}}}`
	}
	tests := []struct {
		name string
		body string
		want []string // or refused: an ambiguous body (400)
		log  peekedCall
	}{
		{"add", call("calculator", "add"), []string{"op:add"}, peekedCall{"calculator", "add"}},
		{"subtract", call("calculator", "subtract"), []string{"op:sub"}, peekedCall{"calculator", "subtract"}},
		{"multiply", call("calculator", "multiply"), []string{"op:mult"}, peekedCall{"calculator", "multiply"}},
		{"divide", call("calculator", "divide"), []string{"op:div"}, peekedCall{"calculator", "divide"}},
		{"unknown operation", call("calculator", "modulo"), nil, peekedCall{"calculator", "other"}},
		{"missing operation", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{}}}`, nil, peekedCall{"calculator", ""}},
		{"no arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator"}}`, nil, peekedCall{"calculator", ""}},
		{"null arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":null}}`, nil, peekedCall{"calculator", ""}},
		{"whoami", call("whoami", ""), nil, peekedCall{"whoami", ""}},
		{"whoami with operation", call("whoami", "divide"), nil, peekedCall{"whoami", ""}},
		{"unknown tool", call("eval", "divide"), nil, peekedCall{"other", ""}},
		{"tools/list", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, peekedCall{}},
		{"initialize", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`, nil, peekedCall{}},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, peekedCall{}},
		{"response", `{"jsonrpc":"2.0","id":1,"result":{}}`, nil, peekedCall{}},
		{"operation value case matters", call("calculator", "Divide"), nil, peekedCall{"calculator", "other"}},
		{"batch union deduped in order", "[" + call("calculator", "divide") + "," + call("calculator", "add") + "," + call("calculator", "divide") + "]", []string{"op:div", "op:add"}, peekedCall{"calculator", "divide"}},
		{"batch all ops", "[" + call("calculator", "add") + "," + call("calculator", "subtract") + "," + call("calculator", "multiply") + "," + call("calculator", "divide") + "]", tools.Policy().Scopes(), peekedCall{"calculator", "add"}},
		{"batch mixed methods", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},` + call("calculator", "multiply") + `,` + call("whoami", "") + `]`, []string{"op:mult"}, peekedCall{"calculator", "multiply"}},
		{"batch without tool calls", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, nil, peekedCall{}},
		{"empty batch", `[]`, nil, peekedCall{}},
		{"leading whitespace", " \t\r\n " + call("calculator", "divide"), []string{"op:div"}, peekedCall{"calculator", "divide"}},
		{"leading whitespace batch", "\n[" + call("calculator", "subtract") + "]", []string{"op:sub"}, peekedCall{"calculator", "subtract"}},
		{"trailing whitespace", call("calculator", "divide") + "\n", []string{"op:div"}, peekedCall{"calculator", "divide"}},
		// What the SDK rejects needs nothing here: nothing runs.
		{"empty", "", nil, peekedCall{}},
		{"only whitespace", " \n\t", nil, peekedCall{}},
		{"malformed", `{"jsonrpc":"2.0","method":"tools/call"`, nil, peekedCall{}},
		{"malformed batch", "[" + call("calculator", "divide"), nil, peekedCall{}},
		{"not JSON", "divide please", nil, peekedCall{}},
		{"JSON string", `"tools/call"`, nil, peekedCall{}},
		{"JSON null", `null`, nil, peekedCall{}},
		{"BOM is not whitespace", "\ufeff" + call("calculator", "divide"), nil, peekedCall{}},
		// What another parser could read differently is refused outright
		// (issue 13): the SDK reads the first value and the last duplicate
		// key; Python and JavaScript would too, Go's encoding/json folds
		// case, and others take the first duplicate.
		{"trailing garbage", call("calculator", "divide") + "x", refusedScopes, peekedCall{}},
		{"method case", strings.Replace(call("calculator", "divide"), "tools/call", "TOOLS/CALL", 1), refusedScopes, peekedCall{}},
		{"case-variant keys", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","Params":{"NAME":"calculator","Arguments":{"Operation":"divide"}}}`, refusedScopes, peekedCall{}},
		{"case-variant argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","Operation":"divide"}}}`, refusedScopes, peekedCall{}},
		{"duplicate keys", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","operation":"divide"}}}`, refusedScopes, peekedCall{}},
		{"operation not a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":5}}}`, refusedScopes, peekedCall{}},
	}
	p := tools.Policy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, first, err := requiredScopes(p, []byte(tt.body))
			if slices.Equal(tt.want, refusedScopes) {
				var amb *rpcpeek.AmbiguityError
				if !errors.As(err, &amb) {
					t.Errorf("requiredScopes(%s) = %q, %v; want it refused as ambiguous", tt.body, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("requiredScopes(%s) = %q, %v; want %q", tt.body, got, err, tt.want)
			}
			if first != tt.log {
				t.Errorf("requiredScopes(%s) logs %+v, want %+v", tt.body, first, tt.log)
			}
		})
	}
}

// refusedScopes marks a TestRequiredScopes row whose body must be refused.
var refusedScopes = []string{"\x00refused"}

// A batch member whose shape does not fit a request (params as an array,
// legal JSON-RPC) must not hide the calculator call next to it from the
// HTTP step-up.
func TestRequiredScopesBatchWithOddMember(t *testing.T) {
	body := `[{"jsonrpc":"2.0","method":"notifications/progress","params":[1,2]},` + rpcCall(2, "divide") + `]`
	got, _, err := requiredScopes(tools.Policy(), []byte(body))
	if err != nil || !slices.Equal(got, []string{"op:div"}) {
		t.Errorf("requiredScopes(%s) = %q, %v; want [op:div]", body, got, err)
	}
}

func FuzzRequiredScopes(f *testing.F) {
	for _, s := range []string{
		rpcCall(1, "add"),
		rpcCall(1, "divide"),
		"[" + rpcCall(1, "add") + "," + rpcCall(2, "multiply") + "]",
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`  {"METHOD":"tools/call","params":{"name":"calculator","arguments":{"OPERATION":"subtract"}}}`,
		`[`,
		``,
	} {
		f.Add([]byte(s))
	}
	p := tools.Policy()
	valid := p.Scopes()
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := slices.Clone(body)
		got, first, err := requiredScopes(p, body)
		if !slices.Equal(orig, body) {
			t.Fatalf("requiredScopes modified its input")
		}
		if err != nil && got != nil {
			t.Fatalf("requiredScopes(%q) refused the body and still returned %q", body, got)
		}
		seen := map[string]bool{}
		for _, s := range got {
			if !slices.Contains(valid, s) {
				t.Fatalf("requiredScopes(%q) returned unknown scope %q", body, s)
			}
			if seen[s] {
				t.Fatalf("requiredScopes(%q) returned %q twice", body, s)
			}
			seen[s] = true
		}
		// The log labels are bounded: a tool the policy names, or "other".
		if first.tool != "" && first.tool != metrics.Other && !slices.Contains(p.Tools(), first.tool) {
			t.Fatalf("requiredScopes(%q) logs tool %q", body, first.tool)
		}
		if first.op != "" && first.op != metrics.Other && !slices.Contains(tools.Operations(), first.op) {
			t.Fatalf("requiredScopes(%q) logs operation %q", body, first.op)
		}
		// Scopes are only ever required for a body whose first JSON value
		// parses: the SDK's stream decoder reads that value and ignores
		// what follows, and the peek must see what the SDK will run.
		if len(got) > 0 {
			var first any
			if _, err := segjson.Parse(bytes.TrimLeft(body, " \t\r\n"), &first, segjson.DontMatchCaseInsensitiveStructFields); err != nil {
				t.Fatalf("requiredScopes(%q) = %q, but its first JSON value does not parse: %v", body, got, err)
			}
		}
	})
}

// toolResult decodes a JSON-RPC tools/call response.
type toolResult struct {
	Result *struct {
		IsError           bool `json:"isError"`
		StructuredContent *struct {
			Result float64 `json:"result"`
		} `json:"structuredContent"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func decodeToolResult(t *testing.T, rec *httptest.ResponseRecorder) toolResult {
	t.Helper()
	var r toolResult
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("response %q: %v", rec.Body.String(), err)
	}
	return r
}

func TestStepUpHTTP(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		body      string
		wantScope string // "" means the call goes through (200)
		wantValue float64
	}{
		{"add with op:add", tokAdd, rpcCall(1, "add"), "", 9},
		{"divide with op:div", tokDiv, rpcCall(1, "divide"), "", 2},
		{"parent allows multiply", tokParent, rpcCall(1, "multiply"), "", 18},
		{"parent allows subtract", tokParent, rpcCall(1, "subtract"), "", 3},
		{"divide with op:add: required then granted", tokAdd, rpcCall(1, "divide"), "op:div op:add", 0},
		{"add with op:div", tokDiv, rpcCall(1, "add"), "op:add op:div", 0},
		{"no scopes at all", tokNone, rpcCall(1, "subtract"), "op:sub", 0},
		{"whoami needs nothing", tokNone, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`, "", 0},
		{"tools/list needs nothing", tokNone, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newTestGateway(t, nil)
			rec := serve(g, mcpRequest(tt.token, tt.body))
			if tt.wantScope == "" {
				if rec.Code != 200 {
					t.Fatalf("status = %d, want 200; %q", rec.Code, rec.Body.String())
				}
				r := decodeToolResult(t, rec)
				if r.Error != nil || r.Result == nil || r.Result.IsError {
					t.Fatalf("not a successful result: %q", rec.Body.String())
				}
				if tt.wantValue != 0 && (r.Result.StructuredContent == nil || r.Result.StructuredContent.Result != tt.wantValue) {
					t.Errorf("result = %q, want %v", rec.Body.String(), tt.wantValue)
				}
				// The SDK's answer was one complete JSON value, sent with its
				// length before the SDK's handler returned (SendCompleteJSON).
				if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want || !rec.Flushed {
					t.Errorf("Content-Length %q, flushed %v; want %s, flushed", got, rec.Flushed, want)
				}
				return
			}
			checkJSONError(t, rec, http.StatusForbidden, "insufficient_scope")
			p := authParams(t, rec.Header().Get("WWW-Authenticate"))
			if p["error"] != "insufficient_scope" {
				t.Errorf("error = %q, want insufficient_scope", p["error"])
			}
			if p["scope"] != tt.wantScope {
				t.Errorf("scope = %q, want %q", p["scope"], tt.wantScope)
			}
			if p["resource_metadata"] != testPRMURL {
				t.Errorf("resource_metadata = %q, want %q", p["resource_metadata"], testPRMURL)
			}
			need := strings.Fields(tt.wantScope)[0]
			if !strings.Contains(p["error_description"], need) {
				t.Errorf("error_description %q does not name %q", p["error_description"], need)
			}
		})
	}
}

// With SCOPE_CHALLENGE=tool there is no 403: the tool answers with an
// isError result naming the scope.
func TestStepUpToolMode(t *testing.T) {
	g, _ := newTestGateway(t, func(c *Config) { c.ScopeChallenge = ScopeChallengeTool })
	tests := []struct {
		token, op string
		wantErr   string
	}{
		{tokAdd, "divide", "op:div"},
		{tokNone, "add", "op:add"},
		{tokDiv, "multiply", "op:mult"},
		{tokAdd, "add", ""},
		{tokParent, "divide", ""},
	}
	for _, tt := range tests {
		t.Run(tt.token+"/"+tt.op, func(t *testing.T) {
			rec := serve(g, mcpRequest(tt.token, rpcCall(1, tt.op)))
			if rec.Code != 200 {
				t.Fatalf("status = %d, want 200 in tool mode; %q", rec.Code, rec.Body.String())
			}
			if rec.Header().Get("WWW-Authenticate") != "" {
				t.Errorf("unexpected challenge %q", rec.Header().Get("WWW-Authenticate"))
			}
			r := decodeToolResult(t, rec)
			if r.Result == nil {
				t.Fatalf("no result: %q", rec.Body.String())
			}
			if tt.wantErr == "" {
				if r.Result.IsError {
					t.Errorf("isError: %q", rec.Body.String())
				}
				return
			}
			if !r.Result.IsError || len(r.Result.Content) == 0 || !strings.Contains(r.Result.Content[0].Text, tt.wantErr) {
				t.Errorf("want isError naming %q, got %q", tt.wantErr, rec.Body.String())
			}
		})
	}
}

// The scope check and the tool read the same arguments: a payload built so
// that encoding/json (step-up) and the SDK might disagree never produces a
// division for a token without op:div. Each is ambiguous (a duplicate or
// case-variant key), and readBody refuses it before any decision.
func TestStepUpDisagreementNeverDivides(t *testing.T) {
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"divide","OPERATION":"add","a":6,"b":3}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"Operation":"add","operation":"divide","a":6,"b":3}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"divide","operation":"add","a":6,"b":3}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","operation":"divide","a":6,"b":3}}}`,
	}
	for _, mode := range []string{ScopeChallengeHTTP, ScopeChallengeTool} {
		g, _ := newTestGateway(t, func(c *Config) { c.ScopeChallenge = mode })
		for i, body := range bodies {
			rec := serve(g, mcpRequest(tokAdd, body))
			if rec.Code != http.StatusOK {
				if rec.Code != http.StatusBadRequest {
					t.Errorf("%s mode, body %d: status %d, want 400 for an ambiguous body", mode, i, rec.Code)
				}
				continue
			}
			r := decodeToolResult(t, rec)
			if r.Result != nil && !r.Result.IsError && r.Result.StructuredContent != nil && r.Result.StructuredContent.Result == 2 {
				t.Errorf("%s mode, body %d: a token with only op:add got a division: %q", mode, i, rec.Body.String())
			}
		}
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 512
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","a":1,"b":2},"_meta":{"pad":"` + strings.Repeat("x", 2*limit) + `"}}}`
	for _, mode := range []string{ScopeChallengeHTTP, ScopeChallengeTool} {
		t.Run(mode, func(t *testing.T) {
			g, _ := newTestGateway(t, func(c *Config) {
				c.MaxBodyBytes = limit
				c.ScopeChallenge = mode
			})
			rec := serve(g, mcpRequest(tokAdd, big))
			// The same error code in both modes (readBody, not the SDK).
			checkJSONError(t, rec, http.StatusRequestEntityTooLarge, "request_too_large")
			// Just under the limit still works.
			small := rpcCall(1, "add")
			if len(small) >= limit {
				t.Fatal("test body too large")
			}
			rec = serve(g, mcpRequest(tokAdd, small))
			if rec.Code != 200 {
				t.Errorf("small body: status %d %q", rec.Code, rec.Body.String())
			}
		})
	}
}

// requiredScopes is peekBody as the tables above read it.
func requiredScopes(policy *scopes.Policy, body []byte) ([]string, peekedCall, error) {
	p, err := peekBody(policy, body, false)
	return p.required, p.first, err
}
