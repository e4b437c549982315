package devauth

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"code.dny.dev/ssrf"
	"golang.org/x/oauth2"
)

// docServer serves Client ID Metadata Documents from an httptest server on
// loopback. Each path's handler is set by the test; fetches counts requests.
type docServer struct {
	ts      *httptest.Server
	fetches atomic.Int32
	routes  map[string]http.HandlerFunc
}

func newDocServer(t *testing.T, tlsServer bool) *docServer {
	t.Helper()
	d := &docServer{routes: map[string]http.HandlerFunc{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.fetches.Add(1)
		if f, ok := d.routes[r.URL.Path]; ok {
			f(w, r)
			return
		}
		http.NotFound(w, r)
	})
	if tlsServer {
		d.ts = httptest.NewTLSServer(h)
	} else {
		d.ts = httptest.NewServer(h)
	}
	t.Cleanup(d.ts.Close)
	return d
}

// serveJSON publishes v at path with the given Cache-Control.
func (d *docServer) serveJSON(path string, v any, cacheControl string) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	d.routes[path] = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		_, _ = w.Write(b)
	}
	return d.ts.URL + path
}

func clientDoc(id, redirect string) map[string]any {
	return map[string]any{
		"client_id":                  id,
		"client_name":                "Doc <b>Client</b>",
		"client_uri":                 "https://app.example",
		"redirect_uris":              []string{redirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
}

// TestClientIDMetadataDocumentFlow: a client whose client_id is the URL of
// its metadata document (served on loopback) completes authorize, consent
// and the PKCE code exchange, refreshes, and is fetched once while cached.
func TestClientIDMetadataDocumentFlow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AllowLoopbackClientIDs = true })
	d := newDocServer(t, false)
	const redirect = "http://127.0.0.1:4000/cb"
	id := d.ts.URL + "/client.json"
	d.serveJSON("/client.json", clientDoc(id, redirect), "max-age=120")

	verifier := oauth2.GenerateVerifier()
	resp, page := h.get(authzRequest{clientID: id, redirectURI: redirect, verifier: verifier, state: "st", scope: "op:add"}.url(h))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize: %d %s", resp.StatusCode, page)
	}
	host := strings.TrimPrefix(d.ts.URL, "http://")
	for _, want := range []string{
		"Authorize Doc &lt;b&gt;Client&lt;/b&gt;", // the name, escaped
		"<strong>" + host + "</strong>",           // the client_id URL's host
		"<code>" + id + "</code>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<b>Client</b>") {
		t.Error("the client name is not escaped")
	}
	f := parseConsent(t, page)
	_, q := h.answer(f, "approve", "alice", f.checked)
	code := q.Get("code")
	if code == "" {
		t.Fatalf("no code: %v", q)
	}
	status, tok := h.exchange(id, redirect, code, verifier)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, tok)
	}
	in := h.introspect(tok["access_token"].(string))
	if in["active"] != true || in["client_id"] != id || in["scope"] != scopeAdd || in["username"] != "alice" {
		t.Fatalf("introspection %v", in)
	}
	status, tok = h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {tok["refresh_token"].(string)}})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, tok)
	}
	if n := d.fetches.Load(); n != 1 {
		t.Errorf("fetched %d times within max-age, want 1", n)
	}

	// Past max-age the document is fetched again.
	h.clock.Advance(121 * time.Second)
	h.openConsent(authzRequest{clientID: id, redirectURI: redirect, verifier: verifier})
	if n := d.fetches.Load(); n != 2 {
		t.Errorf("fetched %d times after max-age, want 2", n)
	}

	// Dynamic registration still works beside it.
	if _, tok := h.grant("bob", nil); tok["access_token"] == nil {
		t.Error("dynamic registration flow broke")
	}
}

// TestClientIDMetadataDocumentHTTPS fetches over TLS, the production path.
func TestClientIDMetadataDocumentHTTPS(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AllowLoopbackClientIDs = true })
	d := newDocServer(t, true)
	pool := d.ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	h.srv.fetcher.http.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	const redirect = "https://app.example/cb"
	id := d.serveJSON("/oauth/client", clientDoc(d.ts.URL+"/oauth/client", redirect), "")
	verifier := oauth2.GenerateVerifier()
	code := h.authorize(authzRequest{clientID: id, redirectURI: redirect, verifier: verifier}, "carol", nil)
	if status, tok := h.exchange(id, redirect, code, verifier); status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, tok)
	}
}

// TestClientIDMetadataDocumentRefusals: each broken document or URL is
// refused at the authorization endpoint with a page saying why, the reason
// is logged with the endpoint, and nothing broken is cached.
func TestClientIDMetadataDocumentRefusals(t *testing.T) {
	const redirect = "http://127.0.0.1:4000/cb"
	type setup struct {
		d  *docServer
		id string // the client_id URL to use
	}
	tests := []struct {
		name       string
		noLoopback bool // AllowLoopbackClientIDs off
		prepare    func(s *setup)
		redirect   string // redirect_uri of the request; default redirect
		wantStatus int
		wantReason string
	}{
		{"client_id mismatch", false, func(s *setup) {
			s.d.serveJSON("/c", clientDoc("https://elsewhere.example/c", redirect), "")
		}, "", 400, "does not equal the URL it was fetched from"},
		{"redirect_uri not listed", false, func(s *setup) {
			s.d.serveJSON("/c", clientDoc(s.id, redirect), "")
		}, "https://evil.example/cb", 400, "is not one of the client's redirect_uris"},
		{"oversize", false, func(s *setup) {
			doc := clientDoc(s.id, redirect)
			doc["padding"] = strings.Repeat("x", maxMetadataBytes)
			s.d.serveJSON("/c", doc, "")
		}, "", 400, "larger than 5120 bytes"},
		{"redirect", false, func(s *setup) {
			s.d.routes["/c"] = func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			}
		}, "", 400, "answered 302 with a redirect"},
		{"not JSON content type", false, func(s *setup) {
			s.d.routes["/c"] = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>hi</html>"))
			}
		}, "", 400, `Content-Type "text/html"`},
		{"not JSON body", false, func(s *setup) {
			s.d.routes["/c"] = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte("<html>hi</html>"))
			}
		}, "", 400, "is not a JSON object"},
		{"JSON array", false, func(s *setup) {
			s.d.serveJSON("/c", []string{"a"}, "")
		}, "", 400, "is not a JSON object"},
		{"404", false, func(*setup) {}, "", 400, "answered HTTP 404, not 200"},
		{"client secret", false, func(s *setup) {
			doc := clientDoc(s.id, redirect)
			doc["client_secret"] = "hunter2"
			s.d.serveJSON("/c", doc, "")
		}, "", 400, "must not contain client_secret"},
		{"confidential client", false, func(s *setup) {
			doc := clientDoc(s.id, redirect)
			doc["token_endpoint_auth_method"] = "client_secret_basic"
			s.d.serveJSON("/c", doc, "")
		}, "", 400, `token_endpoint_auth_method "client_secret_basic" is not supported`},
		{"no client_name", false, func(s *setup) {
			doc := clientDoc(s.id, redirect)
			delete(doc, "client_name")
			s.d.serveJSON("/c", doc, "")
		}, "", 400, "has no client_name"},
		{"no redirect_uris", false, func(s *setup) {
			doc := clientDoc(s.id, redirect)
			delete(doc, "redirect_uris")
			s.d.serveJSON("/c", doc, "")
		}, "", 400, "redirect_uris is required"},
		{"dot segment", false, func(s *setup) { s.id = s.d.ts.URL + "/a/../c" }, "", 400, "must not contain . or .. path segments"},
		{"no path", false, func(s *setup) { s.id = s.d.ts.URL }, "", 400, "must have a path"},
		{"user info", false, func(s *setup) { s.id = strings.Replace(s.d.ts.URL, "://", "://u:p@", 1) + "/c" }, "", 400, "must not contain a user name or password"},
		{"http on a public host", false, func(s *setup) { s.id = "http://app.example/c" }, "", 400, "must use https"},
		{"loopback http not allowed", true, func(s *setup) { s.id = s.d.ts.URL + "/c" }, "", 400, "uses http"},
		// With loopback not allowed, https://localhost/ resolves to a loopback
		// address, which the dialer's check refuses: the name is not trusted.
		{"private address refused on the dialled IP", true, func(s *setup) {
			s.id = strings.Replace(s.d.ts.URL, "http://127.0.0.1", "https://localhost", 1) + "/c"
		}, "", 400, "special-use address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.AllowLoopbackClientIDs = !tt.noLoopback })
			s := &setup{d: newDocServer(t, false)}
			s.id = s.d.ts.URL + "/c"
			tt.prepare(s)
			ru := tt.redirect
			if ru == "" {
				ru = redirect
			}
			resp, page := h.get(authzRequest{clientID: s.id, redirectURI: ru, verifier: oauth2.GenerateVerifier()}.url(h))
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Location") != "" {
				t.Fatalf("got %d Location=%q, want an error page %d:\n%s", resp.StatusCode, resp.Header.Get("Location"), tt.wantStatus, page)
			}
			if !strings.Contains(unescapeHTML(page), tt.wantReason) {
				t.Errorf("page does not say %q:\n%s", tt.wantReason, page)
			}
			line := h.lastRefusal(t)
			if line["endpoint"] != "/dev-auth/authorize" || !strings.Contains(line["reason"].(string), tt.wantReason) {
				t.Errorf("log line %v", line)
			}
			if strings.Contains(h.logs.String(), "hunter2") {
				t.Error("a client_secret from a document reached the log")
			}
			// The token endpoint refuses the same client_id likewise.
			status, m := h.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {s.id}, "code": {"x"}, "code_verifier": {oauth2.GenerateVerifier()}})
			if tt.name != "redirect_uri not listed" && (status != http.StatusUnauthorized || m["error"] != "invalid_client" || !strings.Contains(m["error_description"].(string), tt.wantReason)) {
				t.Errorf("token endpoint: %d %v", status, m)
			}
		})
	}

	t.Run("invalid documents are not cached", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.AllowLoopbackClientIDs = true })
		d := newDocServer(t, false)
		id := d.ts.URL + "/c"
		d.serveJSON("/c", clientDoc("https://wrong.example/c", redirect), "max-age=3600")
		if resp, _ := h.get(authzRequest{clientID: id, redirectURI: redirect, verifier: oauth2.GenerateVerifier()}.url(h)); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("broken document accepted: %d", resp.StatusCode)
		}
		d.serveJSON("/c", clientDoc(id, redirect), "")
		h.openConsent(authzRequest{clientID: id, redirectURI: redirect, verifier: oauth2.GenerateVerifier()})
	})

	t.Run("timeout", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.AllowLoopbackClientIDs = true; c.ClientMetadataTimeout = 200 * time.Millisecond })
		d := newDocServer(t, false)
		release := make(chan struct{})
		d.routes["/slow"] = func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		defer close(release)
		resp, page := h.get(authzRequest{clientID: d.ts.URL + "/slow", redirectURI: redirect, verifier: oauth2.GenerateVerifier()}.url(h))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "took longer than 200ms") {
			t.Errorf("got %d:\n%s", resp.StatusCode, page)
		}
	})

	t.Run("fetches are rate limited per address", func(t *testing.T) {
		h := newHarness(t, func(c *Config) {
			c.AllowLoopbackClientIDs = true
			c.RegistrationRate, c.RegistrationBurst = 0.001, 1
		})
		d := newDocServer(t, false)
		for i, want := range []int{http.StatusBadRequest, http.StatusTooManyRequests} {
			resp, _ := h.get(authzRequest{clientID: d.ts.URL + "/missing", redirectURI: redirect, verifier: oauth2.GenerateVerifier()}.url(h))
			if resp.StatusCode != want {
				t.Errorf("fetch %d: status %d, want %d", i, resp.StatusCode, want)
			}
		}
		if n := d.fetches.Load(); n != 1 {
			t.Errorf("%d fetches, want 1", n)
		}
	})
}

// unescapeHTML undoes html/template's escaping of quotes for matching.
func unescapeHTML(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&quot;", `"`, "&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}

// TestDialGuard checks the address check the fetcher's dialer runs: it is
// what stands between a client_id URL and this machine's network.
func TestDialGuard(t *testing.T) {
	tests := []struct {
		addr          string
		allowed       bool // with loopback not allowed
		allowedWithLB bool // with loopback allowed
	}{
		{"93.184.215.14:443", true, true},
		{"[2606:4700:4700::1111]:443", true, true},
		{"8.8.8.8:8443", true, true},
		{"127.0.0.1:443", false, true},
		{"127.1.2.3:80", false, true},
		{"[::1]:443", false, true},
		{"10.0.0.1:443", false, false},
		{"172.16.5.4:443", false, false},
		{"192.168.1.1:443", false, false},
		{"169.254.169.254:80", false, false}, // cloud metadata
		{"100.64.0.1:443", false, false},     // shared address space
		{"0.0.0.0:443", false, false},
		{"224.0.0.1:443", false, false},
		{"255.255.255.255:443", false, false},
		{"[fe80::1]:443", false, false},
		{"[fc00::1]:443", false, false},
		{"[ff02::1]:443", false, false},
		{"[::]:443", false, false},
		{"[::ffff:10.0.0.1]:443", false, false},
		{"[::ffff:127.0.0.1]:443", false, false},
		{"[64:ff9b::a00:1]:443", false, false}, // NAT64 of 10.0.0.1
	}
	for _, tt := range tests {
		for _, lb := range []bool{false, true} {
			want := tt.allowed
			if lb {
				want = tt.allowedWithLB
			}
			network := "tcp4"
			if ap, err := netip.ParseAddrPort(tt.addr); err == nil && ap.Addr().Is6() {
				network = "tcp6"
			}
			err := dialGuard(lb).Safe(network, tt.addr, nil)
			if (err == nil) != want {
				t.Errorf("loopback=%v %s: err=%v, want allowed=%v", lb, tt.addr, err, want)
			}
			if err != nil && !errors.Is(err, ssrf.ErrProhibitedIP) {
				t.Errorf("%s: %v is not ErrProhibitedIP", tt.addr, err)
			}
		}
	}
	if err := dialGuard(true).Safe("udp4", "8.8.8.8:53", nil); err == nil {
		t.Error("UDP allowed")
	}
}

func TestMetadataTTL(t *testing.T) {
	tests := []struct {
		cc   []string
		want time.Duration
	}{
		{nil, defaultMetadataTTL},
		{[]string{"max-age=120"}, 2 * time.Minute},
		{[]string{"public, max-age=600"}, 10 * time.Minute},
		{[]string{`max-age="300"`}, 5 * time.Minute},
		{[]string{"max-age=5"}, minMetadataTTL},
		{[]string{"max-age=99999999999999999999"}, defaultMetadataTTL}, // unparsable: ignored
		{[]string{"max-age=86400000"}, maxMetadataTTL},
		{[]string{"no-store"}, minMetadataTTL},
		{[]string{"max-age=600", "no-cache"}, minMetadataTTL},
		{[]string{"MAX-AGE=120"}, 2 * time.Minute},
		{[]string{"max-age=-1"}, defaultMetadataTTL},
		{[]string{"max-age=120, max-age=3000"}, 2 * time.Minute},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.cc {
			h.Add("Cache-Control", v)
		}
		if got := metadataTTL(h); got != tt.want {
			t.Errorf("%q: %s, want %s", tt.cc, got, tt.want)
		}
	}
}

func TestCheckClientIDURL(t *testing.T) {
	tests := []struct {
		raw      string
		loopback bool
		ok       bool
	}{
		{"https://app.example/client.json", false, true},
		{"https://app.example:8443/c?v=1", false, true},
		{"https://app.example/", false, true},
		{"https://app.example", false, false},
		{"http://app.example/c", true, false},
		{"http://127.0.0.1:9/c", true, true},
		{"http://localhost:9/c", true, true},
		{"http://127.0.0.1:9/c", false, false},
		{"https://app.example/c#f", false, false},
		{"https://u@app.example/c", false, false},
		{"https://app.example/./c", false, false},
		{"https://app.example/a/..", false, false},
		{"https://app.example/%2e%2e/c", false, true}, // an escaped segment is not a dot segment
		{"https:///c", false, false},
		{"https://app.example/c d", false, false},
		{"https://" + strings.Repeat("a", maxClientIDURLLen) + "/c", false, false},
	}
	for _, tt := range tests {
		_, err := checkClientIDURL(tt.raw, tt.loopback)
		if (err == nil) != tt.ok {
			t.Errorf("%q loopback=%v: err=%v, want ok=%v", tt.raw, tt.loopback, err, tt.ok)
		}
	}
}

// FuzzParseClientMetadata: whatever the document, the parser returns an
// error or a client that satisfies every rule it promises.
func FuzzParseClientMetadata(f *testing.F) {
	const id = "https://app.example/client.json"
	good, _ := json.Marshal(clientDoc(id, "http://127.0.0.1:3000/callback"))
	f.Add(good, id)
	f.Add([]byte(`{"client_id":"https://app.example/client.json","client_name":"x","redirect_uris":["https://a.example/cb"]}`), id)
	f.Add([]byte(`{"client_id":"https://app.example/client.json","client_name":"x","redirect_uris":["javascript:alert(1)"]}`), id)
	f.Add([]byte(`{"client_id":"https://app.example/client.json","client_name":"x","redirect_uris":["https://a.example/cb"],"client_secret":null}`), id)
	f.Add([]byte(`{"client_id":"https://app.example/client.json"} {}`), id)
	f.Add([]byte(`{"client_id":"https://other.example/client.json","client_name":"x","redirect_uris":["https://a.example/cb"]}`), id)
	f.Add([]byte(`[]`), id)
	f.Add([]byte(`null`), id)
	f.Add([]byte(`{"client_id":1}`), id)
	f.Add([]byte(`{"client_id":"https://app.example/client.json","client_name":"\u0000","redirect_uris":["https://a.example/cb"]}`), id)
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		c, err := parseClientMetadata(body, id)
		if err != nil {
			var me *ClientMetadataError
			if !errors.As(err, &me) || me.Status != http.StatusBadRequest || me.Reason == "" {
				t.Fatalf("error %v is not a described 400 ClientMetadataError", err)
			}
			return
		}
		if c.id != id || strings.TrimSpace(c.name) == "" || len(c.redirectURIs) == 0 || len(c.redirectURIs) > maxRedirectURIs {
			t.Fatalf("accepted client %+v for %q", c, id)
		}
		for _, u := range c.redirectURIs {
			if err := validateRedirectURI(u); err != nil {
				t.Fatalf("accepted redirect URI %q: %v", u, err)
			}
		}
		if !c.allowsGrant(grantAuthorizationCode) {
			t.Fatalf("accepted a client without the code grant: %+v", c)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			t.Fatalf("accepted a document that is not a JSON object: %q", body)
		}
		if _, ok := m["client_secret"]; ok {
			t.Fatalf("accepted a document with client_secret: %q", body)
		}
		var docID string
		if json.Unmarshal(m["client_id"], &docID) != nil || docID != id {
			t.Fatalf("accepted a document whose client_id is not %q: %q", id, body)
		}
	})
}

// FuzzMetadataTTL: any Cache-Control gives a lifetime within the bounds.
func FuzzMetadataTTL(f *testing.F) {
	for _, s := range []string{"", "max-age=60", "no-store", `max-age="1"`, "max-age=99999999999", ",,=,max-age=", "s-maxage=5, max-age=7200"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cc string) {
		h := http.Header{"Cache-Control": {cc}}
		if got := metadataTTL(h); got < minMetadataTTL || got > maxMetadataTTL {
			t.Fatalf("%q: %s outside [%s, %s]", cc, got, minMetadataTTL, maxMetadataTTL)
		}
	})
}
