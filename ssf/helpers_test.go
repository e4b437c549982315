package ssf_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

// aud is the receiver's audience in these tests: the gateway's resource.
const aud = "https://mcp.example.com/mcp"

// testKeys are generated once per test binary: RSA generation is slow.
var testKeys = sync.OnceValue(func() map[string]ssftest.Key {
	m := map[string]ssftest.Key{}
	for _, k := range []struct{ name, alg, kid string }{
		{"rsa", "RS256", "rsa-1"},
		{"ps", "PS256", "ps-1"},
		{"ec", "ES256", "ec-1"},
		{"ed", "EdDSA", "ed-1"},
		{"rsa2", "RS256", "rsa-2"},
		// A key nobody published, with the kid of the real one: what an
		// attacker signs with.
		{"evil", "RS256", "rsa-1"},
		{"evil-ec", "ES256", "ec-1"},
	} {
		key, err := ssftest.NewKey(k.alg, k.kid)
		if err != nil {
			panic(err)
		}
		m[k.name] = key
	}
	return m
})

func key(name string) ssftest.Key {
	k, ok := testKeys()[name]
	if !ok {
		panic("no test key " + name)
	}
	return k
}

// clock is an injected clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_750_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is an OnRevocation that remembers what it was given and can be
// told to fail.
type recorder struct {
	mu   sync.Mutex
	revs []ssf.Revocation
	fail error
}

func (r *recorder) OnRevocation(_ context.Context, rev ssf.Revocation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revs = append(r.revs, rev)
	return r.fail
}

func (r *recorder) calls() []ssf.Revocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ssf.Revocation(nil), r.revs...)
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

type fixture struct {
	tr  *ssftest.Transmitter
	rcv *ssf.Receiver
	rec *recorder
	clk *clock
}

// newFixture starts a transmitter signing with keys (default: the RSA key
// and the EC key, both published) and a receiver for it that discovers its
// keys from its metadata; mod may change the receiver's Config.
func newFixture(t testing.TB, mod func(*ssf.Config), keys ...ssftest.Key) *fixture {
	t.Helper()
	if len(keys) == 0 {
		keys = []ssftest.Key{key("rsa"), key("ec")}
	}
	f := &fixture{tr: ssftest.Start(t, keys...), rec: &recorder{}, clk: newClock()}
	f.tr.Now = f.clk.Now
	cfg := ssf.Config{
		Issuer:       f.tr.Issuer(),
		Audience:     []string{aud},
		OnRevocation: f.rec.OnRevocation,
		Now:          f.clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	rcv, err := ssf.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rcv.Close)
	f.rcv = rcv
	return f
}

// claims is a standard SET from the fixture's transmitter.
func (f *fixture) claims(event string, subject map[string]any) map[string]any {
	return f.tr.Claims(aud, event, subject)
}

// wantRefused checks err is a *RefusedError with code and reason.
func wantRefused(t *testing.T, err error, code ssf.Code, reason ssf.Reason) {
	t.Helper()
	var ref *ssf.RefusedError
	if !errors.As(err, &ref) {
		t.Fatalf("err = %v (%T), want *RefusedError %s/%s", err, err, code, reason)
	}
	if ref.Code != code || ref.Reason != reason {
		t.Fatalf("refused %s/%s (%s), want %s/%s", ref.Code, ref.Reason, ref.Description, code, reason)
	}
	if ref.Description == "" {
		t.Fatal("refusal without description")
	}
}

// wantUnavailable checks err is an *UnavailableError with reason.
func wantUnavailable(t *testing.T, err error, reason ssf.Reason) *ssf.UnavailableError {
	t.Helper()
	var un *ssf.UnavailableError
	if !errors.As(err, &un) {
		t.Fatalf("err = %v (%T), want *UnavailableError %s", err, err, reason)
	}
	if un.Reason != reason {
		t.Fatalf("unavailable %s (%v), want %s", un.Reason, un.Err, reason)
	}
	if un.RetryAfter <= 0 {
		t.Fatalf("RetryAfter = %v", un.RetryAfter)
	}
	return un
}
