package introspecttest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, s *Server, form url.Values, basicID, basicSecret string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.IntrospectionURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(basicID)+":"+url.QueryEscape(basicSecret))))
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestServer(t *testing.T) {
	s := New(t, WithClientCredentials("id:x", "se cret"))
	tok := s.Issue("alice", []string{"op:add", "op:sub"}, "https://mcp.example.com/mcp", time.Hour)

	code, body := post(t, s, url.Values{"token": {tok}}, "id:x", "se cret")
	if code != 200 || body["active"] != true || body["sub"] != "alice" || body["scope"] != "op:add op:sub" ||
		body["iss"] != s.URL || body["client_id"] != "test-client" || body["token_type"] != "Bearer" {
		t.Fatalf("basic: %d %v", code, body)
	}
	code, body = post(t, s, url.Values{"token": {tok}, "client_id": {"id:x"}, "client_secret": {"se cret"}}, "", "")
	if code != 200 || body["active"] != true {
		t.Fatalf("post: %d %v", code, body)
	}
	if code, _ := post(t, s, url.Values{"token": {tok}}, "id:x", "wrong"); code != 401 {
		t.Fatalf("wrong secret: %d", code)
	}
	if code, _ := post(t, s, url.Values{"token": {tok}}, "", ""); code != 401 {
		t.Fatalf("no credentials: %d", code)
	}
	if code, body := post(t, s, url.Values{"token": {"unknown"}}, "id:x", "se cret"); code != 200 || body["active"] != false || len(body) != 1 {
		t.Fatalf("unknown: %d %v", code, body)
	}
	s.Revoke(tok)
	if _, body := post(t, s, url.Values{"token": {tok}}, "id:x", "se cret"); body["active"] != false {
		t.Fatalf("revoked: %v", body)
	}
	s.AddToken("t2", map[string]any{"active": false, "sub": "x"})
	if _, body := post(t, s, url.Values{"token": {"t2"}}, "id:x", "se cret"); body["active"] != false {
		t.Fatalf("explicit inactive: %v", body)
	}
	if got := s.Calls(); got != 7 {
		t.Errorf("Calls = %d, want 7", got)
	}
}

func TestServerMetadata(t *testing.T) {
	s := New(t, WithIssuerPath("tenant"))
	if !strings.HasSuffix(s.URL, "/tenant") {
		t.Fatalf("URL = %q", s.URL)
	}
	base := strings.TrimSuffix(s.URL, "/tenant")
	for _, p := range []string{
		"/.well-known/oauth-authorization-server/tenant",
		"/.well-known/openid-configuration/tenant",
		"/tenant/.well-known/openid-configuration",
	} {
		resp, err := s.Client().Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		err = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || md["issuer"] != s.URL || md["introspection_endpoint"] != s.IntrospectionURL() {
			t.Errorf("%s: %d %v %v", p, resp.StatusCode, md, err)
		}
	}
	resp, err := s.Client().Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("root metadata for a path issuer: %d, want 404", resp.StatusCode)
	}
}
