package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-gateway/mcp-gateway/internal/httpserver"
)

// asCaller makes the one introspection call a never-seen token needs, as
// plainly as net/http allows: no cache, no coalescing, no claim checks.
type asCaller struct {
	client *http.Client
	url    string
}

func newASCaller(asURL string) *asCaller {
	return &asCaller{url: asURL + "/introspect", client: &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}, Timeout: defIntrospectTO}}
}

// check asks the AS about r's bearer token. It answers the HTTP status to
// refuse the request with, or 0 for an active token.
func (a *asCaller) check(r *http.Request) (int, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return http.StatusUnauthorized, errors.New("no token")
	}
	ir, err := http.NewRequestWithContext(r.Context(), http.MethodPost, a.url, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		return http.StatusInternalServerError, err
	}
	ir.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ir.SetBasicAuth(asClientID, asClientSecret)
	resp, err := a.client.Do(ir)
	if err != nil {
		return http.StatusBadGateway, err
	}
	ans, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(ans), `"active":true`) {
		return http.StatusUnauthorized, errors.New("token refused")
	}
	return 0, nil
}

// nullServer is the floor of the cache-hostile target: per request it
// makes the one introspection call a never-seen token needs, and answers
// the tools/call with the sum, with no MCP SDK, no cache, no middleware.
// Whatever it cannot reach on this machine (loopback round trips, waking
// idle CPUs, the fake AS's timer) the gateway cannot reach either; the
// distance from the floor to the gateway is what the gateway costs.
func nullServer(asURL string) *http.Server {
	as := newASCaller(asURL)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call, ok := readAddCall(w, r)
		if !ok {
			return
		}
		if code, err := as.check(r); code != 0 {
			http.Error(w, err.Error(), code)
			return
		}
		call.answer(w)
	})
	return httpserver.New(h, benchLogger())
}

// lightUpstream is the upstream of row 9d: it answers tools/call with the
// sum as the null server does, without the introspection call or the MCP
// SDK, so that it takes little of the CPU it shares with the load
// generator. It accepts any caller (the proxy in front of it decides).
func lightUpstream() *http.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if call, ok := readAddCall(w, r); ok {
			call.answer(w)
		}
	})
	return httpserver.New(h, benchLogger())
}

// addCall is what the null server and the light upstream read of the load
// generator's tools/call calculator add.
type addCall struct {
	ID     json.RawMessage `json:"id"`
	Params struct {
		Arguments struct{ A, B float64 } `json:"arguments"`
	} `json:"params"`
}

// readAddCall reads r's body as a tools/call; on failure it has answered
// 400.
func readAddCall(w http.ResponseWriter, r *http.Request) (*addCall, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, defMaxBodyBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	var c addCall
	if err := json.Unmarshal(body, &c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return &c, true
}

// answer writes the result the SDK's calculator would: the sum as text and
// as structured content.
func (c *addCall) answer(w http.ResponseWriter) {
	sum := strconv.FormatFloat(c.Params.Arguments.A+c.Params.Arguments.B, 'g', -1, 64)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(c.ID)+`,"result":{"content":[{"type":"text","text":"`+sum+`"}],"structuredContent":{"result":`+sum+`},"isError":false}}`)
}

// sdkFloorServer is the floor of the cache-hostile target for any gateway
// built on the MCP SDK: the baseline (the SDK's handler, no
// authentication) behind the one introspection call a never-seen token
// needs, made as the null server makes it. A gateway cannot do less per
// request than this and still answer through the SDK; the distance from
// here to the gateway is what the gateway's own code costs.
func sdkFloorServer(asURL string, logger *slog.Logger) (*http.Server, error) {
	base, err := baselineHandler(logger)
	if err != nil {
		return nil, err
	}
	as := newASCaller(asURL)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, err := as.check(r); code != 0 {
			http.Error(w, err.Error(), code)
			return
		}
		base.ServeHTTP(w, r)
	})
	return httpserver.New(h, logger), nil
}
