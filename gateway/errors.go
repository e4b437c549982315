package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/prm"
)

// jsonErrors makes the SDK's plain-text error responses (http.Error: 400,
// 403 session user mismatch, 404 session not found, 405, 415 ...) JSON,
// because some MCP clients cannot parse a plain-text error. Successful
// responses, and errors already in JSON, pass through untouched and
// unbuffered.
func jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jw := &jsonErrorWriter{ResponseWriter: w}
		next.ServeHTTP(jw, r)
		jw.finish()
	})
}

type jsonErrorWriter struct {
	http.ResponseWriter
	status    int
	capturing bool
	buf       []byte
}

const maxCapturedError = 4 << 10

func (w *jsonErrorWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if status >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.capturing = true
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.capturing {
		if room := maxCapturedError - len(w.buf); room > 0 {
			w.buf = append(w.buf, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *jsonErrorWriter) finish() {
	if !w.capturing {
		return
	}
	code := strings.ToLower(strings.ReplaceAll(http.StatusText(w.status), " ", "_"))
	if code == "" {
		code = "error"
	}
	body, _ := json.Marshal(prm.ErrorBody{Error: code, ErrorDescription: strings.TrimSpace(string(w.buf))})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("X-Content-Type-Options")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}

// Flush keeps SSE streaming working through the wrapper.
func (w *jsonErrorWriter) Flush() {
	if w.capturing {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
