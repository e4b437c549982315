package devauth

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestRefusalsAreExplained: every refusal tells the client precisely why
// in its error_description (or error page), and writes one log line at
// info or warn level with the endpoint's real route, the OAuth error code
// and the same reason, and never a secret.
func TestRefusalsAreExplained(t *testing.T) {
	const redirect = "http://127.0.0.1:4000/cb"
	type env struct {
		h        *harness
		clientID string
		code     string
		verifier string
	}
	// codeForm is a valid authorization_code token request.
	codeForm := func(e *env) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "client_id": {e.clientID}, "code": {e.code},
			"redirect_uri": {redirect}, "code_verifier": {e.verifier}}
	}
	type result struct {
		status int
		code   string // OAuth error code in the JSON body or the redirect
		desc   string // error_description, or the page text
	}
	postToken := func(e *env, f url.Values) result {
		resp, body := e.h.postForm("/token", f, nil)
		m := decode(e.h.t, body)
		code, _ := m["error"].(string)
		desc, _ := m["error_description"].(string)
		return result{resp.StatusCode, code, desc}
	}
	authorize := func(e *env, mod func(url.Values)) result {
		u, _ := url.Parse(authzRequest{clientID: e.clientID, redirectURI: redirect, verifier: e.verifier, state: "s"}.url(e.h))
		q := u.Query()
		mod(q)
		u.RawQuery = q.Encode()
		resp, body := e.h.get(u.String())
		if loc := resp.Header.Get("Location"); loc != "" {
			lu, _ := url.Parse(loc)
			return result{resp.StatusCode, lu.Query().Get("error"), lu.Query().Get("error_description")}
		}
		return result{resp.StatusCode, "", unescapeHTML(body)}
	}

	tests := []struct {
		name      string
		do        func(e *env) result
		endpoint  string
		status    int
		code      string
		level     string
		wantDescs []string // each must appear in the description and the logged reason
	}{
		{"token: foreign resource", func(e *env) result {
			f := codeForm(e)
			f.Set("resource", "https://other.example/mcp")
			return postToken(e, f)
		}, "/dev-auth/token", 400, "invalid_target", "INFO",
			[]string{`resource "https://other.example/mcp" is not served here`, `only for the resource "` + testResource + `"`}},
		{"token: resource=undefined, as an old Inspector sends", func(e *env) result {
			f := codeForm(e)
			f.Set("resource", "undefined")
			return postToken(e, f)
		}, "/dev-auth/token", 400, "invalid_target", "INFO", []string{`resource "undefined"`}},
		{"token: unknown client", func(e *env) result {
			f := codeForm(e)
			f.Set("client_id", "dc-gone")
			return postToken(e, f)
		}, "/dev-auth/token", 401, "invalid_client", "INFO", []string{"unknown client_id", "register again"}},
		{"token: wrong verifier", func(e *env) result {
			f := codeForm(e)
			f.Set("code_verifier", oauth2.GenerateVerifier())
			return postToken(e, f)
		}, "/dev-auth/token", 400, "invalid_grant", "INFO", []string{"code_verifier does not match the code_challenge"}},
		{"token: expired code", func(e *env) result {
			e.h.clock.Advance(90 * time.Second)
			return postToken(e, codeForm(e))
		}, "/dev-auth/token", 400, "invalid_grant", "INFO", []string{"expired 30s ago", "valid for 1m0s"}},
		{"token: redirect_uri differs", func(e *env) result {
			f := codeForm(e)
			f.Set("redirect_uri", "http://127.0.0.1:4000/other")
			return postToken(e, f)
		}, "/dev-auth/token", 400, "invalid_grant", "INFO",
			[]string{`redirect_uri "http://127.0.0.1:4000/other" does not match "` + redirect + `"`}},
		{"token: code replayed", func(e *env) result {
			postToken(e, codeForm(e))
			return postToken(e, codeForm(e))
		}, "/dev-auth/token", 400, "invalid_grant", "WARN", []string{"already used"}},
		{"token: unsupported grant", func(e *env) result {
			f := codeForm(e)
			f.Set("grant_type", "password")
			return postToken(e, f)
		}, "/dev-auth/token", 400, "unsupported_grant_type", "INFO", []string{`grant_type "password" is not supported`}},
		{"token: GET", func(e *env) result {
			resp, body := e.h.get(e.h.url("/token"))
			m := decode(t, body)
			return result{resp.StatusCode, m["error"].(string), m["error_description"].(string)}
		}, "/dev-auth/token", 405, "invalid_request", "INFO", []string{`method "GET" is not allowed here; use POST`}},
		{"authorize: foreign resource", func(e *env) result {
			return authorize(e, func(q url.Values) { q.Set("resource", "https://other.example/mcp") })
		}, "/dev-auth/authorize", 302, "invalid_target", "INFO", []string{`resource "https://other.example/mcp" is not served here`}},
		{"authorize: plain PKCE", func(e *env) result {
			return authorize(e, func(q url.Values) { q.Set("code_challenge_method", "plain") })
		}, "/dev-auth/authorize", 302, "invalid_request", "INFO", []string{`code_challenge_method is "plain"; it must be S256`}},
		{"authorize: unknown client (page)", func(e *env) result {
			return authorize(e, func(q url.Values) { q.Set("client_id", "dc-gone") })
		}, "/dev-auth/authorize", 400, "", "INFO", []string{"unknown client_id"}},
		{"authorize: unregistered redirect (page)", func(e *env) result {
			return authorize(e, func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") })
		}, "/dev-auth/authorize", 400, "", "INFO", []string{`redirect_uri "https://evil.example/cb" is not one of the client's redirect_uris "` + redirect + `"`}},
		{"consent: expired page", func(e *env) result {
			f := e.h.openConsent(authzRequest{clientID: e.clientID, redirectURI: redirect, verifier: e.verifier})
			e.h.clock.Advance(11 * time.Minute)
			resp, body := e.h.postForm("/consent", url.Values{"id": {f.id}, "csrf": {f.csrf}, "action": {"approve"}, "user": {"a"}}, nil)
			return result{resp.StatusCode, "", unescapeHTML(body)}
		}, "/dev-auth/consent", 400, "", "INFO", []string{"expired (consent pages are valid for 10m0s)"}},
		{"consent: bad CSRF", func(e *env) result {
			f := e.h.openConsent(authzRequest{clientID: e.clientID, redirectURI: redirect, verifier: e.verifier})
			resp, body := e.h.postForm("/consent", url.Values{"id": {f.id}, "csrf": {"forged"}, "action": {"approve"}, "user": {"a"}}, nil)
			return result{resp.StatusCode, "", unescapeHTML(body)}
		}, "/dev-auth/consent", 403, "", "WARN", []string{"CSRF token is wrong"}},
		{"consent: denied", func(e *env) result {
			f := e.h.openConsent(authzRequest{clientID: e.clientID, redirectURI: redirect, verifier: e.verifier})
			resp, q := e.h.answer(f, "deny", "", nil)
			return result{resp.StatusCode, q.Get("error"), q.Get("error_description")}
		}, "/dev-auth/consent", 303, "access_denied", "INFO", []string{"the user denied the request"}},
		{"register: not JSON", func(e *env) result {
			resp, body := e.h.postForm("/register", url.Values{"redirect_uris": {redirect}}, nil)
			m := decode(t, body)
			return result{resp.StatusCode, m["error"].(string), m["error_description"].(string)}
		}, "/dev-auth/register", 400, "invalid_client_metadata", "INFO", []string{`Content-Type is "application/x-www-form-urlencoded"`}},
		{"register: bad redirect", func(e *env) result {
			resp, m := e.h.postJSON("/register", map[string]any{"redirect_uris": []string{"http://app.example/cb"}})
			return result{resp.StatusCode, m["error"].(string), m["error_description"].(string)}
		}, "/dev-auth/register", 400, "invalid_redirect_uri", "INFO", []string{"http is allowed only for loopback hosts"}},
		{"introspect: wrong credentials", func(e *env) result {
			resp, body := e.h.postForm("/introspect", url.Values{"token": {"x"}, "client_id": {"me"}, "client_secret": {"guess"}}, nil)
			m := decode(t, body)
			return result{resp.StatusCode, m["error"].(string), m["error_description"].(string)}
		}, "/dev-auth/introspect", 401, "invalid_client", "WARN", []string{"introspection client credentials are wrong"}},
		{"revoke: no token", func(e *env) result {
			resp, body := e.h.postForm("/revoke", url.Values{"client_id": {e.clientID}}, nil)
			m := decode(t, body)
			return result{resp.StatusCode, m["error"].(string), m["error_description"].(string)}
		}, "/dev-auth/revoke", 400, "invalid_request", "INFO", []string{"token is required"}},
		{"token page: bad CSRF", func(e *env) result {
			resp, body := e.h.postForm("/", url.Values{"csrf": {"forged"}, "user": {"a"}, "scope": {"op:add"}}, nil)
			return result{resp.StatusCode, "", unescapeHTML(body)}
		}, "/dev-auth/", 403, "", "WARN", []string{"CSRF token is wrong"}},
		{"metadata: POST", func(e *env) result {
			resp, body := e.h.postForm("/.well-known/oauth-authorization-server", nil, nil)
			m := decode(t, body)
			return result{resp.StatusCode, m["error"].(string), m["error_description"].(string)}
		}, "/dev-auth/.well-known/oauth-authorization-server", 405, "invalid_request", "INFO", []string{"use GET, HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			e := &env{h: h, clientID: h.register(redirect), verifier: oauth2.GenerateVerifier()}
			e.code = h.authorize(authzRequest{clientID: e.clientID, redirectURI: redirect, verifier: e.verifier}, "alice", nil)
			got := tt.do(e)
			if got.status != tt.status || got.code != tt.code {
				t.Fatalf("got %d %q (%s), want %d %q", got.status, got.code, got.desc, tt.status, tt.code)
			}
			line := h.lastRefusal(t)
			for _, want := range tt.wantDescs {
				if !strings.Contains(got.desc, want) {
					t.Errorf("the client is told %q, which does not say %q", got.desc, want)
				}
				if reason, _ := line["reason"].(string); !strings.Contains(reason, want) {
					t.Errorf("logged reason %q does not say %q", reason, want)
				}
			}
			if line["endpoint"] != tt.endpoint || line["level"] != tt.level || line["status"] != float64(tt.status) {
				t.Errorf("log line %v, want endpoint %s level %s status %d", line, tt.endpoint, tt.level, tt.status)
			}
			if tt.code != "" && line["error"] != tt.code {
				t.Errorf("logged error %v, want %s", line["error"], tt.code)
			}
			logs := h.logs.String()
			for _, secret := range []string{e.code, e.verifier} {
				if strings.Contains(logs, secret) {
					t.Errorf("a code or verifier reached the log")
				}
			}
		})
	}
}

// TestQuoted: request values repeated in descriptions are bounded and
// cannot break a log line or forge text.
func TestQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                        `"plain"`,
		"new\nline":                    `"new\nline"`,
		strings.Repeat("é", 100):       `"` + strings.Repeat("é", 60) + `"…`,
		strings.Repeat("a", 200):       `"` + strings.Repeat("a", maxQuoted) + `"…`,
		`quote"d`:                      `"quote\"d"`,
		"\x00":                         `"\x00"`,
		strings.Repeat("a", 119) + "é": `"` + strings.Repeat("a", 119) + `"…`,
	} {
		if got := quoted(in); got != want {
			t.Errorf("quoted(%q) = %s, want %s", in, got, want)
		}
	}
}
