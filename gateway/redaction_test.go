package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	// Random first characters, so "the first 8 characters" is a
	// meaningful probe; the prefix only goes at the end.
	return base64.RawURLEncoding.EncodeToString(b) + prefix
}

// TestLogRedaction runs a scenario matrix through the gateway with a JSON
// logger at Debug and the metrics served, and asserts that no token, nor
// its first 8 characters, appears in the logs, the metrics, or any response
// header or body; and that no subject appears in the logs or the metrics.
func TestLogRedaction(t *testing.T) {
	tok := map[string]string{}
	for _, name := range []string{"add", "all", "invalid", "expired", "unavailable", "overloaded", "ratelimited", "clientauth", "malformed", "query", "other"} {
		tok[name] = randomSecret(t, "-"+name)
	}
	subject := randomSecret(t, "-subject")
	clientID := randomSecret(t, "-client")
	future := time.Now().Add(time.Hour)
	ti := func(s ...string) *auth.TokenInfo {
		return &auth.TokenInfo{UserID: subject, Scopes: s, Expiration: future, Extra: map[string]any{"client_id": clientID}}
	}
	v := newFakeVerifier(map[string]verdict{
		tok["add"]:         {ti: ti("op:add")},
		tok["all"]:         {ti: ti(tools.Policy().Scopes()...)},
		tok["invalid"]:     {err: &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive}},
		tok["expired"]:     {err: &accesstoken.InvalidError{Reason: accesstoken.ReasonExpired}}, // the verifier decides expiry
		tok["unavailable"]: {err: &introspect.UnavailableError{RetryAfter: time.Second, Err: errors.New("dial tcp 192.0.2.1:443: connection refused")}},
		tok["overloaded"]:  {err: &introspect.UnavailableError{Err: introspect.ErrOverloaded}},
		tok["ratelimited"]: {err: &introspect.RateLimitError{RetryAfter: time.Second}},
		tok["clientauth"]:  {err: &introspect.ClientAuthError{StatusCode: 401}},
		tok["other"]:       {ti: &auth.TokenInfo{UserID: "someone-else", Scopes: tools.Policy().Scopes(), Expiration: future}},
	})

	for _, stateless := range []bool{true, false} {
		name := "stateful"
		if stateless {
			name = "stateless"
		}
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			m := newMetrics()
			cfg := testConfig(v)
			cfg.Stateless = stateless
			cfg.JSONResponse = stateless
			cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg.Metrics = m
			cfg.ServeMetrics = true
			g, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.Close)
			var responses []*httptest.ResponseRecorder
			do := func(r *http.Request) *httptest.ResponseRecorder {
				rec := serve(g, r)
				responses = append(responses, rec)
				return rec
			}

			scenarios := []struct {
				name   string
				req    func() *http.Request
				status int
			}{
				{"missing", func() *http.Request { return mcpRequest("", rpcCall(1, "add")) }, 401},
				{"malformed: two tokens", func() *http.Request {
					r := mcpRequest("", rpcCall(1, "add"))
					r.Header.Set("Authorization", "Bearer "+tok["malformed"]+" "+tok["add"])
					return r
				}, 400},
				{"malformed: token in query", func() *http.Request {
					r := mcpRequest("", rpcCall(1, "add"))
					r.URL.RawQuery = "access_token=" + tok["query"]
					return r
				}, 400},
				{"malformed: non-bearer", func() *http.Request {
					r := mcpRequest("", rpcCall(1, "add"))
					r.Header.Set("Authorization", "Basic "+tok["malformed"])
					return r
				}, 400},
				{"invalid", func() *http.Request { return mcpRequest(tok["invalid"], rpcCall(1, "add")) }, 401},
				{"expired", func() *http.Request { return mcpRequest(tok["expired"], rpcCall(1, "add")) }, 401},
				{"insufficient scope", func() *http.Request { return mcpRequest(tok["add"], rpcCall(1, "divide")) }, 403},
				{"AS unavailable", func() *http.Request { return mcpRequest(tok["unavailable"], rpcCall(1, "add")) }, 503},
				{"overloaded", func() *http.Request { return mcpRequest(tok["overloaded"], rpcCall(1, "add")) }, 503},
				{"gateway credentials rejected", func() *http.Request { return mcpRequest(tok["clientauth"], rpcCall(1, "add")) }, 503},
				{"rate-limited", func() *http.Request { return mcpRequest(tok["ratelimited"], rpcCall(1, "add")) }, 429},
				{"forbidden origin", func() *http.Request {
					r := mcpRequest(tok["all"], rpcCall(1, "add"))
					r.Header.Set("Origin", "https://evil.example")
					return r
				}, 403},
				{"unmatched path carrying a token", func() *http.Request {
					return httptest.NewRequest(http.MethodGet, "/x/"+tok["query"]+"?access_token="+tok["query"], nil)
				}, 404},
				{"health", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/healthz", nil) }, 200},
			}
			if stateless {
				scenarios = append(scenarios, struct {
					name   string
					req    func() *http.Request
					status int
				}{"success", func() *http.Request { return mcpRequest(tok["all"], rpcCall(1, "multiply")) }, 200})
			}
			for _, s := range scenarios {
				if rec := do(s.req()); rec.Code != s.status {
					t.Errorf("%s: status %d, want %d (%s)", s.name, rec.Code, s.status, rec.Body.String())
				}
			}
			if !stateless {
				// Session reuse: initialize, call twice in the session
				// (including whoami, which reads the subject), end it.
				rec := do(mcpRequest(tok["all"], initializeBody))
				id := rec.Header().Get("Mcp-Session-Id")
				if rec.Code != 200 || id == "" {
					t.Fatalf("initialize = %d", rec.Code)
				}
				for _, body := range []string{
					`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
					rpcCall(2, "add"),
					rpcCall(3, "divide"),
					`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`,
				} {
					r := mcpRequest(tok["all"], body)
					r.Header.Set("Mcp-Session-Id", id)
					if rec := do(r); rec.Code >= 300 {
						t.Errorf("in-session request = %d %s", rec.Code, rec.Body.String())
					}
				}
				// Another user cannot use it; the 403 leaks nothing either.
				r := mcpRequest(tok["other"], rpcCall(5, "add"))
				r.Header.Set("Mcp-Session-Id", id)
				if rec := do(r); rec.Code != http.StatusForbidden {
					t.Errorf("another user's request in the session = %d", rec.Code)
				}
				del := httptest.NewRequest(http.MethodDelete, "/mcp", nil)
				del.Header.Set("Authorization", "Bearer "+tok["all"])
				del.Header.Set("Mcp-Session-Id", id)
				if rec := do(del); rec.Code != http.StatusNoContent {
					t.Errorf("DELETE = %d", rec.Code)
				}
			}
			scrape := do(httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if scrape.Code != 200 {
				t.Fatalf("GET /metrics = %d", scrape.Code)
			}
			metricsText := scrape.Body.String()

			// The matrix must have produced the log lines and series it is
			// meant to probe, or the absence checks prove nothing.
			lines := requestLines(t, logs.Bytes())
			if len(lines) < len(scenarios) {
				t.Fatalf("%d request log lines for %d scenarios", len(lines), len(scenarios))
			}
			if !strings.Contains(logs.String(), `"subject_hash"`) {
				t.Error("no subject_hash logged: the success path was not exercised")
			}
			for _, reason := range []string{"missing", "malformed", "inactive", "expired", "insufficient_scope", "unavailable", "rate_limited", "forbidden_origin", "ok"} {
				if strings.Contains(metricsText, `mcp_gateway_auth_outcomes_total{reason="`+reason+`"} 0`) {
					t.Errorf("auth outcome %s not exercised", reason)
				}
			}

			probes := map[string]string{"subject": subject, "subject prefix": subject[:8], "client id": clientID, "client id prefix": clientID[:8]}
			for name, tk := range tok {
				probes["token "+name] = tk
				probes["token "+name+" prefix"] = tk[:8]
			}
			for what, p := range probes {
				if strings.Contains(logs.String(), p) {
					t.Errorf("logs contain the %s", what)
				}
				if strings.Contains(metricsText, p) {
					t.Errorf("metrics contain the %s", what)
				}
				if strings.HasPrefix(what, "subject") || strings.HasPrefix(what, "client id") {
					continue // whoami's body names the caller, by design
				}
				for i, rec := range responses {
					if strings.Contains(rec.Body.String(), p) {
						t.Errorf("response %d body contains the %s: %s", i, what, rec.Body.String())
					}
					for k, vals := range rec.Header() {
						for _, val := range vals {
							if strings.Contains(val, p) {
								t.Errorf("response %d header %s contains the %s", i, k, what)
							}
						}
					}
				}
			}
			if t.Failed() {
				t.Logf("logs:\n%s", logs.String())
			}
		})
	}
}
