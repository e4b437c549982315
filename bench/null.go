package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// nullServer is the floor of the cache-hostile target: per request it
// makes the one introspection call a never-seen token needs, and answers
// the tools/call with the sum, with no MCP SDK, no cache, no middleware.
// Whatever it cannot reach on this machine (loopback round trips, waking
// idle CPUs, the fake AS's timer) the gateway cannot reach either; the
// distance from the floor to the gateway is what the gateway costs.
func nullServer(asURL string) *http.Server {
	client := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}, Timeout: defIntrospectTO}
	introspectURL := asURL + "/introspect"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, defMaxBodyBytes))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Params struct {
				Arguments struct{ A, B float64 } `json:"arguments"`
			} `json:"params"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		ir, err := http.NewRequestWithContext(r.Context(), http.MethodPost, introspectURL, strings.NewReader(url.Values{"token": {tok}}.Encode()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ir.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		ir.SetBasicAuth(asClientID, asClientSecret)
		resp, err := client.Do(ir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		ans, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(ans), `"active":true`) {
			http.Error(w, "token refused", http.StatusUnauthorized)
			return
		}
		sum := strconv.FormatFloat(req.Params.Arguments.A+req.Params.Arguments.B, 'g', -1, 64)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":{"content":[{"type":"text","text":"`+sum+`"}],"structuredContent":{"result":`+sum+`},"isError":false}}`)
	})
	return httpServer(h, benchLogger())
}
