package tools_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"github.com/mcp-gateway/mcp-gateway/tools"
)

func TestCompute(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name    string
		op      string
		a, b    float64
		want    float64
		wantErr string // substring; "" means success
	}{
		{"add", "add", 2, 3, 5, ""},
		{"add negatives", "add", -2.5, -0.5, -3, ""},
		{"subtract", "subtract", 2, 3, -1, ""},
		{"multiply", "multiply", 4, 2.5, 10, ""},
		{"multiply by zero", "multiply", 1e300, 0, 0, ""},
		{"divide", "divide", 1, 4, 0.25, ""},
		{"divide negative", "divide", -9, 3, -3, ""},
		{"divide tiny", "divide", 1, 0x1p-1000, 0x1p1000, ""},
		{"divide by zero", "divide", 1, 0, 0, "division by zero"},
		{"divide by negative zero", "divide", 1, math.Copysign(0, -1), 0, "division by zero"},
		{"zero by zero", "divide", 0, 0, 0, "division by zero"},
		{"add overflow", "add", math.MaxFloat64, math.MaxFloat64, 0, "not a finite number"},
		{"subtract overflow", "subtract", -math.MaxFloat64, math.MaxFloat64, 0, "not a finite number"},
		{"multiply overflow", "multiply", 1e308, 10, 0, "not a finite number"},
		{"divide overflow", "divide", 1e308, 1e-308, 0, "not a finite number"},
		// NaN and Inf cannot arrive through JSON, but Compute must still
		// refuse to produce them.
		{"NaN operand", "add", math.NaN(), 1, 0, "not a finite number"},
		{"Inf operand", "add", inf, 1, 0, "not a finite number"},
		{"Inf minus Inf", "subtract", inf, inf, 0, "not a finite number"},
		{"Inf times zero", "multiply", inf, 0, 0, "not a finite number"},
		{"unknown op", "modulo", 1, 2, 0, "unknown operation"},
		{"empty op", "", 1, 2, 0, "unknown operation"},
		{"case matters", "ADD", 1, 2, 0, "unknown operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tools.Compute(tt.op, tt.a, tt.b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Compute(%q, %v, %v) = %v, %v; want error containing %q", tt.op, tt.a, tt.b, got, err, tt.wantErr)
				}
				if got != 0 {
					t.Errorf("Compute returned %v with its error, want 0", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compute(%q, %v, %v) error: %v", tt.op, tt.a, tt.b, err)
			}
			if got != tt.want {
				t.Errorf("Compute(%q, %v, %v) = %v, want %v", tt.op, tt.a, tt.b, got, tt.want)
			}
		})
	}
}

// testTokens maps the bearer tokens the test server accepts to what they
// speak for.
var testTokens = map[string]*auth.TokenInfo{
	"tok-none":   {UserID: "u-none", Scopes: nil},
	"tok-add":    {UserID: "u-add", Scopes: []string{"op:add"}},
	"tok-sub":    {UserID: "u-sub", Scopes: []string{"op:sub"}},
	"tok-mult":   {UserID: "u-mult", Scopes: []string{"op:mult"}},
	"tok-div":    {UserID: "u-div", Scopes: []string{"op:div"}},
	"tok-all":    {UserID: "u-all", Scopes: []string{"op:add", "op:sub", "op:mult", "op:div"}},
	"tok-parent": {UserID: "u-parent", Scopes: []string{"op"}},
	"tok-whoami": {
		UserID:     "user-123",
		Scopes:     []string{"op:add", "profile"},
		Expiration: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600)),
		Extra: map[string]any{
			"username":  "ada",
			"email":     "ada@example.com",
			"client_id": "claude-connector",
		},
	},
	"tok-sub-claim": {
		UserID: "user-from-userid",
		Extra:  map[string]any{"sub": "user-from-sub-claim", "email": "e@example.com"},
	},
}

func verify(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	ti, ok := testTokens[token]
	if !ok {
		return nil, auth.ErrInvalidToken
	}
	return ti, nil
}

// newServer serves the tools over Streamable HTTP behind the SDK's bearer
// middleware, which is the only way req.Extra.TokenInfo gets filled.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	if err := tools.Register(s, tools.Policy()); err != nil {
		t.Fatalf("Register: %v", err)
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h))
	t.Cleanup(srv.Close)
	return srv
}

func connect(t *testing.T, srv *httptest.Server, token string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "tools-test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             srv.URL,
		HTTPClient:           &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: srv.Client().Transport}},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		t.Fatalf("Connect with %s: %v", token, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
}

func resultText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestListTools(t *testing.T) {
	srv := newServer(t)
	cs := connect(t, srv, "tok-none")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	byName := map[string]*mcp.Tool{}
	for _, tl := range res.Tools {
		byName[tl.Name] = tl
	}
	for _, name := range []string{tools.CalculatorTool, tools.WhoamiTool} {
		tl := byName[name]
		if tl == nil {
			t.Fatalf("tool %q not listed; got %v", name, byName)
		}
		if strings.TrimSpace(tl.Description) == "" {
			t.Errorf("tool %q has no description", name)
		}
		if tl.Annotations == nil || !tl.Annotations.ReadOnlyHint {
			t.Errorf("tool %q is not annotated read-only", name)
		}
	}
	if len(byName) != 2 {
		t.Errorf("listed tools = %d, want 2", len(byName))
	}
	for _, s := range tools.Policy().Scopes() {
		if !strings.Contains(byName[tools.CalculatorTool].Description, s) {
			t.Errorf("calculator description does not mention %q", s)
		}
	}

	raw, err := json.Marshal(byName[tools.CalculatorTool].InputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Type       string   `json:"type"`
		Required   []string `json:"required"`
		Properties map[string]struct {
			Type string `json:"type"`
			Enum []any  `json:"enum"`
		} `json:"properties"`
		AdditionalProperties json.RawMessage `json:"additionalProperties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("input schema %s: %v", raw, err)
	}
	if schema.Type != "object" {
		t.Errorf("schema type = %q, want object", schema.Type)
	}
	req := slices.Clone(schema.Required)
	slices.Sort(req)
	if want := []string{"a", "b", "operation"}; !slices.Equal(req, want) {
		t.Errorf("required = %q, want %q (schema %s)", schema.Required, want, raw)
	}
	var enum []string
	for _, v := range schema.Properties["operation"].Enum {
		s, _ := v.(string)
		enum = append(enum, s)
	}
	if want := []string{"add", "subtract", "multiply", "divide"}; !slices.Equal(enum, want) {
		t.Errorf("operation enum = %q, want %q (schema %s)", enum, want, raw)
	}
	for _, p := range []string{"a", "b"} {
		if got := schema.Properties[p].Type; got != "number" {
			t.Errorf("property %q type = %q, want number", p, got)
		}
	}
	if len(schema.AdditionalProperties) == 0 || string(schema.AdditionalProperties) == "true" {
		t.Errorf("additionalProperties = %s, want it to forbid extra arguments", schema.AdditionalProperties)
	}

	// whoami's scopes are always a list: its output schema says "array",
	// not ["null","array"], which MCP Inspector flags as not portable.
	raw, err = json.Marshal(byName[tools.WhoamiTool].OutputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Properties map[string]struct {
			Type json.RawMessage `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("output schema %s: %v", raw, err)
	}
	if got := string(out.Properties["scopes"].Type); got != `"array"` {
		t.Errorf("whoami output schema scopes type = %s, want \"array\" (schema %s)", got, raw)
	}
}

func TestCalculatorScopes(t *testing.T) {
	srv := newServer(t)
	sessions := map[string]*mcp.ClientSession{}
	session := func(tok string) *mcp.ClientSession {
		if cs, ok := sessions[tok]; ok {
			return cs
		}
		cs := connect(t, srv, tok)
		sessions[tok] = cs
		return cs
	}
	tests := []struct {
		token     string
		op        string
		a, b      float64
		want      float64
		wantError string // substring of the isError text; "" means success
	}{
		{"tok-add", "add", 2, 3, 5, ""},
		{"tok-sub", "subtract", 2, 3, -1, ""},
		{"tok-mult", "multiply", 2, 3, 6, ""},
		{"tok-div", "divide", 3, 2, 1.5, ""},
		{"tok-all", "divide", 9, 3, 3, ""},
		{"tok-parent", "add", 1, 1, 2, ""},
		{"tok-parent", "subtract", 1, 1, 0, ""},
		{"tok-parent", "multiply", 2, 2, 4, ""},
		{"tok-parent", "divide", 1, 2, 0.5, ""},

		{"tok-none", "add", 1, 1, 0, "op:add"},
		{"tok-add", "subtract", 1, 1, 0, "op:sub"},
		{"tok-add", "multiply", 1, 1, 0, "op:mult"},
		{"tok-add", "divide", 1, 1, 0, "op:div"},
		{"tok-div", "add", 1, 1, 0, "op:add"},
		{"tok-sub", "divide", 1, 1, 0, "op:div"},
		{"tok-mult", "add", 1, 1, 0, "op:add"},

		{"tok-div", "divide", 1, 0, 0, "division by zero"},
		{"tok-mult", "multiply", 1e308, 10, 0, "not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.token+"/"+tt.op, func(t *testing.T) {
			res, err := callTool(t, session(tt.token), tools.CalculatorTool, map[string]any{"operation": tt.op, "a": tt.a, "b": tt.b})
			if err != nil {
				t.Fatalf("CallTool: %v", err)
			}
			text := resultText(res)
			if tt.wantError != "" {
				if !res.IsError {
					t.Fatalf("result is not an error: %q", text)
				}
				if !strings.Contains(text, tt.wantError) {
					t.Errorf("error text %q does not name %q", text, tt.wantError)
				}
				return
			}
			if res.IsError {
				t.Fatalf("unexpected isError result: %q", text)
			}
			raw, _ := json.Marshal(res.StructuredContent)
			var out tools.CalculatorOutput
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("structured content %s: %v", raw, err)
			}
			if out.Result != tt.want || out.Operation != tt.op || out.A != tt.a || out.B != tt.b {
				t.Errorf("structured = %+v, want result %v of %s(%v, %v)", out, tt.want, tt.op, tt.a, tt.b)
			}
			if text == "" {
				t.Error("no text content")
			}
		})
	}
}

func TestCalculatorRejectsBadArguments(t *testing.T) {
	srv := newServer(t)
	cs := connect(t, srv, "tok-parent")
	tests := []struct {
		name string
		args map[string]any
	}{
		{"unknown operation", map[string]any{"operation": "modulo", "a": 1, "b": 2}},
		{"scope name as operation", map[string]any{"operation": "op:add", "a": 1, "b": 2}},
		{"missing operation", map[string]any{"a": 1, "b": 2}},
		{"missing operand", map[string]any{"operation": "add", "a": 1}},
		{"string operand", map[string]any{"operation": "add", "a": "1", "b": 2}},
		{"extra argument", map[string]any{"operation": "add", "a": 1, "b": 2, "c": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := callTool(t, cs, tools.CalculatorTool, tt.args)
			if err != nil {
				return // refused at the protocol level (schema validation)
			}
			if !res.IsError {
				t.Fatalf("call with %v succeeded: %q %v", tt.args, resultText(res), res.StructuredContent)
			}
		})
	}
}

func TestWhoami(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		token string
		want  tools.WhoamiOutput
		text  []string
	}{
		{
			token: "tok-whoami",
			want: tools.WhoamiOutput{
				Subject: "user-123", Username: "ada", Email: "ada@example.com", ClientID: "claude-connector",
				Scopes: []string{"op:add", "profile"}, ExpiresAt: "2030-01-02T02:04:05Z",
			},
			text: []string{"ada", "claude-connector", "op:add"},
		},
		{
			token: "tok-sub-claim",
			want:  tools.WhoamiOutput{Subject: "user-from-sub-claim", Email: "e@example.com", Scopes: []string{}},
			text:  []string{"e@example.com", "client unknown"},
		},
		{
			token: "tok-none",
			want:  tools.WhoamiOutput{Subject: "u-none", Scopes: []string{}},
			text:  []string{"u-none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			cs := connect(t, srv, tt.token)
			res, err := callTool(t, cs, tools.WhoamiTool, map[string]any{})
			if err != nil {
				t.Fatalf("CallTool: %v", err)
			}
			if res.IsError {
				t.Fatalf("isError: %q", resultText(res))
			}
			raw, err := json.Marshal(res.StructuredContent)
			if err != nil {
				t.Fatal(err)
			}
			var got tools.WhoamiOutput
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("structured content %s: %v", raw, err)
			}
			if got.Subject != tt.want.Subject || got.Username != tt.want.Username || got.Email != tt.want.Email ||
				got.ClientID != tt.want.ClientID || got.ExpiresAt != tt.want.ExpiresAt || !slices.Equal(got.Scopes, tt.want.Scopes) {
				t.Errorf("whoami = %+v, want %+v", got, tt.want)
			}
			if !strings.Contains(string(raw), `"scopes":[`) {
				t.Errorf("scopes must always be an array, got %s", raw)
			}
			text := resultText(res)
			for _, w := range tt.text {
				if !strings.Contains(text, w) {
					t.Errorf("text %q does not contain %q", text, w)
				}
			}
			// The token itself never comes back.
			all, _ := json.Marshal(res)
			if strings.Contains(string(all), tt.token) {
				t.Errorf("whoami result contains the bearer token: %s", all)
			}
		})
	}
}

// Without the SDK's bearer middleware, TokenInfo is nil: the calculator has
// no scopes to offer and whoami refuses.
func TestNoTokenInfo(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	if err := tools.Register(s, tools.Policy()); err != nil {
		t.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tools.WhoamiTool, Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(resultText(res), "no authenticated caller") {
		t.Errorf("whoami without TokenInfo = %v %q, want isError", res.IsError, resultText(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: tools.CalculatorTool, Arguments: map[string]any{"operation": "add", "a": 1, "b": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(resultText(res), "op:add") {
		t.Errorf("calculator without TokenInfo = %v %q, want isError naming op:add", res.IsError, resultText(res))
	}
}

// TestRegisterTwiceIsHarmless: registering again replaces the tools, it
// does not add a second copy of each.
func TestRegisterTwiceIsHarmless(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	for i := 0; i < 2; i++ {
		if err := tools.Register(s, tools.Policy()); err != nil {
			t.Fatalf("Register #%d: %v", i+1, err)
		}
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{tools.CalculatorTool, tools.WhoamiTool}; !slices.Equal(names, want) {
		t.Errorf("tools after two registrations = %q, want %q", names, want)
	}
}
