package introspect

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

func respond(code int, header map[string]string, body string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
		return true
	}
}

func TestUnavailable(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect was followed to %s", r.URL)
	}))
	defer other.Close()
	httpDate := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)

	tests := []struct {
		name      string
		failure   func(http.ResponseWriter, *http.Request) bool
		mod       func(*Config)
		wantRetry time.Duration // 0: don't check
	}{
		{name: "500", failure: respond(500, nil, "oops"), wantRetry: DefaultRetryAfter},
		{name: "502 retry-after seconds", failure: respond(502, map[string]string{"Retry-After": "7"}, ""), wantRetry: 7 * time.Second},
		{name: "503 retry-after capped", failure: respond(503, map[string]string{"Retry-After": "3600"}, ""), wantRetry: maxRetryAfter},
		{name: "429 retry-after date", failure: respond(429, map[string]string{"Retry-After": httpDate}, "")},
		{name: "404", failure: respond(404, nil, "")},
		{name: "non-JSON", failure: respond(200, nil, "<html>hello</html>")},
		{name: "JSON array", failure: respond(200, nil, `[{"active":true}]`)},
		{name: "missing active", failure: respond(200, nil, `{"sub":"x","aud":"`+testResource+`"}`)},
		{name: "active string", failure: respond(200, nil, `{"active":"true","aud":"`+testResource+`"}`)},
		{name: "active null", failure: respond(200, nil, `{"active":null}`)},
		{name: "400 non-JSON", failure: respond(400, nil, "bad")},
		{name: "400 unknown error", failure: respond(400, nil, `{"error":"server_error"}`)},
		{name: "body over limit", failure: respond(200, nil, `{"active":true,"pad":"`+strings.Repeat("x", 2000)+`"}`),
			mod: func(c *Config) { c.MaxResponseBytes = 1000 }},
		{name: "redirect 307 other host", failure: respond(307, map[string]string{"Location": other.URL + "/introspect"}, "")},
		{name: "redirect 302", failure: respond(302, map[string]string{"Location": other.URL}, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := introspecttest.New(t)
			tok := srv.Issue("u", nil, testResource, time.Hour)
			srv.SetFailure(tt.failure)
			mods := []func(*Config){}
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			v, _ := newTestVerifier(t, srv, mods...)
			_, err := v.Verify(t.Context(), tok)
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v (%T), want *UnavailableError", err, err)
			}
			if errors.Is(err, auth.ErrInvalidToken) {
				t.Error("UnavailableError must not unwrap to auth.ErrInvalidToken")
			}
			if ue.RetryAfter <= 0 || ue.RetryAfter > maxRetryAfter {
				t.Errorf("RetryAfter = %v out of range", ue.RetryAfter)
			}
			if tt.wantRetry != 0 && ue.RetryAfter != tt.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", ue.RetryAfter, tt.wantRetry)
			}
			// Never cached: once the AS recovers, the next call asks again.
			v.Wait()
			srv.SetFailure(nil)
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
			if n := srv.Calls(); n != 2 {
				t.Errorf("calls = %d, want 2", n)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", DefaultRetryAfter},
		{"3", 3 * time.Second},
		{" 12 ", 12 * time.Second},
		{"0", DefaultRetryAfter},
		{"-5", DefaultRetryAfter},
		{"99999999999999999999", DefaultRetryAfter},
		{"86400", maxRetryAfter},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), DefaultRetryAfter},
		{now.Add(time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"soon", DefaultRetryAfter},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestTimeout(t *testing.T) {
	srv := introspecttest.New(t)
	srv.SetLatency(5 * time.Second)
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := v.Verify(t.Context(), "tok")
	elapsed := time.Since(start)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want UnavailableError wrapping DeadlineExceeded", err)
	}
	if elapsed > time.Second {
		t.Errorf("Verify took %v with a 100ms timeout", elapsed)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	v, err := New(t.Context(), Config{
		Endpoint: "http://" + addr + "/introspect", ClientID: "c", ClientSecret: "s", Audiences: []string{testResource},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, err = v.Verify(t.Context(), "tok")
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *UnavailableError", err)
	}
}

func TestClientAuthError(t *testing.T) {
	tests := []struct {
		name    string
		failure func(http.ResponseWriter, *http.Request) bool
		status  int
	}{
		{"401", respond(401, nil, `{"error":"invalid_client"}`), 401},
		{"403", respond(403, nil, ""), 403},
		{"400 invalid_client", respond(400, nil, `{"error":"invalid_client"}`), 400},
		{"400 unauthorized_client", respond(400, nil, `{"error":"unauthorized_client"}`), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := introspecttest.New(t)
			tok := srv.Issue("u", nil, testResource, time.Hour)
			v, _ := newTestVerifier(t, srv)
			if err := v.Ready(t.Context()); err != nil {
				t.Fatalf("Ready before: %v", err)
			}
			srv.SetFailure(tt.failure)
			_, err := v.Verify(t.Context(), tok)
			var ce *ClientAuthError
			if !errors.As(err, &ce) || ce.StatusCode != tt.status {
				t.Fatalf("err = %v, want ClientAuthError{%d}", err, tt.status)
			}
			if errors.Is(err, auth.ErrInvalidToken) {
				t.Error("ClientAuthError must not unwrap to auth.ErrInvalidToken")
			}
			if err := v.Ready(t.Context()); !errors.As(err, &ce) {
				t.Fatalf("Ready after rejection = %v, want ClientAuthError", err)
			}
			srv.SetFailure(nil)
			v.Wait()
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("after recovery: %v (client auth errors must not be cached)", err)
			}
			if err := v.Ready(t.Context()); err != nil {
				t.Fatalf("Ready after success: %v", err)
			}
		})
	}
	t.Run("wrong secret against the fake server", func(t *testing.T) {
		srv := introspecttest.New(t)
		v, _ := newTestVerifier(t, srv, func(c *Config) { c.ClientSecret = "wrong" })
		var ce *ClientAuthError
		if _, err := v.Verify(t.Context(), "tok"); !errors.As(err, &ce) || ce.StatusCode != 401 {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestRequestShape checks the RFC 7662 §2.1 request and both RFC 6749
// §2.3.1 client authentication methods, with credentials that need
// form-encoding.
func TestRequestShape(t *testing.T) {
	const id, secret = "id:with/special+chars é", "p@ss:w%rd&=+ x"
	for _, method := range []string{"", AuthMethodClientSecretBasic, AuthMethodClientSecretPost} {
		t.Run("method="+method, func(t *testing.T) {
			srv := introspecttest.New(t, introspecttest.WithClientCredentials(id, secret))
			tok := srv.Issue("u", nil, testResource, time.Hour)
			var checked atomic.Bool
			srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
				checked.Store(true)
				if r.Method != http.MethodPost {
					t.Errorf("method %s", r.Method)
				}
				if got := r.Header.Get("Accept"); got != "application/json" {
					t.Errorf("Accept = %q", got)
				}
				if got := r.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
					t.Errorf("Content-Type = %q", got)
				}
				if err := r.ParseForm(); err != nil {
					t.Error(err)
				}
				if r.URL.RawQuery != "" {
					t.Errorf("query string %q: the token belongs in the body", r.URL.RawQuery)
				}
				if r.PostForm.Get("token") != tok || r.PostForm.Get("token_type_hint") != "access_token" {
					t.Errorf("form = %v", r.PostForm)
				}
				authz := r.Header.Get("Authorization")
				if method == AuthMethodClientSecretPost {
					if authz != "" {
						t.Errorf("Authorization header with client_secret_post")
					}
					if r.PostForm.Get("client_id") != id || r.PostForm.Get("client_secret") != secret {
						t.Errorf("post credentials = %q/%q", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"))
					}
				} else {
					want := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
					if authz != want {
						t.Errorf("Authorization = %q, want %q", authz, want)
					}
					if r.PostForm.Has("client_secret") {
						t.Errorf("client_secret in the form with client_secret_basic")
					}
				}
				return false // let the fake server authenticate and answer
			})
			v, _ := newTestVerifier(t, srv, func(c *Config) { c.AuthMethod = method })
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !checked.Load() {
				t.Fatal("request not inspected")
			}
		})
	}
}

// TestCoalescing: many concurrent requests for one new token make one
// introspection call, and the first caller going away does not fail the
// others.
func TestCoalescing(t *testing.T) {
	const n = 200
	srv := introspecttest.New(t)
	tok := srv.Issue("u", []string{"op:add"}, testResource, time.Hour)
	release := holdAnswers(srv)
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.Timeout = 10 * time.Second })
	var waiting sync.WaitGroup
	waiting.Add(n)
	v.beforeWait = waiting.Done

	firstCtx, cancelFirst := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() {
		_, err := v.Verify(firstCtx, tok)
		firstErr <- err
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n-1)
	for range n - 1 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				errs <- err
			}
		})
	}
	waiting.Wait() // all n callers have joined the shared call
	cancelFirst()
	err := <-firstErr
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: err = %v, want UnavailableError wrapping context.Canceled", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("waiter failed: %v", err)
	}
	if c := srv.Calls(); c != 1 {
		t.Errorf("server calls = %d, want 1", c)
	}
}

func TestNewValidation(t *testing.T) {
	ok := Config{Endpoint: "https://as.example.com/introspect", ClientID: "c", ClientSecret: "s", Audiences: []string{testResource}}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr []string // substrings; nil means New succeeds
	}{
		{name: "ok"},
		{name: "issuer only", mod: func(c *Config) { c.Endpoint = ""; c.Issuer = "https://as.example.com" }},
		{name: "http loopback v4", mod: func(c *Config) { c.Endpoint = "http://127.0.0.2:9000/introspect" }},
		{name: "http loopback v6", mod: func(c *Config) { c.Endpoint = "http://[::1]:9000/introspect" }},
		{name: "http localhost", mod: func(c *Config) { c.Endpoint = "http://LocalHost:9000/introspect" }},
		{name: "http remote endpoint", mod: func(c *Config) { c.Endpoint = "http://as.example.com/introspect" }, wantErr: []string{"Endpoint", "https"}},
		{name: "http remote issuer", mod: func(c *Config) { c.Issuer = "http://10.0.0.1" }, wantErr: []string{"Issuer"}},
		{name: "http localhost lookalike", mod: func(c *Config) { c.Endpoint = "http://localhost.evil.com/i" }, wantErr: []string{"Endpoint"}},
		{name: "ftp", mod: func(c *Config) { c.Endpoint = "ftp://as.example.com/i" }, wantErr: []string{"scheme"}},
		{name: "relative", mod: func(c *Config) { c.Endpoint = "/introspect" }, wantErr: []string{"absolute"}},
		{name: "issuer query", mod: func(c *Config) { c.Issuer = "https://as.example.com?x=1" }, wantErr: []string{"query"}},
		{name: "neither", mod: func(c *Config) { c.Endpoint = "" }, wantErr: []string{"Endpoint or Issuer"}},
		{name: "bad auth method", mod: func(c *Config) { c.AuthMethod = "private_key_jwt" }, wantErr: []string{"AuthMethod"}},
		{name: "negative durations", mod: func(c *Config) { c.Timeout = -1; c.ClockSkew = -1 }, wantErr: []string{"Timeout", "ClockSkew"}},
		{name: "everything wrong at once", mod: func(c *Config) {
			*c = Config{Validation: ValidationIntrospection, AuthMethod: "x", Audiences: []string{""}, CacheMaxBytes: -1}
		}, wantErr: []string{"Endpoint or Issuer", "ClientID", "ClientSecret", "AuthMethod", "Audiences[0]", "CacheMaxBytes"}},
		{name: "no credentials: auto means jwt", mod: func(c *Config) { c.ClientID, c.ClientSecret, c.Issuer = "", "", "https://as.example.com" }},
		{name: "no credentials, no issuer", mod: func(c *Config) { c.ClientID, c.ClientSecret, c.Issuer = "", "", "" }, wantErr: []string{"Issuer is required to verify JWTs"}},
		{name: "client id without secret", mod: func(c *Config) { c.ClientSecret = "" }, wantErr: []string{"ClientSecret is required with ClientID"}},
		{name: "introspection without credentials", mod: func(c *Config) { c.Validation = ValidationIntrospection; c.ClientID, c.ClientSecret = "", "" }, wantErr: []string{"required for introspection"}},
		{name: "JWTIntrospect without credentials", mod: func(c *Config) { c.JWTIntrospect = true; c.ClientID, c.ClientSecret = "", "" }, wantErr: []string{"JWTIntrospect needs"}},
		{name: "JWTIntrospect in introspection mode", mod: func(c *Config) { c.JWTIntrospect = true; c.Validation = ValidationIntrospection }, wantErr: []string{"JWTIntrospect applies"}},
		{name: "unknown validation", mod: func(c *Config) { c.Validation = "both" }, wantErr: []string{"Validation \"both\""}},
		{name: "HMAC algorithm", mod: func(c *Config) { c.JWTAlgorithms = []string{"RS256", "HS256"} }, wantErr: []string{"JWTAlgorithms", "HS256"}},
		{name: "http JWKS URL", mod: func(c *Config) { c.JWKSURL = "http://idp.example.com/jwks" }, wantErr: []string{"JWKSURL", "https"}},
		{name: "negative JWKSMinRefresh", mod: func(c *Config) { c.JWKSMinRefresh = -1 }, wantErr: []string{"JWKSMinRefresh"}},
		{name: "no audiences", mod: func(c *Config) { c.Audiences = nil }, wantErr: []string{"audience"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			v, err := New(t.Context(), cfg)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				v.Close()
				return
			}
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestCallerHTTPClientRedirectsNotFollowed(t *testing.T) {
	var followed atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	defer other.Close()
	srv := introspecttest.New(t)
	srv.SetFailure(respond(307, map[string]string{"Location": other.URL}, ""))
	caller := &http.Client{} // follows redirects by default
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.HTTPClient = caller })
	var ue *UnavailableError
	if _, err := v.Verify(t.Context(), "tok"); !errors.As(err, &ue) {
		t.Fatalf("err = %v", err)
	}
	if followed.Load() {
		t.Error("redirect followed")
	}
	if caller.CheckRedirect != nil {
		t.Error("caller's client was modified")
	}
}

func TestVerifyAfterClose(t *testing.T) {
	srv := introspecttest.New(t)
	v, _ := newTestVerifier(t, srv)
	tok := srv.Issue("u", nil, testResource, time.Hour)
	v.Close()
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify after Close: %v", err)
	}
}

// TestAnswerCachedWhenVerifyReturns: once a miss has returned, the answer is
// in the cache. ristretto applies writes asynchronously; without waiting for
// it, a request arriving right after the coalesced call ended would
// introspect the same token a second time.
func TestAnswerCachedWhenVerifyReturns(t *testing.T) {
	srv := introspecttest.New(t)
	v, _ := newTestVerifier(t, srv)
	const n = 200
	for i := range n {
		tok := srv.Issue(fmt.Sprint("u", i), []string{"op:add"}, testResource, time.Hour)
		for range 2 {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	if calls := srv.Calls(); calls != n {
		t.Errorf("introspection calls = %d for %d tokens each verified twice in a row, want %d", calls, n, n)
	}
}
