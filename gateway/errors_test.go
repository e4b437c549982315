package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestJSONErrorsWrapper(t *testing.T) {
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		wantStatus  int
		wantBody    string // exact body when passed through; "" to check JSON conversion
		wantCode    string
		wantDescPfx string
	}{
		{
			name: "plain-text error becomes JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "Content-Type must be 'application/json'", http.StatusUnsupportedMediaType)
			},
			wantStatus: 415, wantCode: "unsupported_media_type", wantDescPfx: "Content-Type must be 'application/json'",
		},
		{
			name:       "404 session not found",
			handler:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "session not found", 404) },
			wantStatus: 404, wantCode: "not_found", wantDescPfx: "session not found",
		},
		{
			name:       "description with quotes and newlines stays valid JSON",
			handler:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad \"thing\"\n\x00<script>", 400) },
			wantStatus: 400, wantCode: "bad_request", wantDescPfx: "bad \"thing\"",
		},
		{
			name:       "status without text",
			handler:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "odd", 499) },
			wantStatus: 499, wantCode: "error", wantDescPfx: "odd",
		},
		{
			name:       "empty message",
			handler:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "", 500) },
			wantStatus: 500, wantCode: "internal_server_error",
		},
		{
			name: "multiple writes are joined",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(409)
				_, _ = io.WriteString(w, "stream ID ")
				_, _ = io.WriteString(w, "conflicts")
			},
			wantStatus: 409, wantCode: "conflict", wantDescPfx: "stream ID conflicts",
		},
		{
			name: "huge message is truncated",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, strings.Repeat("é", 10<<10), 400)
			},
			wantStatus: 400, wantCode: "bad_request", wantDescPfx: "éé",
		},
		{
			name: "success passes through",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, "hello")
			},
			wantStatus: 200, wantBody: "hello",
		},
		{
			name: "JSON error passes through",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`)
			},
			wantStatus: 400, wantBody: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
		},
		{
			name: "2xx plain text is not touched",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(202)
			},
			wantStatus: 202, wantBody: "",
		},
		{
			// The first status decides: a later 500 must not start capturing
			// a plain-text body that already went out as a 200.
			name: "second WriteHeader is ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(200)
				w.WriteHeader(500)
				_, _ = io.WriteString(w, "x")
			},
			wantStatus: 200, wantBody: "x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(jsonErrors(tt.handler))
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantCode == "" {
				if string(body) != tt.wantBody {
					t.Errorf("body = %q, want %q unchanged", body, tt.wantBody)
				}
				return
			}
			checkConvertedError(t, resp, body, tt.wantCode, tt.wantDescPfx)
			if len(body) > maxCapturedError*3 { // JSON escaping can at most ~6x, but é is 2 bytes kept as is
				t.Errorf("converted body is %d bytes, want it bounded", len(body))
			}
		})
	}
}

func checkConvertedError(t *testing.T, resp *http.Response, body []byte, code, descPrefix string) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("body is not JSON: %q", body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length = %q, body is %d bytes", cl, len(body))
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("resp.ContentLength = %d, body is %d bytes", resp.ContentLength, len(body))
	}
	var m struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Error != code {
		t.Errorf("error = %q, want %q", m.Error, code)
	}
	if !strings.HasPrefix(m.ErrorDescription, descPrefix) {
		t.Errorf("error_description = %q, want prefix %q", m.ErrorDescription, descPrefix)
	}
}

func TestJSONErrorsFlushAndUnwrap(t *testing.T) {
	rec := httptest.NewRecorder()
	jsonErrors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "data: x\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the wrapper: %v", err)
		}
		if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
			t.Error("wrapper has no Unwrap")
		}
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !rec.Flushed {
		t.Error("SSE response was not flushed")
	}
	if rec.Body.String() != "data: x\n\n" {
		t.Errorf("body = %q", rec.Body.String())
	}

	// While capturing an error, Flush must not commit the plain-text status.
	rec = httptest.NewRecorder()
	jsonErrors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusBadRequest)
		w.(http.Flusher).Flush()
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 400 || !json.Valid(rec.Body.Bytes()) || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("flush during capture: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

// SDK errors seen through the whole gateway, on a real listener so the
// Content-Length actually sent is checked.
func TestSDKErrorsAreJSON(t *testing.T) {
	stateless, _ := newTestGateway(t, nil)
	stateful, _ := newTestGateway(t, func(c *Config) { c.Stateless = false })
	sl := httptest.NewServer(stateless.Handler())
	defer sl.Close()
	sf := httptest.NewServer(stateful.Handler())
	defer sf.Close()

	// A stateful session for user-a.
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
	req := mcpRequest(tokAdd, initBody)
	rec := serve(stateful, req)
	sessionID := rec.Header().Get("Mcp-Session-Id")
	if rec.Code != 200 || sessionID == "" {
		t.Fatalf("initialize = %d, session %q, body %q", rec.Code, sessionID, rec.Body.String())
	}

	tests := []struct {
		name     string
		srv      *httptest.Server
		mutate   func(*http.Request)
		method   string
		status   int
		code     string
		descPart string
	}{
		{
			name: "wrong Content-Type", srv: sl, method: http.MethodPost,
			mutate: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") },
			status: 415, code: "unsupported_media_type", descPart: "Content-Type",
		},
		{
			name: "missing Accept", srv: sl, method: http.MethodPost,
			mutate: func(r *http.Request) { r.Header.Del("Accept") },
			status: 400, code: "bad_request", descPart: "Accept",
		},
		{
			name: "GET on stateless", srv: sl, method: http.MethodGet,
			mutate: func(r *http.Request) {},
			status: 405, code: "method_not_allowed", descPart: "Method Not Allowed",
		},
		{
			name: "unsupported protocol version", srv: sl, method: http.MethodPost,
			mutate: func(r *http.Request) { r.Header.Set("MCP-Protocol-Version", "1999-01-01") },
			status: 400, code: "bad_request", descPart: "protocol version",
		},
		{
			name: "unknown session", srv: sf, method: http.MethodPost,
			mutate: func(r *http.Request) { r.Header.Set("Mcp-Session-Id", "no-such-session") },
			status: 404, code: "not_found", descPart: "session not found",
		},
		{
			name: "session of another user", srv: sf, method: http.MethodPost,
			mutate: func(r *http.Request) {
				r.Header.Set("Mcp-Session-Id", sessionID)
				r.Header.Set("Authorization", "Bearer "+tokUserB)
			},
			status: 403, code: "forbidden", descPart: "session user mismatch",
		},
		{
			name: "DELETE without session", srv: sf, method: http.MethodDelete,
			mutate: func(r *http.Request) {},
			status: 400, code: "bad_request", descPart: "Mcp-Session-Id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(tt.method, tt.srv.URL+"/mcp", strings.NewReader(rpcCall(1, "add")))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/json, text/event-stream")
			r.Header.Set("Authorization", "Bearer "+tokAdd)
			tt.mutate(r)
			resp, err := tt.srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %q", resp.StatusCode, tt.status, body)
			}
			checkConvertedError(t, resp, body, tt.code, "")
			if !strings.Contains(string(body), tt.descPart) {
				t.Errorf("body %q does not mention %q", body, tt.descPart)
			}
		})
	}

	// The owner of the session can still use it.
	r := mcpRequest(tokAdd, rpcCall(2, "add"))
	r.Header.Set("Mcp-Session-Id", sessionID)
	if rec := serve(stateful, r); rec.Code == 404 || rec.Code == 403 {
		t.Errorf("session owner refused: %d %q", rec.Code, rec.Body.String())
	}
}
