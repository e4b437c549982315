package sharedcache

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"valid", Config{URL: "redis://127.0.0.1:6379/2", KeySecret: testSecret}, ""},
		{"valid tls with user", Config{URL: "rediss://default:pw@cache.example:6380", KeySecret: testSecret}, ""},
		{"valid go-redis option", Config{URL: "redis://127.0.0.1?pool_size=8", KeySecret: testSecret}, ""},
		{"missing url", Config{KeySecret: testSecret}, "URL is required"},
		{"bad scheme", Config{URL: "http://127.0.0.1:6379", KeySecret: testSecret}, `scheme "http"`},
		{"unix refused", Config{URL: "unix:///run/redis.sock", KeySecret: testSecret}, `scheme "unix"`},
		{"skip_verify refused", Config{URL: "rediss://h:6380?skip_verify=true", KeySecret: testSecret}, "skip_verify"},
		{"bad db", Config{URL: "redis://127.0.0.1/notanumber", KeySecret: testSecret}, "database number"},
		{"unknown option", Config{URL: "redis://127.0.0.1?frobnicate=1", KeySecret: testSecret}, "unexpected option"},
		{"short secret", Config{URL: "redis://127.0.0.1", KeySecret: []byte("short")}, "at least 16 bytes"},
		{"negative timeout", Config{URL: "redis://127.0.0.1", KeySecret: testSecret, Timeout: -1}, "Timeout must not be negative"},
		{"negative pool", Config{URL: "redis://127.0.0.1", KeySecret: testSecret, PoolSize: -1}, "PoolSize must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// A URL that does not parse must not have its password repeated in the
// error, which would put it in a log.
func TestConfigErrorHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://:s3cret-pw@127.0.0.1:notaport",
		"redis://user:s3cret-pw@127.0.0.1:6379/notadb",
		"rediss://:s3cret-pw@h?skip_verify=1",
	} {
		err := (&Config{URL: u, KeySecret: testSecret}).validate()
		if err == nil {
			t.Fatalf("%s: no error", redactedURL(u))
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error repeats the password: %v", err)
		}
	}
}

func TestClientOptions(t *testing.T) {
	cfg := Config{URL: "rediss://u:pw@cache.example:6380/3", KeySecret: testSecret}
	cfg.applyDefaults()
	opt, err := cfg.clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Addr != "cache.example:6380" || opt.Username != "u" || opt.Password != "pw" || opt.DB != 3 {
		t.Errorf("addr/user/password/db = %q %q %q %d", opt.Addr, opt.Username, opt.Password, opt.DB)
	}
	if opt.TLSConfig == nil || opt.TLSConfig.ServerName != "cache.example" || opt.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS config = %+v, want verification of cache.example", opt.TLSConfig)
	}
	if !opt.ContextTimeoutEnabled || opt.MaxRetries != -1 || opt.PoolTimeout != DefaultTimeout ||
		opt.PoolSize != DefaultPoolSize || opt.MaxActiveConns != DefaultPoolSize || opt.PipelinePoolSize != -1 {
		t.Errorf("options not tuned for a bounded cache tier: %+v", opt)
	}
}

func TestGetSetTTL(t *testing.T) {
	srv := redistest.Start(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s, rec := newStore(t, srv.URL(), func(c *Config) { c.Now = newFakeClock(now).now })
	raw := rawClient(t, srv.Addr)
	ctx := context.Background()
	d := digest("token-a")

	if _, ok := s.Get(ctx, d); ok {
		t.Fatal("hit before any Set")
	}
	s.Set(ctx, d, []byte(`{"sub":"alice"}`), 30*time.Second)
	h, ok := s.Get(ctx, d)
	if !ok || string(h.Value) != `{"sub":"alice"}` || !h.StoredAt.Equal(now) {
		t.Fatalf("Get = %q %v %v, want the value stored at %v", h.Value, h.StoredAt, ok, now)
	}
	if _, ok := s.Get(ctx, digest("token-b")); ok {
		t.Fatal("another token hits")
	}
	id := s.ID(d)
	pttl := raw.PTTL(ctx, s.keys.value(&id)).Val()
	if pttl <= 29*time.Second || pttl > 30*time.Second {
		t.Fatalf("PTTL = %v, want the 30s given to Set", pttl)
	}

	// Expiry is Redis's: a short TTL is gone once it passes.
	s.Set(ctx, digest("short"), []byte("v"), 30*time.Millisecond)
	eventually(t, 2*time.Second, "30ms value to expire", func() bool {
		_, ok := s.Get(ctx, digest("short"))
		return !ok
	})

	// Nothing stored for a non-positive TTL or an oversized value.
	s.Set(ctx, digest("zero"), []byte("v"), 0)
	s.Set(ctx, digest("big"), make([]byte, DefaultMaxValueBytes+1), time.Minute)
	for _, tok := range []string{"zero", "big"} {
		if _, ok := s.Get(ctx, digest(tok)); ok {
			t.Errorf("%s: stored", tok)
		}
	}
	if rec.count(OpSet, OutcomeInvalid) != 1 {
		t.Errorf("oversized Set not reported invalid: %v", rec.calls)
	}
	if rec.count(OpGet, OutcomeHit) < 1 || rec.count(OpGet, OutcomeMiss) < 2 {
		t.Errorf("hits/misses not observed: %v", rec.calls)
	}
}

// Whatever else can write to the Redis must not hand the verifier a value
// it did not store: foreign, forged, moved or oversized values are misses.
func TestGetRefusesForeignValues(t *testing.T) {
	srv := redistest.Start(t)
	s, rec := newStore(t, srv.URL(), func(c *Config) { c.MaxValueBytes = 64 })
	raw := rawClient(t, srv.Addr)
	ctx := context.Background()
	other := newKeyer([]byte("another-secret-of-32-bytes-long!"), DefaultPrefix)
	for i, tc := range []struct {
		name string
		v    func(id ID) []byte
	}{
		{"plain text", func(ID) []byte { return []byte("plain text") }},
		{"empty", func(ID) []byte { return []byte{} }},
		{"oversized", func(id ID) []byte { return s.keys.seal(&id, time.Now(), bytes.Repeat([]byte("x"), 65)) }},
		{"unknown format", func(id ID) []byte {
			return append([]byte{valueFormat + 1}, s.keys.seal(&id, time.Now(), []byte("v"))[1:]...)
		}},
		{"no time", func(id ID) []byte { return s.keys.seal(&id, time.Unix(0, 0), []byte("v")) }},
		// Forgeries by someone who can write to Redis but lacks the secret.
		{"forged claims", func(id ID) []byte {
			b := s.keys.seal(&id, time.Now(), []byte(`{"scope":"op"}`))
			b[len(b)-3] ^= 1
			return b
		}},
		{"moved from another key", func(ID) []byte {
			donor := s.ID(digest("someone-else"))
			return s.keys.seal(&donor, time.Now(), []byte("v"))
		}},
		{"re-dated", func(id ID) []byte {
			b := s.keys.seal(&id, time.Unix(1700000000, 0), []byte("v"))
			b[3] ^= 1
			return b
		}},
		{"another secret", func(id ID) []byte { return other.seal(&id, time.Now(), []byte("v")) }},
	} {
		d := digest("foreign" + string(rune('a'+i)))
		id := s.ID(d)
		raw.Set(ctx, s.keys.value(&id), tc.v(id), time.Minute)
		if h, ok := s.Get(ctx, d); ok {
			t.Errorf("%s: accepted: %q", tc.name, h.Value)
		}
	}
	if rec.count(OpGet, OutcomeInvalid) != 9 {
		t.Errorf("invalid values observed %d times, want 9", rec.count(OpGet, OutcomeInvalid))
	}
}

// A dump of Redis must not be matchable against tokens or token digests
// seen elsewhere: no key or value holds the digest in any encoding, and the
// key is the HMAC of the digest under the secret, so without the secret it
// cannot be derived.
func TestKeysAreKeyedHashes(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL())
	raw := rawClient(t, srv.Addr)
	ctx := context.Background()
	const token = "opaque-token-123"
	d := digest(token)

	s.Set(ctx, d, []byte("claims"), time.Minute)
	if r, l := s.Lock(ctx, d, time.Minute); r != LockFilled || l != nil {
		t.Fatalf("Lock on a stored value = %v", r)
	}
	_, lease := s.Lock(ctx, digest("other"), time.Minute) // leaves a lock key
	defer lease.Release()
	if err := s.Revoke(ctx, Revocation{Kind: KindSub, Value: "alice"}, time.Minute); err != nil {
		t.Fatal(err)
	}

	mac := hmac.New(sha256.New, testSecret)
	mac.Write(d[:])
	wantKey := DefaultPrefix + "c:" + hex.EncodeToString(mac.Sum(nil))
	keys := raw.Keys(ctx, "*").Val()
	if !contains(keys, wantKey) {
		t.Fatalf("keys %q do not include HMAC-SHA256(secret, digest) %q", keys, wantKey)
	}
	forbidden := []string{
		token, string(d[:]), hex.EncodeToString(d[:]),
		base64.StdEncoding.EncodeToString(d[:]), base64.RawURLEncoding.EncodeToString(d[:]),
	}
	for _, k := range keys {
		dump := k + "\x00" + raw.Dump(ctx, k).Val()
		for _, f := range forbidden {
			if strings.Contains(dump, f) || strings.Contains(strings.ToLower(dump), strings.ToLower(f)) {
				t.Fatalf("key %q or its value contains the token or its digest", k)
			}
		}
	}

	// The same digest under another secret names another key: a Store
	// without our secret finds nothing.
	other, _ := newStore(t, srv.URL(), func(c *Config) { c.KeySecret = []byte("another-secret-of-32-bytes-long!") })
	if _, ok := other.Get(ctx, d); ok {
		t.Fatal("a Store with another secret reads the value")
	}
	if other.ID(d) == s.ID(d) {
		t.Fatal("IDs do not depend on the secret")
	}
}

func TestDeriveKeySecret(t *testing.T) {
	a, err := DeriveKeySecret("introspection-client-secret")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DeriveKeySecret("introspection-client-secret")
	c, _ := DeriveKeySecret("introspection-client-secreT")
	if len(a) != 32 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("derivation not a deterministic 32-byte function of the secret")
	}
	if bytes.Contains(a, []byte("introspection")) {
		t.Fatal("derived key contains the secret")
	}
	if _, err := DeriveKeySecret("short"); err == nil {
		t.Fatal("short secret accepted")
	}
}

// REDIS_URL carries a password and a database number; both are honoured,
// and a wrong password is a clean "unavailable" that does not repeat it.
func TestPasswordAndDatabase(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "hunter2-pw")
	ctx := context.Background()
	s, _ := newStore(t, "redis://:hunter2-pw@"+srv.Addr+"/3")
	if !s.Healthy() {
		t.Fatal("not healthy with the right password")
	}
	d := digest("db-token")
	s.Set(ctx, d, []byte("v"), time.Minute)
	id := s.ID(d)
	for db, want := range map[int]int64{3: 1, 0: 0} {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "hunter2-pw", DB: db})
		n := c.Exists(ctx, s.keys.value(&id)).Val()
		_ = c.Close()
		if n != want {
			t.Errorf("db %d holds the key %d times, want %d", db, n, want)
		}
	}

	bad, _ := newStore(t, "redis://:wrong-pw@"+srv.Addr+"/3")
	err := bad.Ping(ctx)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("Ping with a wrong password = %v, want *UnavailableError", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") || strings.Contains(bad.String(), "wrong-pw") {
		t.Fatalf("password repeated: %v / %s", err, bad)
	}
	if _, ok := bad.Get(ctx, d); ok {
		t.Fatal("hit without authenticating")
	}
}

func rawClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Fetch tells a miss from an unavailable Redis, so that a request pays for
// a failing Redis once; IDs computes the same IDs as a Store without one.
func TestFetchAndIDs(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := newStore(t, srv.URL(), func(c *Config) { c.Timeout = 200 * time.Millisecond })
	ctx := context.Background()
	d := digest("fetch")
	if _, ok, err := s.Fetch(ctx, d); ok || err != nil {
		t.Fatalf("Fetch of an absent key = %v %v, want a plain miss", ok, err)
	}
	s.Set(ctx, d, []byte("v"), time.Minute)
	if h, ok, err := s.Fetch(ctx, d); !ok || err != nil || string(h.Value) != "v" {
		t.Fatalf("Fetch = %q %v %v", h.Value, ok, err)
	}
	ids, err := NewIDs(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if ids.ID(d) != s.ID(d) {
		t.Fatal("IDs and Store disagree on an ID")
	}
	if _, err := NewIDs([]byte("short")); err == nil {
		t.Fatal("NewIDs accepted a short secret")
	}

	srv.Kill()
	var ue *UnavailableError
	if _, ok, err := s.Fetch(ctx, d); ok || !errors.As(err, &ue) {
		t.Fatalf("Fetch with Redis down = %v %v, want *UnavailableError", ok, err)
	}
	eventually(t, 5*time.Second, "circuit to open", func() bool {
		_, _, _ = s.Fetch(ctx, d)
		return !s.Healthy()
	})
	if _, _, err := s.Fetch(ctx, d); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Fetch with the circuit open = %v, want ErrCircuitOpen", err)
	}
}
