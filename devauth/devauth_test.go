package devauth

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
)

func TestNewValidation(t *testing.T) {
	good := Config{Issuer: "http://localhost:8080/dev-auth", Resource: "http://localhost:8080/mcp", Scopes: testScopes()}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none means success
	}{
		{"defaults", func(*Config) {}, nil},
		{"nothing", func(c *Config) { *c = Config{} }, []string{"Issuer is required", "Resource is required"}},
		{"trailing slash", func(c *Config) { c.Issuer += "/" }, []string{"plain path"}},
		{"no path", func(c *Config) { c.Issuer = "http://localhost:8080" }, []string{"plain path"}},
		{"relative issuer", func(c *Config) { c.Issuer = "/dev-auth" }, []string{"absolute"}},
		{"issuer query", func(c *Config) { c.Issuer += "?x=1" }, []string{"query"}},
		{"resource fragment", func(c *Config) { c.Resource += "#f" }, []string{"Resource"}},
		{"bad scope", func(c *Config) { c.Scopes = []string{"ok", `bad"scope`} }, []string{"invalid scope"}},
		{"no scopes offered", func(c *Config) { c.Scopes = []string{} }, nil},
		{"negative", func(c *Config) { c.AccessTokenTTL = -1; c.MaxTokens = -1 }, []string{"AccessTokenTTL", "MaxTokens"}},
		{"bad example", func(c *Config) { c.ExampleArguments = "{" }, []string{"ExampleArguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			s, err := New(cfg)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if id, secret := s.IntrospectionCredentials(); id == "" || len(secret) < 40 {
					t.Errorf("generated credentials %q %q too weak", id, secret)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestPathsAndMetadata(t *testing.T) {
	h := newHarness(t, nil)
	want := []string{"/dev-auth", "/dev-auth/", "/.well-known/oauth-authorization-server/dev-auth", "/.well-known/openid-configuration/dev-auth",
		"/dev-auth/authorize", "/dev-auth/consent", "/dev-auth/token", "/dev-auth/register", "/dev-auth/revoke", "/dev-auth/introspect",
		"/dev-auth/.well-known/oauth-authorization-server", "/dev-auth/.well-known/openid-configuration"}
	if got := h.srv.Paths(); !slices.Equal(got, want) {
		t.Errorf("Paths() = %v, want %v", got, want)
	}
	base := h.ts.URL
	for _, p := range []string{
		"/.well-known/oauth-authorization-server/dev-auth",
		"/.well-known/openid-configuration/dev-auth",
		"/dev-auth/.well-known/openid-configuration",
		"/dev-auth/.well-known/oauth-authorization-server",
	} {
		t.Run(p, func(t *testing.T) {
			resp, body := h.get(base + p)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("CORS header %q", got)
			}
			m := decode(t, body)
			checks := map[string]any{
				"issuer":                 h.issuer,
				"authorization_endpoint": h.issuer + "/authorize",
				"token_endpoint":         h.issuer + "/token",
				"registration_endpoint":  h.issuer + "/register",
				"introspection_endpoint": h.issuer + "/introspect",
				"revocation_endpoint":    h.issuer + "/revoke",
				"authorization_response_iss_parameter_supported": true,
				"client_id_metadata_document_supported":          true,
			}
			for k, v := range checks {
				if m[k] != v {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			lists := map[string]string{
				"scopes_supported":                              strings.Join(testScopes(), " "),
				"response_types_supported":                      "code",
				"grant_types_supported":                         "authorization_code refresh_token",
				"code_challenge_methods_supported":              "S256",
				"token_endpoint_auth_methods_supported":         "none",
				"introspection_endpoint_auth_methods_supported": "client_secret_basic client_secret_post",
			}
			for k, v := range lists {
				var got []string
				for _, x := range m[k].([]any) {
					got = append(got, x.(string))
				}
				if strings.Join(got, " ") != v {
					t.Errorf("%s = %v, want %s", k, got, v)
				}
			}
		})
	}
	// CORS preflight on the token endpoint.
	req, _ := http.NewRequest(http.MethodOptions, h.url("/token"), nil)
	req.Header.Set("Origin", "http://localhost:6274")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, _ := h.do(req)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The bare issuer path redirects to the token page; unknown paths 404.
	if resp, _ := h.get(h.url("")); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dev-auth/" {
		t.Errorf("GET issuer: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := h.get(h.url("/nope")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	if resp, _ := h.get(h.url("/token")); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /token: %d", resp.StatusCode)
	}
}

func TestRegister(t *testing.T) {
	long := "https://app.example/" + strings.Repeat("a", 2100)
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("http://127.0.0.1/cb%d", i)
	}
	tests := []struct {
		name    string
		body    map[string]any
		wantErr string // "" means success
	}{
		{"loopback ip", map[string]any{"redirect_uris": []string{"http://127.0.0.1:33418/callback"}, "token_endpoint_auth_method": "none"}, ""},
		{"loopback v6", map[string]any{"redirect_uris": []string{"http://[::1]:8080/cb"}}, ""},
		{"localhost", map[string]any{"redirect_uris": []string{"http://localhost:6274/oauth/callback"}}, ""},
		{"https", map[string]any{"redirect_uris": []string{"https://claude.ai/api/mcp/auth_callback"}, "client_name": "Claude"}, ""},
		{"private-use scheme", map[string]any{"redirect_uris": []string{"com.example.app:/oauth2redirect"}}, ""},
		{"grant types", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"authorization_code"}}, ""},
		{"no redirect uris", map[string]any{"client_name": "x"}, "invalid_redirect_uri"},
		{"http non-loopback", map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://a.example/cb#frag"}}, "invalid_redirect_uri"},
		{"relative", map[string]any{"redirect_uris": []string{"/cb"}}, "invalid_redirect_uri"},
		{"javascript", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{"dotless custom scheme", map[string]any{"redirect_uris": []string{"myapp://cb"}}, "invalid_redirect_uri"},
		{"userinfo", map[string]any{"redirect_uris": []string{"https://u:p@a.example/cb"}}, "invalid_redirect_uri"},
		{"space", map[string]any{"redirect_uris": []string{"https://a.example/c b"}}, "invalid_redirect_uri"},
		{"too long", map[string]any{"redirect_uris": []string{long}}, "invalid_redirect_uri"},
		{"too many", map[string]any{"redirect_uris": many}, "invalid_redirect_uri"},
		{"confidential", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"},
		{"private_key_jwt", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		{"client credentials grant", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"client_credentials"}}, "invalid_client_metadata"},
		{"implicit", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "response_types": []string{"token"}}, "invalid_client_metadata"},
		{"long name", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "client_name": strings.Repeat("n", 201)}, "invalid_client_metadata"},
		{"control chars in name", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "client_name": "a\x00b"}, "invalid_client_metadata"},
		{"wrong type", map[string]any{"redirect_uris": "https://a.example/cb"}, "invalid_client_metadata"},
	}
	h := newHarness(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, m := h.postJSON("/register", tt.body)
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("registration response lacks CORS header")
			}
			if tt.wantErr == "" {
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("status %d: %v", resp.StatusCode, m)
				}
				if id, _ := m["client_id"].(string); len(id) < 20 {
					t.Errorf("client_id %q", id)
				}
				if m["token_endpoint_auth_method"] != "none" || m["client_secret"] != nil {
					t.Errorf("not a public client: %v", m)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest || m["error"] != tt.wantErr {
				t.Errorf("got %d %v, want 400 %s", resp.StatusCode, m, tt.wantErr)
			}
		})
	}

	t.Run("content type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.url("/register"), strings.NewReader(`{"redirect_uris":["https://a.example/cb"]}`))
		req.Header.Set("Content-Type", "text/plain")
		resp, body := h.do(req)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_client_metadata") {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		big := `{"client_name":"` + strings.Repeat("x", 70<<10) + `","redirect_uris":["https://a.example/cb"]}`
		req, _ := http.NewRequest(http.MethodPost, h.url("/register"), strings.NewReader(big))
		req.Header.Set("Content-Type", "application/json")
		resp, _ := h.do(req)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		resp, m := h.postJSON("/register", map[string]any{"redirect_uris": []string{"http://localhost:1/cb"}})
		if resp.StatusCode != http.StatusCreated {
			t.Fatal(m)
		}
		if fmt.Sprint(m["grant_types"]) != "[authorization_code refresh_token]" || fmt.Sprint(m["response_types"]) != "[code]" {
			t.Errorf("defaults: %v", m)
		}
	})
}

func TestRegisterRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.RegistrationRate = rate.Every(time.Hour)
		c.RegistrationBurst = 2
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-IP") }
	})
	reg := func(ip string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, h.url("/register"), strings.NewReader(`{"redirect_uris":["https://a.example/cb"]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test-IP", ip)
		return h.do(req)
	}
	for i := range 2 {
		if resp, _ := reg("192.0.2.1"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("registration %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := reg("192.0.2.1")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "temporarily_unavailable") || resp.Header.Get("Retry-After") != "3600" {
		t.Errorf("third registration: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := reg("192.0.2.2"); resp.StatusCode != http.StatusCreated {
		t.Errorf("another address: %d", resp.StatusCode)
	}
	// IPv6 addresses in the same /64 share a limiter.
	reg("2001:db8::1")
	reg("2001:db8::2")
	if resp, _ := reg("2001:db8::ffff"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("same /64: %d, want 429", resp.StatusCode)
	}
	h.clock.Advance(time.Hour)
	if resp, _ := reg("192.0.2.1"); resp.StatusCode != http.StatusCreated {
		t.Errorf("after an hour: %d", resp.StatusCode)
	}
}

func TestBoundedness(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxClients, c.MaxCodes, c.MaxTokens = 5, 3, 10 })
	var ids []string
	for range 20 {
		ids = append(ids, h.register("https://a.example/cb"))
	}
	if n := h.srv.clients.Len(); n != 5 {
		t.Errorf("clients = %d, want 5", n)
	}
	// The first client was evicted: its authorization request is refused on a page.
	resp, _ := h.get(authzRequest{clientID: ids[0], redirectURI: "https://a.example/cb", verifier: oauth2.GenerateVerifier()}.url(h))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("evicted client: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Pending consents are bounded by MaxCodes.
	last := ids[len(ids)-1]
	for range 10 {
		h.openConsent(authzRequest{clientID: last, redirectURI: "https://a.example/cb", verifier: oauth2.GenerateVerifier()})
	}
	if n := h.srv.pending.Len(); n != 3 {
		t.Errorf("pending = %d, want 3", n)
	}
	// Codes are bounded by MaxCodes.
	for range 6 {
		h.authorize(authzRequest{clientID: last, redirectURI: "https://a.example/cb", verifier: oauth2.GenerateVerifier()}, "alice", nil)
	}
	if n := h.srv.codes.Len(); n != 3 {
		t.Errorf("codes = %d, want 3", n)
	}
	// Tokens are bounded by MaxTokens; the oldest go first.
	var toks []string
	for range 30 {
		tok, err := h.srv.MintToken("alice", []string{scopeAdd})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	if n := h.srv.tokens.Len(); n != 10 {
		t.Errorf("tokens = %d, want 10", n)
	}
	if h.active(toks[0]) || !h.active(toks[29]) {
		t.Error("want the oldest token evicted and the newest active")
	}
}

func TestAuthorizeErrors(t *testing.T) {
	h := newHarness(t, nil)
	const redirect = "http://127.0.0.1:4000/cb"
	clientID := h.register(redirect, "https://app.example/cb")
	verifier := oauth2.GenerateVerifier()
	base := authzRequest{clientID: clientID, redirectURI: redirect, verifier: verifier, state: "xyz"}

	tests := []struct {
		name      string
		modify    func(q url.Values)
		wantPage  int    // status of an error page (no redirect)
		wantError string // error in the redirect
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nope") }, http.StatusBadRequest, ""},
		{"missing client", func(q url.Values) { q.Del("client_id") }, http.StatusBadRequest, ""},
		{"mismatched redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, http.StatusBadRequest, ""},
		{"redirect path differs", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:4000/other") }, http.StatusBadRequest, ""},
		{"no redirect, two registered", func(q url.Values) { q.Del("redirect_uri") }, http.StatusBadRequest, ""},
		{"repeated client_id", func(q url.Values) { q.Add("client_id", clientID) }, http.StatusBadRequest, ""},
		{"missing PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, 0, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge", verifier); q.Set("code_challenge_method", "plain") }, 0, "invalid_request"},
		{"no PKCE method", func(q url.Values) { q.Del("code_challenge_method") }, 0, "invalid_request"},
		{"malformed challenge", func(q url.Values) { q.Set("code_challenge", "short") }, 0, "invalid_request"},
		{"foreign resource", func(q url.Values) { q.Set("resource", "https://other.example/mcp") }, 0, "invalid_target"},
		{"one foreign resource of two", func(q url.Values) { q.Add("resource", "https://other.example/mcp") }, 0, "invalid_target"},
		{"implicit", func(q url.Values) { q.Set("response_type", "token") }, 0, "unsupported_response_type"},
		{"missing response_type", func(q url.Values) { q.Del("response_type") }, 0, "invalid_request"},
		{"bad scope syntax", func(q url.Values) { q.Set("scope", `op:add "x`) }, 0, "invalid_scope"},
		{"repeated state", func(q url.Values) { q.Add("state", "2") }, 0, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse(base.url(h))
			q := u.Query()
			tt.modify(q)
			u.RawQuery = q.Encode()
			resp, body := h.get(u.String())
			loc := resp.Header.Get("Location")
			if tt.wantPage != 0 {
				if resp.StatusCode != tt.wantPage || loc != "" {
					t.Fatalf("got %d Location=%q, want an error page %d", resp.StatusCode, loc, tt.wantPage)
				}
				if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "do not use in production") {
					t.Errorf("not an HTML error page: %s", body)
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302: %s", resp.StatusCode, body)
			}
			lu, _ := url.Parse(loc)
			if !strings.HasPrefix(loc, redirect+"?") {
				t.Errorf("redirected to %s", loc)
			}
			rq := lu.Query()
			if rq.Get("error") != tt.wantError || rq.Get("state") != "xyz" || rq.Get("iss") != h.issuer || rq.Get("code") != "" {
				t.Errorf("redirect query %v, want error=%s with state and iss", rq, tt.wantError)
			}
		})
	}

	t.Run("loopback port may differ", func(t *testing.T) {
		a := base
		a.redirectURI = "http://127.0.0.1:5555/cb"
		h.openConsent(a)
	})
	t.Run("redirect omitted with one registered", func(t *testing.T) {
		one := h.register("https://one.example/cb")
		u, _ := url.Parse(authzRequest{clientID: one, verifier: verifier}.url(h))
		q := u.Query()
		q.Del("redirect_uri")
		u.RawQuery = q.Encode()
		resp, body := h.get(u.String())
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "one.example") {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
	t.Run("scopes", func(t *testing.T) {
		cases := map[string][]string{
			"":                      testScopes(),
			"op:add op:div unknown": {scopeAdd, scopeDivide},
			"unknown":               testScopes(),
			"op":                    testScopes(),
			"op:sub":                {scopeSubtract},
		}
		for scope, want := range cases {
			a := base
			a.scope = scope
			f := h.openConsent(a)
			if !slices.Equal(f.scopes, want) || !slices.Equal(f.checked, want) {
				t.Errorf("scope %q: offered %v checked %v, want %v", scope, f.scopes, f.checked, want)
			}
		}
	})
	t.Run("redirect keeps its query", func(t *testing.T) {
		withQuery := "https://q.example/cb?tenant=7"
		id := h.register(withQuery)
		f := h.openConsent(authzRequest{clientID: id, redirectURI: withQuery, verifier: verifier, state: "st"})
		resp, q := h.answer(f, "approve", "bob", f.checked)
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "https://q.example/cb?") || q.Get("tenant") != "7" || q.Get("code") == "" {
			t.Errorf("Location %s", loc)
		}
	})
}

func TestConsent(t *testing.T) {
	h := newHarness(t, nil)
	const redirect = "http://127.0.0.1:4000/cb"
	clientID := h.register(redirect)
	verifier := oauth2.GenerateVerifier()
	a := authzRequest{clientID: clientID, redirectURI: redirect, verifier: verifier, state: "st8"}

	t.Run("page", func(t *testing.T) {
		resp, body := h.get(a.url(h))
		hd := resp.Header
		if hd.Get("X-Frame-Options") != "DENY" {
			t.Error("no X-Frame-Options: DENY")
		}
		csp := hd.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' http://127.0.0.1:4000"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		for _, want := range []string{"Test Client", "127.0.0.1:4000", "Add numbers", "Divide numbers", "Development authorization server", `name="viewport"`, "Approve", "Deny"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if hd.Get("Cache-Control") != "no-store" {
			t.Error("consent page is cacheable")
		}
	})
	t.Run("approve subset", func(t *testing.T) {
		f := h.openConsent(a)
		_, q := h.answer(f, "approve", "alice", []string{scopeAdd, scopeSubtract, "op:evil"})
		if q.Get("state") != "st8" || q.Get("iss") != h.issuer {
			t.Errorf("redirect %v", q)
		}
		status, tok := h.exchange(clientID, redirect, q.Get("code"), verifier)
		if status != http.StatusOK || tok["scope"] != "op:add op:sub" {
			t.Fatalf("exchange: %d %v", status, tok)
		}
		if in := h.introspect(tok["access_token"].(string)); in["scope"] != "op:add op:sub" || in["username"] != "alice" {
			t.Errorf("introspection %v", in)
		}
	})
	t.Run("deny", func(t *testing.T) {
		f := h.openConsent(a)
		resp, q := h.answer(f, "deny", "", nil)
		if resp.StatusCode != http.StatusSeeOther || q.Get("error") != "access_denied" || q.Get("state") != "st8" || q.Get("iss") != h.issuer || q.Get("code") != "" {
			t.Errorf("deny: %d %v", resp.StatusCode, q)
		}
		// The request is answered: answering again fails.
		resp, _ = h.answer(f, "approve", "alice", f.checked)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("second answer: %d", resp.StatusCode)
		}
	})
	t.Run("nothing ticked", func(t *testing.T) {
		f := h.openConsent(a)
		_, q := h.answer(f, "approve", "alice", nil)
		if q.Get("error") != "access_denied" {
			t.Errorf("got %v", q)
		}
	})
	t.Run("bad csrf", func(t *testing.T) {
		f := h.openConsent(a)
		f.csrf = "forged"
		resp, q := h.answer(f, "approve", "alice", f.checked)
		if resp.StatusCode != http.StatusForbidden || q != nil {
			t.Errorf("got %d %v", resp.StatusCode, q)
		}
		f.csrf = ""
		if resp, _ := h.answer(f, "approve", "alice", f.checked); resp.StatusCode != http.StatusForbidden {
			t.Errorf("empty csrf: %d", resp.StatusCode)
		}
	})
	t.Run("bad user then good", func(t *testing.T) {
		f := h.openConsent(a)
		for _, bad := range []string{"", "a b", strings.Repeat("x", 65), "<script>"} {
			resp, q := h.answer(f, "approve", bad, []string{scopeAdd})
			if resp.StatusCode != http.StatusBadRequest || q != nil {
				t.Errorf("user %q: %d %v", bad, resp.StatusCode, q)
			}
		}
		_, q := h.answer(f, "approve", "carol@example.com", []string{scopeAdd})
		if q.Get("code") == "" {
			t.Errorf("good user: %v", q)
		}
	})
	t.Run("expired consent", func(t *testing.T) {
		f := h.openConsent(a)
		h.clock.Advance(11 * time.Minute)
		if resp, _ := h.answer(f, "approve", "alice", f.checked); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
	t.Run("login_hint prefills", func(t *testing.T) {
		b := a
		b.extra = url.Values{"login_hint": {"dora"}}
		_, body := h.get(b.url(h))
		if !strings.Contains(body, `value="dora"`) {
			t.Error("login_hint not used")
		}
	})
	t.Run("private-use scheme in CSP", func(t *testing.T) {
		id := h.register("com.example.app:/oauth2redirect")
		resp, _ := h.get(authzRequest{clientID: id, redirectURI: "com.example.app:/oauth2redirect", verifier: verifier}.url(h))
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self' com.example.app:") {
			t.Errorf("CSP %s", resp.Header.Get("Content-Security-Policy"))
		}
	})
}

func TestTokenExchange(t *testing.T) {
	const redirect = "http://127.0.0.1:4000/cb"
	type setup struct {
		h        *harness
		clientID string
		code     string
		verifier string
	}
	newSetup := func(t *testing.T) setup {
		h := newHarness(t, nil)
		id := h.register(redirect)
		v := oauth2.GenerateVerifier()
		code := h.authorize(authzRequest{clientID: id, redirectURI: redirect, verifier: v}, "alice", nil)
		return setup{h, id, code, v}
	}
	form := func(s setup) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "client_id": {s.clientID}, "code": {s.code}, "redirect_uri": {redirect}, "code_verifier": {s.verifier}}
	}
	tests := []struct {
		name       string
		modify     func(s setup, f url.Values)
		wantStatus int
		wantError  string
	}{
		{"ok", func(setup, url.Values) {}, http.StatusOK, ""},
		{"ok with resource", func(_ setup, f url.Values) { f.Set("resource", testResource) }, http.StatusOK, ""},
		{"wrong verifier", func(_ setup, f url.Values) { f.Set("code_verifier", oauth2.GenerateVerifier()) }, http.StatusBadRequest, "invalid_grant"},
		{"missing verifier", func(_ setup, f url.Values) { f.Del("code_verifier") }, http.StatusBadRequest, "invalid_request"},
		{"unknown code", func(_ setup, f url.Values) { f.Set("code", "nope") }, http.StatusBadRequest, "invalid_grant"},
		{"missing code", func(_ setup, f url.Values) { f.Del("code") }, http.StatusBadRequest, "invalid_request"},
		{"redirect mismatch", func(_ setup, f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:4000/other") }, http.StatusBadRequest, "invalid_grant"},
		{"redirect missing", func(_ setup, f url.Values) { f.Del("redirect_uri") }, http.StatusBadRequest, "invalid_grant"},
		{"other client", func(s setup, f url.Values) { f.Set("client_id", s.h.register(redirect)) }, http.StatusBadRequest, "invalid_grant"},
		{"unknown client", func(_ setup, f url.Values) { f.Set("client_id", "nope") }, http.StatusUnauthorized, "invalid_client"},
		{"no client", func(_ setup, f url.Values) { f.Del("client_id") }, http.StatusUnauthorized, "invalid_client"},
		{"client secret", func(_ setup, f url.Values) { f.Set("client_secret", "x") }, http.StatusUnauthorized, "invalid_client"},
		{"foreign resource", func(_ setup, f url.Values) { f.Set("resource", "https://other.example/mcp") }, http.StatusBadRequest, "invalid_target"},
		{"unsupported grant", func(_ setup, f url.Values) { f.Set("grant_type", "password") }, http.StatusBadRequest, "unsupported_grant_type"},
		{"client credentials", func(_ setup, f url.Values) { f.Set("grant_type", "client_credentials") }, http.StatusBadRequest, "unsupported_grant_type"},
		{"missing grant", func(_ setup, f url.Values) { f.Del("grant_type") }, http.StatusBadRequest, "invalid_request"},
		{"repeated code", func(s setup, f url.Values) { f.Add("code", s.code) }, http.StatusBadRequest, "invalid_request"},
		{"expired code", func(s setup, _ url.Values) { s.h.clock.Advance(61 * time.Second) }, http.StatusBadRequest, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			f := form(s)
			tt.modify(s, f)
			status, m := s.h.token(f)
			if status != tt.wantStatus || (tt.wantError != "" && m["error"] != tt.wantError) {
				t.Fatalf("got %d %v, want %d %s", status, m, tt.wantStatus, tt.wantError)
			}
			if tt.wantStatus == http.StatusOK {
				if m["token_type"] != "Bearer" || m["expires_in"] != float64(600) || m["scope"] != "op:add op:sub op:mult op:div" {
					t.Errorf("response %v", m)
				}
				at, rt := m["access_token"].(string), m["refresh_token"].(string)
				if len(at) != 43 || len(rt) != 43 || at == rt {
					t.Errorf("tokens are not 256-bit base64url: %q %q", at, rt)
				}
			}
		})
	}

	t.Run("basic auth with empty secret", func(t *testing.T) {
		s := newSetup(t)
		f := form(s)
		f.Del("client_id")
		resp, body := s.h.postForm("/token", f, func(r *http.Request) { r.SetBasicAuth(s.clientID, "") })
		if resp.StatusCode != http.StatusOK {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})

	t.Run("reused code revokes its tokens", func(t *testing.T) {
		s := newSetup(t)
		status, first := s.h.token(form(s))
		if status != http.StatusOK {
			t.Fatal(first)
		}
		status, m := s.h.token(form(s))
		if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Fatalf("reuse: %d %v", status, m)
		}
		for _, k := range []string{"access_token", "refresh_token"} {
			if s.h.active(first[k].(string)) {
				t.Errorf("%s still active after code reuse", k)
			}
		}
	})

	t.Run("a failed attempt uses the code up", func(t *testing.T) {
		s := newSetup(t)
		f := form(s)
		f.Set("code_verifier", oauth2.GenerateVerifier())
		s.h.token(f)
		if status, m := s.h.token(form(s)); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("got %d %v", status, m)
		}
	})

	t.Run("no refresh token without the grant", func(t *testing.T) {
		h := newHarness(t, nil)
		resp, m := h.postJSON("/register", map[string]any{"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}})
		if resp.StatusCode != http.StatusCreated {
			t.Fatal(m)
		}
		id := m["client_id"].(string)
		v := oauth2.GenerateVerifier()
		code := h.authorize(authzRequest{clientID: id, redirectURI: redirect, verifier: v}, "alice", nil)
		status, tok := h.exchange(id, redirect, code, v)
		if status != http.StatusOK || tok["refresh_token"] != nil {
			t.Errorf("got %d %v", status, tok)
		}
		status, m = h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {"x"}})
		if status != http.StatusBadRequest || m["error"] != "unauthorized_client" {
			t.Errorf("refresh: %d %v", status, m)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	h := newHarness(t, nil)
	clientID, tok := h.grant("alice", []string{scopeAdd, scopeDivide})
	rt1 := tok["refresh_token"].(string)

	refresh := func(rt string, extra url.Values) (int, map[string]any) {
		f := url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}
		for k, v := range extra {
			f[k] = v
		}
		return h.token(f)
	}
	if in := h.introspect(rt1); in["active"] != true || in["token_type"] != "refresh_token" || in["scope"] != "op:add op:div" {
		t.Errorf("refresh token introspection %v", in)
	}
	h.clock.Advance(11 * time.Minute) // the access token expired
	if h.active(tok["access_token"].(string)) {
		t.Error("access token active after its TTL")
	}
	status, tok2 := refresh(rt1, nil)
	if status != http.StatusOK || tok2["scope"] != "op:add op:div" {
		t.Fatalf("refresh: %d %v", status, tok2)
	}
	rt2, at2 := tok2["refresh_token"].(string), tok2["access_token"].(string)
	if rt2 == rt1 || !h.active(at2) || h.active(rt1) {
		t.Fatal("rotation did not happen")
	}

	// Narrowing is allowed, widening is not.
	status, m := refresh(rt2, url.Values{"scope": {"op:add op:mult"}})
	if status != http.StatusBadRequest || m["error"] != "invalid_scope" {
		t.Errorf("widening: %d %v", status, m)
	}
	status, tok3 := refresh(rt2, url.Values{"scope": {"op:add"}})
	if status != http.StatusOK || tok3["scope"] != "op:add" {
		t.Fatalf("narrowing: %d %v", status, tok3)
	}
	at3, rt3 := tok3["access_token"].(string), tok3["refresh_token"].(string)

	// Another client cannot use the refresh token.
	other := h.register("https://b.example/cb")
	if status, m := h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {other}, "refresh_token": {rt3}}); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("other client: %d %v", status, m)
	}

	// Reusing a rotated refresh token revokes the whole grant.
	status, m = refresh(rt1, nil)
	if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", status, m)
	}
	for name, tk := range map[string]string{"at2": at2, "at3": at3, "rt3": rt3} {
		if h.active(tk) {
			t.Errorf("%s still active after refresh token reuse", name)
		}
	}
	if status, _ := refresh(rt3, nil); status != http.StatusBadRequest {
		t.Error("revoked refresh token still works")
	}

	// An expired refresh token fails.
	_, tok = h.grant("bob", nil)
	h.clock.Advance(25 * time.Hour)
	if status, m := h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {h.srv.clientsNewest()}, "refresh_token": {tok["refresh_token"].(string)}}); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("expired refresh: %d %v", status, m)
	}
}

// clientsNewest returns the most recently registered client's id (tests only).
func (s *Server) clientsNewest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := s.clients.Newest()
	return id
}

func TestRevoke(t *testing.T) {
	h := newHarness(t, nil)
	revoke := func(clientID, token, hint string) (int, string) {
		f := url.Values{"token": {token}, "client_id": {clientID}}
		if hint != "" {
			f.Set("token_type_hint", hint)
		}
		resp, body := h.postForm("/revoke", f, nil)
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Error("no CORS on /revoke")
		}
		return resp.StatusCode, body
	}

	clientID, tok := h.grant("alice", nil)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	other := h.register("https://b.example/cb")

	if status, _ := revoke(other, at, ""); status != http.StatusOK || !h.active(at) {
		t.Errorf("another client revoked the token (status %d)", status)
	}
	if status, _ := revoke(clientID, "unknown-token", ""); status != http.StatusOK {
		t.Errorf("unknown token: %d", status)
	}
	if status, _ := revoke(clientID, at, "access_token"); status != http.StatusOK || h.active(at) || !h.active(rt) {
		t.Errorf("access token revocation: %d", status)
	}
	_, tok = h.grant("bob", nil)
	clientID = h.srv.clientsNewest()
	at, rt = tok["access_token"].(string), tok["refresh_token"].(string)
	if status, _ := revoke(clientID, rt, "refresh_token"); status != http.StatusOK || h.active(rt) || h.active(at) {
		t.Errorf("refresh token revocation must revoke the grant: %d", status)
	}
	if status, body := revoke(clientID, "", ""); status != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
		t.Errorf("missing token: %d %s", status, body)
	}
	if status, _ := revoke("", "x", ""); status != http.StatusUnauthorized {
		t.Errorf("missing client_id: %d", status)
	}
	// Tokens minted on the token page can be revoked with its client_id.
	minted, _ := h.srv.MintToken("carol", []string{scopeAdd})
	if status, _ := revoke(TokenPageClientID, minted, ""); status != http.StatusOK || h.active(minted) {
		t.Errorf("minted token revocation: %d", status)
	}
}

func TestIntrospection(t *testing.T) {
	const id, secret = "intro client", "s3cr+t/=:%"
	h := newHarness(t, func(c *Config) { c.IntrospectionClientID, c.IntrospectionClientSecret = id, secret })
	clientID, tok := h.grant("alice", []string{scopeAdd, scopeMultiply})
	at := tok["access_token"].(string)
	now := h.clock.Now()

	tests := []struct {
		name       string
		setup      func(r *http.Request)
		form       url.Values
		wantStatus int
	}{
		{"no credentials", nil, url.Values{"token": {at}}, http.StatusUnauthorized},
		{"wrong secret", func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), "nope") }, url.Values{"token": {at}}, http.StatusUnauthorized},
		{"raw basic without form-encoding", func(r *http.Request) { r.SetBasicAuth(id, secret) }, url.Values{"token": {at}}, http.StatusUnauthorized},
		{"client id only", nil, url.Values{"token": {at}, "client_id": {id}}, http.StatusUnauthorized},
		{"two methods", func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }, url.Values{"token": {at}, "client_id": {id}, "client_secret": {secret}}, http.StatusUnauthorized},
		{"basic", func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }, url.Values{"token": {at}}, http.StatusOK},
		{"post", nil, url.Values{"token": {at}, "client_id": {id}, "client_secret": {secret}}, http.StatusOK},
		{"missing token", func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }, url.Values{}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.postForm("/introspect", tt.form, tt.setup)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Error("introspection must not be open to browsers")
			}
			switch tt.wantStatus {
			case http.StatusUnauthorized:
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") || !strings.Contains(body, "invalid_client") {
					t.Errorf("401 without Basic challenge: %v %s", resp.Header, body)
				}
			case http.StatusOK:
				m := decode(t, body)
				want := map[string]any{
					"active": true, "scope": "op:add op:mult", "client_id": clientID, "username": "alice", "sub": "alice",
					"aud": testResource, "iss": h.issuer, "token_type": "Bearer",
					"exp": float64(now.Add(10 * time.Minute).Unix()), "iat": float64(now.Unix()), "nbf": float64(now.Unix()),
				}
				for k, v := range want {
					if m[k] != v {
						t.Errorf("%s = %v, want %v", k, m[k], v)
					}
				}
			}
		})
	}
	t.Run("inactive", func(t *testing.T) {
		if m := h.introspect("not-a-token"); len(m) != 1 || m["active"] != false {
			t.Errorf("unknown token: %v", m)
		}
		h.clock.Advance(10 * time.Minute)
		if m := h.introspect(at); len(m) != 1 || m["active"] != false {
			t.Errorf("expired token: %v", m)
		}
	})
}

func TestTokenPage(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.get(h.url("/"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Mint a token") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	csrf := hiddenRE.FindStringSubmatch(body)
	if csrf == nil || csrf[1] != "csrf" {
		t.Fatal("no csrf field")
	}
	post := func(f url.Values) (*http.Response, string) { return h.postForm("/", f, nil) }

	if resp, _ := post(url.Values{"user": {"alice"}, "scope": {scopeAdd}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("no csrf: %d", resp.StatusCode)
	}
	resp, body = post(url.Values{"csrf": {csrf[2]}, "user": {"alice"}, "scope": {scopeAdd, scopeSubtract}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	m := regexpToken.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no token on the page:\n%s", body)
	}
	token := m[1]
	in := h.introspect(token)
	if in["active"] != true || in["scope"] != "op:add op:sub" || in["username"] != "alice" || in["client_id"] != TokenPageClientID || in["aud"] != testResource {
		t.Errorf("minted token: %v", in)
	}
	for _, want := range []string{
		"curl -sS &#39;" + testResource + "&#39;",
		"Authorization: Bearer " + token,
		"Content-Type: application/json",
		"Accept: application/json, text/event-stream",
		"MCP-Protocol-Version: 2025-11-25",
		`&#34;method&#34;:&#34;tools/call&#34;`,
		`&#34;name&#34;:&#34;calculator&#34;`,
		`&#34;operation&#34;:&#34;add&#34;`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The CSRF token is single-use.
	if resp, _ := post(url.Values{"csrf": {csrf[2]}, "user": {"alice"}, "scope": {scopeAdd}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("reused csrf: %d", resp.StatusCode)
	}
	// Validation errors re-render the form.
	_, body = h.get(h.url("/"))
	csrf = hiddenRE.FindStringSubmatch(body)
	if resp, body := post(url.Values{"csrf": {csrf[2]}, "user": {"a b"}, "scope": {scopeAdd}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "user name") {
		t.Errorf("bad user: %d", resp.StatusCode)
	}

	if _, err := h.srv.MintToken("alice", []string{"op:pow"}); err == nil {
		t.Error("MintToken accepted an unknown scope")
	}
	if _, err := h.srv.MintToken("", []string{scopeAdd}); err == nil {
		t.Error("MintToken accepted an empty user")
	}
	if tok, err := h.srv.MintToken("alice", []string{scopeParent}); err != nil || h.introspect(tok)["scope"] != "op" {
		t.Errorf("MintToken(op): %v", err)
	}
}

var regexpToken = regexp.MustCompile(`<pre id="token">([A-Za-z0-9_-]{43})</pre>`)

func TestCurlQuoting(t *testing.T) {
	s, err := New(Config{Issuer: "http://h/dev-auth", Resource: "http://h/mcp", Scopes: testScopes(), ExampleArguments: `{"operation":"add","a":"it's"}`})
	if err != nil {
		t.Fatal(err)
	}
	got := s.curlCommand("TOKEN")
	if !strings.Contains(got, `"a":"it'\''s"`) {
		t.Errorf("single quote not escaped: %s", got)
	}
}

// TestNeverLogsSecrets runs every endpoint with debug logging and checks that
// no token, code, verifier or CSRF token reaches the log.
func TestNeverLogsSecrets(t *testing.T) {
	h := newHarness(t, nil)
	const redirect = "http://127.0.0.1:4000/cb"
	clientID := h.register(redirect)
	verifier := oauth2.GenerateVerifier()
	var secrets []string
	f := h.openConsent(authzRequest{clientID: clientID, redirectURI: redirect, verifier: verifier, state: "st"})
	secrets = append(secrets, f.csrf, verifier)
	_, q := h.answer(f, "approve", "alice", f.checked)
	code := q.Get("code")
	secrets = append(secrets, code)
	_, tok := h.exchange(clientID, redirect, code, verifier)
	h.exchange(clientID, redirect, code, verifier) // reuse, logged as a warning
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	secrets = append(secrets, at, rt)

	_, tok = h.grant("bob", nil)
	clientID = h.srv.clientsNewest()
	secrets = append(secrets, tok["access_token"].(string), tok["refresh_token"].(string))
	_, tok2 := h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tok["refresh_token"].(string)}})
	secrets = append(secrets, tok2["access_token"].(string), tok2["refresh_token"].(string))
	h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tok["refresh_token"].(string)}})
	h.introspect(tok2["access_token"].(string))
	h.postForm("/revoke", url.Values{"token": {tok2["refresh_token"].(string)}, "client_id": {clientID}}, nil)
	minted, _ := h.srv.MintToken("carol", []string{scopeAdd})
	secrets = append(secrets, minted)
	id, secret := h.srv.IntrospectionCredentials()
	secrets = append(secrets, secret)
	h.postForm("/introspect", url.Values{"token": {minted}, "client_id": {id}, "client_secret": {"wrong"}}, nil)

	logs := h.logs.String()
	if !strings.Contains(logs, `"level":"DEBUG"`) || !strings.Contains(logs, `"level":"WARN"`) {
		t.Fatalf("expected debug and warning logs, got:\n%s", logs)
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret collected")
		}
		if strings.Contains(logs, s) {
			t.Errorf("a secret appears in the log: %q", s)
		}
	}
}

// TestConcurrentGrants runs whole flows in parallel, for the race detector.
func TestConcurrentGrants(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxClients, c.MaxTokens = 100, 40 })
	for i := range 16 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			hh := *h
			hh.t = t
			clientID, tok := hh.grant(fmt.Sprintf("user%d", i), []string{scopeAdd})
			hh.introspect(tok["access_token"].(string))
			hh.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tok["refresh_token"].(string)}})
			if _, err := hh.srv.MintToken("x", []string{scopeAdd}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestNoScopesOffered: a server configured with no scopes (a proxy whose
// policy needs none) still signs users in: consent names the user only,
// and the token carries no scope. With scopes offered, approving none is
// still a refusal.
func TestNoScopesOffered(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Scopes = []string{} })
	_, tok := h.grant("alice", []string{})
	at, _ := tok["access_token"].(string)
	in := h.introspect(at)
	if in["active"] != true || in["sub"] != "alice" || (in["scope"] != nil && in["scope"] != "") {
		t.Errorf("introspection %v, want alice active with no scope", in)
	}
	if _, err := h.srv.MintToken("bob", nil); err != nil {
		t.Errorf("MintToken with no scopes: %v", err)
	}
	_, page := h.get(h.url("/"))
	csrf := hiddenRE.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no csrf on the token page:\n%s", page)
	}
	if resp, body := h.postForm("/", url.Values{"csrf": {csrf[2]}, "user": {"carol"}}, nil); resp.StatusCode != http.StatusOK || regexpToken.FindStringSubmatch(body) == nil {
		t.Errorf("the token page mints nothing without scopes: %d\n%s", resp.StatusCode, body)
	}

	withScopes := newHarness(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	f := withScopes.openConsent(authzRequest{clientID: withScopes.register(redirect), redirectURI: redirect, verifier: "v-0123456789-0123456789-0123456789-0123456789", state: "s"})
	if _, q := withScopes.answer(f, "approve", "alice", []string{}); q.Get("error") != "access_denied" {
		t.Errorf("approving no scope of those offered: %v", q)
	}
}
