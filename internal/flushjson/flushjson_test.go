package flushjson

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestWrapBeforeHandlerReturns checks that a complete JSON
// answer reaches the client while the handler is still running (as the
// SDK's is while it closes the request's session), and that everything
// else is passed through as net/http would send it. Each handler blocks
// after writing until the client has read the whole answer, so an answer
// held back until the handler returns fails the test at the client's
// deadline instead of passing by luck.
func TestWrapBeforeHandlerReturns(t *testing.T) {
	tests := []struct {
		name       string
		write      func(w http.ResponseWriter)
		early      bool   // the client gets the body before the handler returns
		wantStatus int    // default 200
		wantBody   string // default `{"jsonrpc":"2.0","id":1,"result":{}}`
		wantLength string // Content-Length header, "" for none
	}{
		{
			name: "one complete JSON value is sent at once",
			write: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
			},
			early: true, wantLength: "36",
		},
		{
			name: "media type parameters are allowed",
			write: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
			},
			early: true, wantLength: "36",
		},
		{
			name: "a batch answer is one JSON array",
			write: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`[{"id":1},{"id":2}]`))
			},
			early: true, wantBody: `[{"id":1},{"id":2}]`, wantLength: "19",
		},
		{
			name: "a body in pieces waits for the handler",
			write: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0",`))
				_, _ = w.Write([]byte(`"id":1,"result":{}}`))
			},
			wantLength: "36", // set by net/http once the handler returned
		},
		{
			name: "an explicit status sends the header first and is left alone",
			write: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{}}`))
			},
			wantStatus: 400, wantBody: `{"jsonrpc":"2.0","id":1,"error":{}}`, wantLength: "35",
		},
		{
			name: "not JSON",
			write: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
			},
			wantLength: "36",
		},
		{
			// The handler's own length covers more than the first Write; it
			// must not be replaced by the length of that Write.
			name: "a Content-Length already set is kept",
			write: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", "9")
				_, _ = w.Write([]byte(`{"a":1}`))
				_, _ = w.Write([]byte(`  `))
			},
			wantBody: `{"a":1}  `, wantLength: "9",
		},
		{
			name:       "no body",
			write:      func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) },
			wantStatus: 202, wantBody: "-", wantLength: "0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus, wantBody := tc.wantStatus, tc.wantBody
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			switch wantBody {
			case "":
				wantBody = `{"jsonrpc":"2.0","id":1,"result":{}}`
			case "-":
				wantBody = ""
			}
			read := make(chan struct{})
			srv := httptest.NewServer(Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.write(w)
				if tc.early {
					<-read // the client must have the whole answer already
				}
			})))
			defer srv.Close()

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				close(read)
				t.Fatalf("no answer while the handler was still running: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			close(read)
			if err != nil {
				t.Fatalf("reading the body while the handler was still running: %v", err)
			}
			if resp.StatusCode != wantStatus || string(body) != wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, wantStatus, wantBody)
			}
			if got := resp.Header.Get("Content-Length"); got != tc.wantLength && !(tc.wantLength == "0" && got == "") {
				t.Errorf("Content-Length %q, want %q", got, tc.wantLength)
			}
		})
	}
}

func TestIsJSONMediaType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"Application/JSON":                true,
		"application/jsonx":               false,
		"application/json-seq":            false,
		"text/event-stream":               false,
		"":                                false,
		"application/json; =":             false,
	} {
		if got := isJSONMediaType(ct); got != want {
			t.Errorf("isJSONMediaType(%q) = %v, want %v", ct, got, want)
		}
	}
}
