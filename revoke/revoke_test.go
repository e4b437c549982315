package revoke

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

var testSecret = []byte("revoke-tests-key-secret-0123456789")

const adminToken = "0123456789abcdef0123456789abcdef-admin"

// counter is an Observer.
type counter struct {
	mu sync.Mutex
	m  map[string]int // "source/kind/applied"
}

func (c *counter) Revocation(src Source, kind string, applied bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	k := string(src) + "/" + kind
	if applied {
		k += "/applied"
	}
	c.m[k]++
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

type node struct {
	r       *Revoker
	set     *sharedcache.RevocationSet
	store   *sharedcache.Store
	obs     *counter
	logs    *syncbuf.Buffer
	mu      sync.Mutex
	applied []sharedcache.Revocation
}

func (n *node) appliedList() []sharedcache.Revocation {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]sharedcache.Revocation(nil), n.applied...)
}

// newNode builds a Revoker; redisURL "" means no Redis.
func newNode(t *testing.T, redisURL string, mod ...func(*sharedcache.Config)) *node {
	t.Helper()
	n := &node{set: sharedcache.NewRevocationSet(time.Minute, 0, nil), obs: &counter{}, logs: &syncbuf.Buffer{}}
	cfg := Config{Set: n.set, TTL: time.Minute, Observer: n.obs,
		Logger:  slog.New(slog.NewJSONHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnApply: func(r sharedcache.Revocation) { n.mu.Lock(); n.applied = append(n.applied, r); n.mu.Unlock() }}
	if redisURL != "" {
		sc := sharedcache.Config{URL: redisURL, KeySecret: testSecret, Timeout: time.Second}
		for _, m := range mod {
			m(&sc)
		}
		st, err := sharedcache.New(context.Background(), sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		n.store, cfg.Store, cfg.IDs = st, st, st
	} else {
		ids, err := sharedcache.NewIDs(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		cfg.IDs = ids
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Close)
	n.r = r
	return n
}

func adminCall(t *testing.T, h http.Handler, auth, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, AdminPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Store: &sharedcache.Store{}})
	for _, want := range []string{"Set is required", "IDs is required", "TTL must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v, want it to mention %q", err, want)
		}
	}
}

func TestAdminAuthentication(t *testing.T) {
	n := newNode(t, "")
	h := n.r.AdminHandler(adminToken)
	body := `{"sub":"alice"}`
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "Bearer " + adminToken + "x", http.StatusUnauthorized},
		{"prefix", "Bearer " + adminToken[:20], http.StatusUnauthorized},
		{"basic", "Basic " + adminToken, http.StatusUnauthorized},
		{"no scheme", adminToken, http.StatusUnauthorized},
		{"right", "Bearer " + adminToken, http.StatusOK},
		{"scheme case", "bearer " + adminToken, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := adminCall(t, h, tc.auth, body)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no Bearer challenge")
			}
		})
	}
	if strings.Contains(n.logs.String(), adminToken[:20]) {
		t.Fatal("the admin token was logged")
	}
	if got := strings.Count(n.logs.String(), "admin API: request refused"); got != 5 {
		t.Errorf("%d refusals logged, want 5:\n%s", got, n.logs)
	}
	// A configured token too short to be safe opens nothing.
	short := n.r.AdminHandler("short")
	if w := adminCall(t, short, "Bearer short", body); w.Code != http.StatusUnauthorized {
		t.Fatalf("short admin token: status %d", w.Code)
	}
	if w := httptest.NewRecorder(); true {
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, AdminPath, nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Fatalf("GET: %d", w.Code)
		}
	}
}

func TestAdminRevokes(t *testing.T) {
	n := newNode(t, "")
	h := n.r.AdminHandler(adminToken)
	const token = "the-access-token-to-revoke"
	ids, _ := sharedcache.NewIDs(testSecret)
	tokID := ids.ID(sha256.Sum256([]byte(token)))
	for _, tc := range []struct {
		body string
		kind string
		who  sharedcache.Principal
		id   sharedcache.ID
	}{
		{`{"sub":"alice"}`, sharedcache.KindSub, sharedcache.Principal{Sub: "alice"}, sharedcache.ID{}},
		{`{"client_id":"evil-app"}`, sharedcache.KindClientID, sharedcache.Principal{ClientID: "evil-app"}, sharedcache.ID{}},
		{`{"email":"Bob@Example.com"}`, sharedcache.KindEmail, sharedcache.Principal{Email: "bob@example.com"}, sharedcache.ID{}},
		{`{"token":"` + token + `"}`, sharedcache.KindToken, sharedcache.Principal{}, tokID},
	} {
		before := time.Now()
		if n.set.Revoked(tc.id, tc.who, before.Add(-time.Second)) {
			t.Fatalf("%s revoked before the call", tc.body)
		}
		w := adminCall(t, h, "Bearer "+adminToken, tc.body)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.body, w.Code, w.Body)
		}
		var resp AdminResponse
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Kind != tc.kind || resp.Scope != "machine" || resp.At.Before(before.Add(-time.Second)) {
			t.Fatalf("%s: response %s (%v)", tc.body, w.Body, err)
		}
		if !n.set.Revoked(tc.id, tc.who, before) {
			t.Fatalf("%s: not applied", tc.body)
		}
		if strings.Contains(w.Body.String(), token) {
			t.Fatal("the token is echoed")
		}
	}
	if strings.Contains(n.logs.String(), token) || strings.Contains(n.logs.String(), "alice") {
		t.Fatalf("a token or a subject was logged:\n%s", n.logs)
	}
	if len(n.appliedList()) != 4 || n.obs.get("admin/sub/applied") != 1 {
		t.Fatalf("OnApply %d, observer %v", len(n.appliedList()), n.obs.snapshot())
	}
}

func TestAdminRefusesBadBodies(t *testing.T) {
	n := newNode(t, "")
	h := n.r.AdminHandler(adminToken)
	for _, body := range []string{
		``, `{}`, `[]`, `null`, `"sub"`, `{"sub":""}`, `{"sub":"a","client_id":"b"}`,
		`{"sub":"a"}{"sub":"b"}`, `{"user":"a"}`, `{"sub":1}`, `{"sub":"` + strings.Repeat("x", 1025) + `"}`,
		`{"sub":"\xff"}`, `{"token":"` + strings.Repeat("t", 4097) + `"}`, strings.Repeat(" ", 9000) + `{"sub":"a"}`,
	} {
		if w := adminCall(t, h, "Bearer "+adminToken, body); w.Code != http.StatusBadRequest {
			t.Errorf("body %.40q: status %d, want 400", body, w.Code)
		}
	}
	if n.set.Len() != 0 {
		t.Fatalf("a refused request applied %d revocations", n.set.Len())
	}
}

// With Redis, a revocation at one machine reaches the others within a
// second; when Redis does not take it the admin hears so (503) and it
// applies on the one machine.
func TestAdminPropagates(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	h := a.r.AdminHandler(adminToken)
	start := time.Now()
	w := adminCall(t, h, "Bearer "+adminToken, `{"sub":"carol"}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"scope":"deployment"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for !b.set.Revoked(sharedcache.ID{}, sharedcache.Principal{Sub: "carol"}, start) {
		if time.Since(start) > time.Second {
			t.Fatal("not at the other machine within 1s")
		}
		time.Sleep(time.Millisecond)
	}
	// The echo of a's own publication is received (once, or more: the
	// subscription also replays live records when it is confirmed), and
	// never applied twice.
	deadline := time.Now().Add(5 * time.Second)
	for a.obs.get("redis/sub") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if a.obs.get("redis/sub") < 1 || a.obs.get("redis/sub/applied") != 0 || len(a.appliedList()) != 1 {
		t.Fatalf("echo: observer %v, OnApply %d", a.obs.snapshot(), len(a.appliedList()))
	}
	// b's set holds the revocation before its OnApply hook has run (the
	// subscriber applies, then notifies): wait for the hook, bounded.
	for len(b.appliedList()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if b.obs.get("redis/sub/applied") != 1 || len(b.appliedList()) != 1 {
		t.Fatalf("b: observer %v, OnApply %d", b.obs.snapshot(), len(b.appliedList()))
	}

	srv.Kill()
	w = adminCall(t, h, "Bearer "+adminToken, `{"client_id":"c1"}`)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "not_propagated") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("Redis down: %d %s", w.Code, w.Body)
	}
	if !a.set.Revoked(sharedcache.ID{}, sharedcache.Principal{ClientID: "c1"}, time.Now().Add(-time.Second)) {
		t.Fatal("not applied locally while Redis is down")
	}
}

// A machine that starts after a revocation (or missed it) reads it from
// Redis.
func TestLateMachineReadsRecords(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, srv.URL())
	if err := a.r.Revoke(context.Background(), SourceAdmin, a.r.TokenRevocation("tok")); err != nil {
		t.Fatal(err)
	}
	late := newNode(t, srv.URL())
	id := late.store.ID(sha256.Sum256([]byte("tok")))
	deadline := time.Now().Add(5 * time.Second)
	for !late.set.Revoked(id, sharedcache.Principal{}, time.Now().Add(-time.Hour)) {
		if time.Now().After(deadline) {
			t.Fatal("a machine started later does not honour the revocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSSFRevocation(t *testing.T) {
	const as = "https://idp.example.com/"
	for _, tc := range []struct {
		s    ssf.Subject
		want sharedcache.Revocation
		ok   bool
	}{
		{ssf.Subject{Format: ssf.FormatIssSub, Iss: as, Sub: "u1"}, sharedcache.Revocation{Kind: sharedcache.KindSub, Value: "u1"}, true},
		{ssf.Subject{Format: ssf.FormatIssSub, Iss: "https://idp.example.com", Sub: "u1"}, sharedcache.Revocation{Kind: sharedcache.KindSub, Value: "u1"}, true},
		{ssf.Subject{Format: ssf.FormatIssSub, Iss: "https://other.example.com/", Sub: "u1"}, sharedcache.Revocation{}, false},
		{ssf.Subject{Format: ssf.FormatOpaque, ID: "o1"}, sharedcache.Revocation{Kind: sharedcache.KindSub, Value: "o1"}, true},
		{ssf.Subject{Format: ssf.FormatEmail, Email: "a@b.example"}, sharedcache.Revocation{Kind: sharedcache.KindEmail, Value: "a@b.example"}, true},
		{ssf.Subject{Format: "phone_number"}, sharedcache.Revocation{}, false},
	} {
		got, ok := SSFRevocation(tc.s, as)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%+v: %+v %v, want %+v %v", tc.s, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := SSFRevocation(ssf.Subject{Format: ssf.FormatIssSub, Iss: "", Sub: "u"}, ""); ok {
		t.Error("iss_sub matched without an authorization server issuer")
	}
}

// SETs from a test transmitter, pushed to a Receiver wired as the gateway
// wires it, revoke their subjects; a subject of another issuer is
// acknowledged and revokes nothing; Redis refusing the revocation makes
// the push fail so the transmitter retries.
func TestOnSSF(t *testing.T) {
	const asIssuer = "https://as.example.com"
	const resource = "https://mcp.example.com/mcp"
	srv := redistest.Start(t)
	n := newNode(t, srv.URL(), func(c *sharedcache.Config) { c.Timeout = 200 * time.Millisecond })
	tr := ssftest.Start(t)
	rcv, err := ssf.New(ssf.Config{Issuer: tr.Issuer(), Audience: []string{resource}, OnRevocation: n.r.OnSSF(asIssuer), HTTPClient: tr.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	push := func(event string, subject map[string]any) int {
		t.Helper()
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/ssf/events", strings.NewReader(tr.MustSign(t, tr.Claims(resource, event, subject))))
		req.Header.Set("Content-Type", ssf.ContentType)
		rcv.ServeHTTP(w, req)
		return w.Code
	}
	before := time.Now().Add(-time.Second)
	for _, tc := range []struct {
		event   string
		subject map[string]any
		who     sharedcache.Principal
	}{
		{ssf.EventSessionRevoked, ssftest.IssSub(asIssuer, "u-iss"), sharedcache.Principal{Sub: "u-iss"}},
		{ssf.EventCredentialChange, ssftest.Opaque("u-opaque"), sharedcache.Principal{Sub: "u-opaque"}},
		{ssf.EventAccountDisabled, ssftest.Email("U@Example.com"), sharedcache.Principal{Email: "u@example.com"}},
		{ssf.EventAccountPurged, ssftest.Opaque("u-purged"), sharedcache.Principal{Sub: "u-purged"}},
		{ssf.EventSessionsRevoked, ssftest.Opaque("u-sessions"), sharedcache.Principal{Sub: "u-sessions"}},
	} {
		if code := push(tc.event, tc.subject); code != http.StatusAccepted {
			t.Fatalf("%s: status %d", tc.event, code)
		}
		if !n.set.Revoked(sharedcache.ID{}, tc.who, before) {
			t.Fatalf("%s: %+v not revoked", tc.event, tc.who)
		}
	}
	gen := n.set.Generation()
	if code := push(ssf.EventSessionRevoked, ssftest.IssSub("https://someone-else.example", "u-iss2")); code != http.StatusAccepted {
		t.Fatalf("foreign iss_sub: status %d", code)
	}
	if n.set.Generation() != gen {
		t.Fatal("a subject of another issuer was revoked")
	}
	if n.obs.get("ssf/sub/applied") != 4 || n.obs.get("ssf/email/applied") != 1 {
		t.Fatalf("observer %v", n.obs.snapshot())
	}

	srv.Kill()
	if code := push(ssf.EventSessionRevoked, ssftest.Opaque("u-down")); code != http.StatusServiceUnavailable {
		t.Fatalf("Redis down: status %d, want 503 so the transmitter retries", code)
	}
	if !n.set.Revoked(sharedcache.ID{}, sharedcache.Principal{Sub: "u-down"}, before) {
		t.Fatal("not applied locally while Redis is down")
	}
}

func FuzzDecodeAdmin(f *testing.F) {
	for _, s := range []string{`{"sub":"alice"}`, `{"token":"t"}`, `{"client_id":"c","email":"e"}`, `{}`, `[`, `{"sub":"a"} x`} {
		f.Add([]byte(s))
	}
	ids, _ := sharedcache.NewIDs(testSecret)
	r, _ := New(Config{Set: sharedcache.NewRevocationSet(time.Minute, 0, nil), IDs: ids})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, AdminPath, bytes.NewReader(body))
		rev, err := decodeAdmin(httptest.NewRecorder(), req, r)
		if err != nil {
			return
		}
		if rev.Kind == sharedcache.KindToken && (len(rev.Value) != 64 || bytes.Contains(body, []byte(rev.Value))) {
			t.Fatalf("token revocation %q does not name a keyed ID", rev.Value)
		}
		if rev.Kind != sharedcache.KindToken && rev.Value == "" {
			t.Fatal("empty revocation decoded")
		}
	})
}
