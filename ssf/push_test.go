package ssf_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

// pushFixture serves a Receiver with httptest, as the gateway would route
// POST /ssf/events.
func pushFixture(t *testing.T, mod func(*ssf.Config)) (*fixture, string) {
	t.Helper()
	f := newFixture(t, mod)
	srv := httptest.NewServer(f.rcv)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/ssf/events"
}

type pushAnswer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, req *http.Request) pushAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return pushAnswer{resp.StatusCode, resp.Header, body}
}

func push(t *testing.T, endpoint, set, authorization string) pushAnswer {
	t.Helper()
	resp, err := ssftest.Push(context.Background(), nil, endpoint, set, authorization)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return pushAnswer{resp.StatusCode, resp.Header, body}
}

// wantErrorBody checks an RFC 8935 §2.3 error response.
func wantErrorBody(t *testing.T, a pushAnswer, status int, code ssf.Code) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d (body %s)", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var e struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}
	dec := json.NewDecoder(strings.NewReader(string(a.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	if e.Err != string(code) || e.Description == "" {
		t.Fatalf("error body %+v, want err %q with a description", e, code)
	}
}

func TestPushAccepted(t *testing.T) {
	obs := &pushObserver{}
	f, endpoint := pushFixture(t, func(c *ssf.Config) { c.Observer = obs })
	a := push(t, endpoint, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.IssSub("https://idp.example.com/", "u1"))), "")
	if a.status != http.StatusAccepted || len(a.body) != 0 {
		t.Fatalf("status %d body %q, want 202 and no body (RFC 8935 §2.2)", a.status, a.body)
	}
	calls := f.rec.calls()
	if len(calls) != 1 || calls[0].Subject != (ssf.Subject{Format: ssf.FormatIssSub, Iss: "https://idp.example.com/", Sub: "u1"}) {
		t.Fatalf("revocations %+v", calls)
	}
	// A content type with parameters and other case is still the media type.
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(f.tr.MustSign(t, f.claims(ssf.EventAccountDisabled, ssftest.Email("x@example.com")))))
	req.Header.Set("Content-Type", "Application/SecEvent+JWT; charset=utf-8")
	if a := do(t, req); a.status != http.StatusAccepted {
		t.Fatalf("status %d body %s", a.status, a.body)
	}
	if got := obs.all(); !slices.Equal(got, []ssf.Reason{"", ""}) {
		t.Fatalf("observed %q, want two accepted pushes", got)
	}
}

// TestPushRefusals: each refusal is answered with the right status and the
// RFC 8935 error object, never echoes the SET, and revokes nothing.
func TestPushRefusals(t *testing.T) {
	const secret = "Bearer s3cret-push-credential"
	tests := []struct {
		name   string
		mod    func(*ssf.Config)
		req    func(t *testing.T, f *fixture, endpoint string) *http.Request
		status int
		code   ssf.Code
		check  func(t *testing.T, a pushAnswer)
	}{
		{name: "bad signature", status: 400, code: ssf.CodeAuthenticationFailed,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				return setRequest(ep, flipSignature(t, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))))
			}},
		{name: "another issuer", status: 400, code: ssf.CodeInvalidIssuer,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["iss"] = "https://elsewhere.example"
				return setRequest(ep, f.tr.MustSign(t, c))
			}},
		{name: "another audience", status: 400, code: ssf.CodeInvalidAudience,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["aud"] = "https://elsewhere.example"
				return setRequest(ep, f.tr.MustSign(t, c))
			}},
		{name: "unknown key", status: 400, code: ssf.CodeInvalidKey,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				return setRequest(ep, sign(t, key("rsa2"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
			}},
		{name: "alg none", status: 400, code: ssf.CodeInvalidKey,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				return setRequest(ep, compact(t, map[string]any{"alg": "none", "typ": "secevent+jwt"}, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), nil))
			}},
		{name: "old iat", status: 400, code: ssf.CodeInvalidRequest,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				c := f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))
				c["iat"] = f.clk.Now().Add(-ssf.DefaultMaxAge * 2).Unix()
				return setRequest(ep, f.tr.MustSign(t, c))
			}},
		{name: "empty body", status: 400, code: ssf.CodeInvalidRequest,
			req: func(_ *testing.T, _ *fixture, ep string) *http.Request { return setRequest(ep, "") }},
		{name: "wrong content type", status: http.StatusUnsupportedMediaType, code: ssf.CodeInvalidRequest,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				r := setRequest(ep, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
				r.Header.Set("Content-Type", "application/jwt")
				return r
			}},
		{name: "no content type", status: http.StatusUnsupportedMediaType, code: ssf.CodeInvalidRequest,
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				r := setRequest(ep, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
				r.Header.Del("Content-Type")
				return r
			}},
		{name: "GET", status: http.StatusMethodNotAllowed, code: ssf.CodeInvalidRequest,
			req: func(_ *testing.T, _ *fixture, ep string) *http.Request {
				r, _ := http.NewRequest(http.MethodGet, ep, nil)
				return r
			},
			check: func(t *testing.T, a pushAnswer) {
				if a.header.Get("Allow") != http.MethodPost {
					t.Errorf("Allow %q", a.header.Get("Allow"))
				}
			}},
		{name: "too large", status: http.StatusRequestEntityTooLarge, code: ssf.CodeInvalidRequest,
			mod: func(c *ssf.Config) { c.MaxBodyBytes = 2048 },
			req: func(_ *testing.T, _ *fixture, ep string) *http.Request {
				return setRequest(ep, strings.Repeat("a", 4096))
			}},
		{name: "authorization missing", status: http.StatusUnauthorized, code: ssf.CodeAuthenticationFailed,
			mod: func(c *ssf.Config) { c.AuthorizationHeader = secret },
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				return setRequest(ep, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
			},
			check: func(t *testing.T, a pushAnswer) {
				if a.header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
				}
			}},
		{name: "authorization wrong", status: http.StatusUnauthorized, code: ssf.CodeAuthenticationFailed,
			mod: func(c *ssf.Config) { c.AuthorizationHeader = secret },
			req: func(t *testing.T, f *fixture, ep string) *http.Request {
				r := setRequest(ep, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
				r.Header.Set("Authorization", secret+"x")
				return r
			},
			check: func(t *testing.T, a pushAnswer) {
				if strings.Contains(string(a.body), "s3cret") {
					t.Error("the credential is echoed")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &pushObserver{}
			f, endpoint := pushFixture(t, func(c *ssf.Config) {
				if tt.mod != nil {
					tt.mod(c)
				}
				c.Observer = obs
			})
			req := tt.req(t, f, endpoint)
			var sent string
			if req.GetBody != nil {
				b, _ := req.GetBody()
				raw, _ := io.ReadAll(b)
				sent = string(raw)
			}
			a := do(t, req)
			wantErrorBody(t, a, tt.status, tt.code)
			if len(sent) > 10 && strings.Contains(string(a.body), sent[len(sent)-10:]) {
				t.Fatalf("the error body echoes the request: %s", a.body)
			}
			if n := len(f.rec.calls()); n != 0 {
				t.Fatalf("OnRevocation called %d times", n)
			}
			if tt.check != nil {
				tt.check(t, a)
			}
			if got := obs.all(); len(got) != 1 || got[0] == "" || !slices.Contains(ssf.AllReasons(), got[0]) {
				t.Fatalf("observed %q, want one reason of AllReasons", got)
			}
		})
	}
}

// pushObserver records the outcome of every push.
type pushObserver struct {
	mu      sync.Mutex
	reasons []ssf.Reason
}

func (o *pushObserver) Push(r ssf.Reason) {
	o.mu.Lock()
	o.reasons = append(o.reasons, r)
	o.mu.Unlock()
}

func (o *pushObserver) all() []ssf.Reason {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.reasons)
}

func TestPushAuthorizationAccepted(t *testing.T) {
	f, endpoint := pushFixture(t, func(c *ssf.Config) { c.AuthorizationHeader = "Bearer s3cret" })
	a := push(t, endpoint, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))), "Bearer s3cret")
	if a.status != http.StatusAccepted || len(f.rec.calls()) != 1 {
		t.Fatalf("status %d, %d revocations", a.status, len(f.rec.calls()))
	}
}

func TestPushReplayAndRetry(t *testing.T) {
	f, endpoint := pushFixture(t, nil)
	set := f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))

	// OnRevocation fails: 503 with Retry-After, and the retry goes through.
	f.rec.setFail(errors.New("store unavailable"))
	a := push(t, endpoint, set, "")
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", a.status)
	}
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", a.header.Get("Retry-After"))
	}
	f.rec.setFail(nil)
	if a := push(t, endpoint, set, ""); a.status != http.StatusAccepted {
		t.Fatalf("retry: status %d body %s", a.status, a.body)
	}
	// The same SET once more is a replay.
	wantErrorBody(t, push(t, endpoint, set, ""), http.StatusBadRequest, ssf.CodeInvalidRequest)
	if n := len(f.rec.calls()); n != 2 {
		t.Fatalf("OnRevocation called %d times, want 2", n)
	}
}

func TestPushKeysUnavailable(t *testing.T) {
	f, endpoint := pushFixture(t, nil)
	f.tr.Fail(http.StatusInternalServerError)
	a := push(t, endpoint, f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))), "")
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != strconv.Itoa(int(ssf.DefaultRefetchInterval.Seconds())) {
		t.Fatalf("status %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if len(f.rec.calls()) != 0 {
		t.Fatal("revoked without keys")
	}
}

func setRequest(endpoint, set string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(set))
	r.Header.Set("Content-Type", ssf.ContentType)
	return r
}
