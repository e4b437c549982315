package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A policy declared in the environment governs the built-in tools on the
// wire: what tools/list shows, what a call needs, what the metadata
// advertises.
func TestPolicyFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(`
default: deny
scopes:
  op:add: Add two numbers
tools:
  calculator:
    argument: operation
    values: {add: [op:add]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, toolsList string }{{"all", "all"}, {"allowed", "allowed"}} {
		t.Run(tc.name, func(t *testing.T) {
			as, g := externalAS(t, map[string]string{"POLICY_FILE": file, "TOOLS_LIST": tc.toolsList})
			tok := as.Issue("alice", []string{"op:add"}, g.Resource, time.Hour)
			none := as.Issue("bob", nil, g.Resource, time.Hour)

			var names []string
			res, err := mcpClient(t, g, tok).ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tl := range res.Tools {
				names = append(names, tl.Name)
			}
			if !slices.Equal(names, []string{"calculator"}) {
				t.Errorf("tools/list = %q, want only calculator (whoami is denied by default)", names)
			}
			res, err = mcpClient(t, g, none).ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int{"all": 1, "allowed": 0}[tc.toolsList]; len(res.Tools) != want {
				t.Errorf("TOOLS_LIST=%s: a token with no scope sees %d tools, want %d", tc.toolsList, len(res.Tools), want)
			}

			if r, err := calc(mcpClient(t, g, tok), "add", 6, 3); err != nil || r.IsError {
				t.Errorf("add with op:add = %+v, %v", r, err)
			}
			for op, want := range map[string]string{"divide": `does not accept operation "divide"`} {
				if _, err := calc(mcpClient(t, g, tok), op, 6, 3); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s = %v, want %q", op, err, want)
				}
			}
			if _, err := mcpClient(t, g, tok).CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"}); err == nil || !strings.Contains(err.Error(), `unknown tool "whoami"`) {
				t.Errorf("whoami = %v, want it refused as an unknown tool", err)
			}
			md := getJSON(t, g.BaseURL+"/.well-known/oauth-protected-resource/mcp")
			if got, _ := md["scopes_supported"].([]any); len(got) != 1 || got[0] != "op:add" {
				t.Errorf("scopes_supported = %v, want the policy's [op:add]", md["scopes_supported"])
			}
		})
	}
}

// A malformed policy is a configuration error listing every problem with
// its line (exit status 2, TestBadConfigurationExitsWithStatus2).
func TestMalformedPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"problems with lines", map[string]string{"POLICY": "default: maybe\ntools:\n  echo: [\"bad scope\"]\n  calc:\n    argument: op\n"},
			[]string{"POLICY: line 1:", "POLICY: line 3:", "POLICY: line 4:"}},
		{"both set", map[string]string{"POLICY": "default: []", "POLICY_FILE": "/nonexistent"}, []string{"POLICY and POLICY_FILE are both set"}},
		{"missing file", map[string]string{"POLICY_FILE": "/nonexistent/policy.yaml"}, []string{`POLICY_FILE="/nonexistent/policy.yaml" cannot be read`}},
		{"tools list", map[string]string{"TOOLS_LIST": "some"}, []string{`TOOLS_LIST="some" must be all or allowed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), nil, envOf(tc.env), io.Discard, io.Discard, nil)
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return m
}
