package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// validPrefix marks the tokens the fake authorization server calls active.
// Anything else is inactive. The server keeps no token table, so that the
// memory target measures the gateway's cache and nothing of the fake's.
const validPrefix = "valid-"

// Fake AS client credentials.
const (
	asClientID     = "bench-gateway"
	asClientSecret = "bench-gateway-secret"
)

// fakeAS is a minimal RFC 8414 + RFC 7662 authorization server: discovery
// metadata, and an introspection endpoint with a configurable latency and
// an atomic call counter. It is deliberately cheap (no token table, the
// answer is appended into a buffer) so that it takes as little of the
// shared CPU as possible.
type fakeAS struct {
	URL      string // issuer
	audience string // "aud" of every active token

	latency atomic.Int64 // time.Duration
	calls   atomic.Int64
	disc    atomic.Int64

	basic string
	srv   *http.Server
	ln    net.Listener
}

func newFakeAS(audience string) (*fakeAS, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	as := &fakeAS{
		URL:      "http://" + ln.Addr().String(),
		audience: audience,
		ln:       ln,
		basic:    "Basic " + base64.StdEncoding.EncodeToString([]byte(asClientID+":"+asClientSecret)),
	}
	as.srv = &http.Server{Handler: as, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = as.srv.Serve(ln) }()
	return as, nil
}

func (as *fakeAS) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = as.srv.Shutdown(ctx)
}

// SetLatency delays every introspection answer by d.
func (as *fakeAS) SetLatency(d time.Duration) { as.latency.Store(int64(d)) }

// Calls is the number of introspection requests received.
func (as *fakeAS) Calls() int64 { return as.calls.Load() }

func (as *fakeAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/introspect":
		as.introspect(w, r)
	case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
		as.disc.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                 as.URL,
			"introspection_endpoint": as.URL + "/introspect",
			"token_endpoint":         as.URL + "/token",
			"authorization_endpoint": as.URL + "/authorize",
			"scopes_supported":       []string{"op:add", "op:sub", "op:mult", "op:div"},
			"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		})
	default:
		http.NotFound(w, r)
	}
}

func (as *fakeAS) introspect(w http.ResponseWriter, r *http.Request) {
	as.calls.Add(1)
	err := r.ParseForm()
	if d := time.Duration(as.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost || err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return
	}
	if r.Header.Get("Authorization") != as.basic {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	tok := r.PostForm.Get("token")
	if !strings.HasPrefix(tok, validPrefix) {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	// A realistic answer: the claims introspecttest.Issue returns, with a
	// UUID-sized subject derived from the token.
	sum := sha256.Sum256([]byte(tok))
	now := time.Now().Unix()
	b := make([]byte, 0, 512)
	b = append(b, `{"active":true,"iss":`...)
	b = strconv.AppendQuote(b, as.URL)
	b = append(b, `,"sub":"`...)
	b = hex.AppendEncode(b, sum[:18])
	b = append(b, `","aud":`...)
	b = strconv.AppendQuote(b, as.audience)
	b = append(b, `,"scope":"op:add op:sub op:mult op:div","exp":`...)
	b = strconv.AppendInt(b, now+3600, 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `,"client_id":"bench-client","token_type":"Bearer"}`...)
	_, _ = w.Write(b)
}
