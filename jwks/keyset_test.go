package jwks

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

type countingObserver struct {
	mu       sync.Mutex
	outcomes []FetchOutcome
}

func (o *countingObserver) JWKSFetch(outcome FetchOutcome, _ time.Duration) {
	o.mu.Lock()
	o.outcomes = append(o.outcomes, outcome)
	o.mu.Unlock()
}

func (o *countingObserver) last() FetchOutcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.outcomes) == 0 {
		return ""
	}
	return o.outcomes[len(o.outcomes)-1]
}

func newKeySet(t *testing.T, cfg KeySetConfig) *KeySet {
	t.Helper()
	ks, err := NewKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	return ks
}

// However many tokens name unknown keys, the JWKS is fetched at most once
// per MinRefresh; a rotation at the issuer is picked up by that one fetch.
func TestUnknownKIDRefreshGate(t *testing.T) {
	iss := jwtaccesstest.New(t)
	clk := newFakeClock()
	ks := newKeySet(t, KeySetConfig{URL: iss.JWKSURL(), Now: clk.Now, MinRefresh: 30 * time.Second})
	if err := ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := iss.JWKSCalls(); n != 1 {
		t.Fatalf("JWKS calls after the first fetch: %d", n)
	}
	// Within MinRefresh of the first fetch: no fetch at all.
	lookupMany := func(n int, kid func(int) string) (found atomic.Int64) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := ks.Lookup(t.Context(), kid(i), jose.RS256); err == nil {
					found.Add(1)
				}
			})
		}
		wg.Wait()
		return
	}
	unknown := func(i int) string { return fmt.Sprintf("unknown-%d", i) }
	if f := lookupMany(1000, unknown); f.Load() != 0 {
		t.Fatalf("unknown kids found: %d", f.Load())
	}
	if n := iss.JWKSCalls(); n != 1 {
		t.Fatalf("1000 unknown kids within MinRefresh caused %d fetches, want none", n-1)
	}
	// The issuer rotates; past MinRefresh, 1000 tokens with unknown kids
	// (half of them the new key) cause exactly one fetch.
	newKey := iss.Rotate(jose.RS256)
	clk.Advance(30 * time.Second)
	f := lookupMany(1000, func(i int) string {
		if i%2 == 0 {
			return newKey.KID
		}
		return unknown(i)
	})
	if n := iss.JWKSCalls(); n != 2 {
		t.Fatalf("1000 unknown kids past MinRefresh caused %d fetches, want 1", n-1)
	}
	if f.Load() < 1 {
		t.Fatal("the rotated key was not found")
	}
	if _, err := ks.Lookup(t.Context(), newKey.KID, jose.RS256); err != nil {
		t.Fatalf("rotated key after the refresh: %v", err)
	}
	var ke *KeyError
	if _, err := ks.Lookup(t.Context(), "nope", jose.RS256); !errors.As(err, &ke) || ke.Unavailable != nil {
		t.Fatalf("unknown kid with a healthy JWKS: %v, want a KeyError without Unavailable", err)
	}
}

// A JWKS outage keeps the known keys; an unknown key is then "unavailable",
// not "invalid".
func TestOutageKeepsKeys(t *testing.T) {
	iss := jwtaccesstest.New(t)
	clk := newFakeClock()
	obs := &countingObserver{}
	ks := newKeySet(t, KeySetConfig{URL: iss.JWKSURL(), Now: clk.Now, Observer: obs})
	if err := ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	iss.SetJWKSFailure(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	if err := ks.Refresh(t.Context()); err == nil {
		t.Fatal("refresh during the outage succeeded")
	}
	if obs.last() != FetchStatus {
		t.Errorf("outcome %q, want status", obs.last())
	}
	if _, err := ks.Lookup(t.Context(), iss.Key().KID, jose.RS256); err != nil {
		t.Fatalf("known key during the outage: %v", err)
	}
	clk.Advance(time.Minute)
	var ke *KeyError
	if _, err := ks.Lookup(t.Context(), "rotated-during-outage", jose.RS256); !errors.As(err, &ke) || ke.Unavailable == nil {
		t.Fatalf("unknown kid during the outage: %v, want KeyError with Unavailable", err)
	}
	if st := ks.Status(); st.LastErr == nil || len(st.Keys) != 1 {
		t.Errorf("status %+v", st)
	}
	if ks.Ready() != nil {
		t.Error("not ready during an outage although keys are held")
	}
}

func TestFetchFailures(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request) bool
		want    FetchOutcome
		errWant string
	}{
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return true
		}, FetchStatus, "HTTP 302"},
		{"too large", func(w http.ResponseWriter, _ *http.Request) bool {
			_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 2048) + `]}`))
			return true
		}, FetchBadResponse, "larger than"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) bool {
			_, _ = w.Write([]byte(`<html>`))
			return true
		}, FetchBadResponse, "not a JSON object"},
		{"no usable key", func(w http.ResponseWriter, _ *http.Request) bool {
			_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`))
			return true
		}, FetchBadResponse, "no usable signing key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			iss := jwtaccesstest.New(t)
			iss.SetJWKSFailure(tt.handler)
			obs := &countingObserver{}
			ks := newKeySet(t, KeySetConfig{URL: iss.JWKSURL(), MaxBytes: 1024, Observer: obs})
			err := ks.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.errWant) {
				t.Errorf("error %v, want %q", err, tt.errWant)
			}
			if obs.last() != tt.want {
				t.Errorf("outcome %q, want %q", obs.last(), tt.want)
			}
			if ks.Ready() == nil {
				t.Error("ready without keys")
			}
		})
	}
	if _, err := NewKeySet(KeySetConfig{URL: "http://idp.example.com/jwks"}); err == nil {
		t.Error("http JWKS URL on a public host accepted")
	}
	if _, err := NewKeySet(KeySetConfig{URL: "https://idp.example.com/jwks", MinRefresh: -1}); err == nil {
		t.Error("negative MinRefresh accepted")
	}
}

// The background loop fetches at once, retries failures with backoff, and
// refreshes at 90% of the answer's lifetime (max-age, bounded).
func TestBackgroundRefresh(t *testing.T) {
	iss := jwtaccesstest.New(t, jwtaccesstest.WithCacheControl("public, max-age=600"))
	fail := atomic.Bool{}
	fail.Store(true)
	iss.SetJWKSFailure(func(w http.ResponseWriter, _ *http.Request) bool {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	ks, err := NewKeySet(KeySetConfig{URL: iss.JWKSURL()})
	if err != nil {
		t.Fatal(err)
	}
	waits := make(chan time.Duration)
	proceed := make(chan bool)
	ks.SetWait(func(ctx context.Context, d time.Duration) bool {
		select {
		case waits <- d:
		case <-ctx.Done():
			return false
		}
		select {
		case ok := <-proceed:
			return ok
		case <-ctx.Done():
			return false
		}
	})
	ks.Start()
	ks.Start() // a second Start does nothing
	defer ks.Close()
	// Two failures: backoff around 100ms, then around 200ms.
	for i, base := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		d := <-waits
		if d < base/2 || d > base*3/2 {
			t.Errorf("retry %d waits %v, want within [%v, %v]", i, d, base/2, base*3/2)
		}
		if i == 1 {
			fail.Store(false)
		}
		proceed <- true
	}
	// Success: the next refresh at 90% of max-age=600.
	if d := <-waits; d != 540*time.Second {
		t.Errorf("after a fetch with max-age=600 the loop waits %v, want 9m0s", d)
	}
	if ks.Ready() != nil || iss.JWKSCalls() != 3 {
		t.Errorf("ready %v after %d calls", ks.Ready(), iss.JWKSCalls())
	}
	proceed <- true
	<-waits // the refresh happened
	if iss.JWKSCalls() != 4 {
		t.Errorf("JWKS calls %d, want 4", iss.JWKSCalls())
	}
	proceed <- false
}

func TestLifetime(t *testing.T) {
	ks, err := NewKeySet(KeySetConfig{URL: "https://idp.example.com/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	for _, tt := range []struct {
		cc   []string
		want time.Duration
	}{
		{nil, DefaultLifetime},
		{[]string{"max-age=600"}, 10 * time.Minute},
		{[]string{"public, MAX-AGE=7200, must-revalidate"}, 2 * time.Hour},
		{[]string{"max-age=1"}, DefaultMinLifetime},
		{[]string{"max-age=31536000"}, DefaultMaxLifetime},
		{[]string{"max-age=99999999999999999999"}, DefaultLifetime},
		{[]string{"no-cache"}, DefaultMinLifetime},
		{[]string{"max-age=600", "no-store"}, DefaultMinLifetime},
		{[]string{"max-age=-5"}, DefaultLifetime},
		{[]string{`max-age="120"`}, 2 * time.Minute},
	} {
		if got := ks.lifetime(tt.cc); got != tt.want {
			t.Errorf("lifetime(%q) = %v, want %v", tt.cc, got, tt.want)
		}
	}
}

func TestParseKeySet(t *testing.T) {
	rsaKey := jwtaccesstest.NewKey(t, jose.RS256, "rsa")
	ecKey := jwtaccesstest.NewKey(t, jose.ES256, "ec")
	edKey := jwtaccesstest.NewKey(t, jose.EdDSA, "ed")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	js := func(k jose.JSONWebKey) string {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	enc := rsaKey.JWK()
	enc.Use = "enc"
	private := jose.JSONWebKey{Key: rsaKey.Private, KeyID: "priv", Use: "sig"}
	weakKey := jose.JSONWebKey{Key: &weak.PublicKey, KeyID: "weak"}
	for _, tt := range []struct {
		name      string
		doc       string
		kept      []string
		nSkipped  int
		errSubstr string
	}{
		{"three key types", `{"keys":[` + js(rsaKey.JWK()) + `,` + js(ecKey.JWK()) + `,` + js(edKey.JWK()) + `]}`, []string{"rsa", "ec", "ed"}, 0, ""},
		{"unknown members ignored", `{"keys":[` + js(rsaKey.JWK()) + `],"extra":1}`, []string{"rsa"}, 0, ""},
		{"symmetric key skipped", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"hmac"},` + js(rsaKey.JWK()) + `]}`, []string{"rsa"}, 1, ""},
		{"private key refused", `{"keys":[` + js(private) + `,` + js(ecKey.JWK()) + `]}`, []string{"ec"}, 1, ""},
		{"encryption key skipped", `{"keys":[` + js(enc) + `,` + js(ecKey.JWK()) + `]}`, []string{"ec"}, 1, ""},
		{"weak RSA skipped", `{"keys":[` + js(weakKey) + `,` + js(ecKey.JWK()) + `]}`, []string{"ec"}, 1, ""},
		{"unknown kty skipped", `{"keys":[{"kty":"ML-DSA","kid":"pq"},` + js(ecKey.JWK()) + `]}`, []string{"ec"}, 1, ""},
		{"only unusable keys", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, nil, 1, "no usable signing key"},
		{"no keys member", `{"jwks":[]}`, nil, 0, "no \"keys\" array"},
		{"not an object", `[]`, nil, 0, "not a JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys, skipped, err := ParseKeySet([]byte(tt.doc), 10)
			if tt.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSubstr) {
					t.Fatalf("error %v, want %q", err, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.KeyID)
				if !k.IsPublic() {
					t.Errorf("key %s is not public", k.KeyID)
				}
			}
			if strings.Join(kids, ",") != strings.Join(tt.kept, ",") || len(skipped) != tt.nSkipped {
				t.Errorf("kept %v skipped %q, want %v and %d skipped", kids, skipped, tt.kept, tt.nSkipped)
			}
		})
	}
	// MaxKeys bounds what is kept.
	var many []string
	for range 5 {
		many = append(many, js(ecKey.JWK()))
	}
	keys, skipped, err := ParseKeySet([]byte(`{"keys":[`+strings.Join(many, ",")+`]}`), 2)
	if err != nil || len(keys) != 2 || len(skipped) != 1 {
		t.Errorf("MaxKeys 2 of 5: %d kept, %q skipped, %v", len(keys), skipped, err)
	}
}

// FuzzParseKeySet: whatever the JWKS endpoint sends, ParseKeySet neither
// panics nor keeps a key that is private, symmetric or not for signing,
// whatever the rules a KeySetConfig sets.
func FuzzParseKeySet(f *testing.F) {
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k"}]}`, false, false)
	f.Add(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, false, false)
	f.Add(`{"keys":[{"kty":"oct","k":"AAAA"}]}`, false, false)
	f.Add(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"sig"}]}`, false, false)
	f.Add(`{"keys":null}`, false, false)
	f.Add(`{}`, false, false)
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI","kid":"k"}]}`, true, true)
	f.Fuzz(func(t *testing.T, doc string, publicHalf, refuseAboveMax bool) {
		keys, _, exposed, err := parseKeySet([]byte(doc), parseRules{maxKeys: 10, publicHalf: publicHalf, refuseAboveMax: refuseAboveMax})
		if len(exposed) > len(keys) || (!publicHalf && len(exposed) > 0) {
			t.Fatalf("%d exposed private keys for %d kept (publicHalf %v)", len(exposed), len(keys), publicHalf)
		}
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for _, k := range keys {
			if !k.IsPublic() || (k.Use != "" && k.Use != "sig") || unusable(&k) != "" {
				t.Fatalf("kept an unusable key: %+v", k)
			}
		}
		if len(keys) > 10 {
			t.Fatalf("kept %d keys, bound 10", len(keys))
		}
	})
}

// TestFits: a key verifies only its own algorithms, whether or not the JWKS
// names its "alg" (Entra's and many others' keys do not), so that neither
// an HMAC nor another curve's or key type's algorithm can be used with it.
func TestFits(t *testing.T) {
	rsaKey := jwtaccesstest.NewKey(t, jose.RS256, "r").JWK()
	p256 := jwtaccesstest.NewKey(t, jose.ES256, "e").JWK()
	p384 := jwtaccesstest.NewKey(t, jose.ES384, "e3").JWK()
	ed := jwtaccesstest.NewKey(t, jose.EdDSA, "d").JWK()
	for _, k := range []*jose.JSONWebKey{&rsaKey, &p256, &p384, &ed} {
		k.Algorithm = "" // as most JWKS publish them
	}
	all := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.HS256, "none"}
	want := map[*jose.JSONWebKey][]jose.SignatureAlgorithm{
		&rsaKey: {jose.RS256, jose.PS256, jose.RS512},
		&p256:   {jose.ES256},
		&p384:   {jose.ES384},
		&ed:     {jose.EdDSA},
	}
	for k, algs := range want {
		for _, a := range all {
			if got, w := Fits(k, a), slicesContains(algs, a); got != w {
				t.Errorf("Fits(%s, %s) = %v, want %v", keyTypeName(k), a, got, w)
			}
		}
	}
	// A key's own "alg" narrows it further.
	rsaKey.Algorithm = "RS256"
	if Fits(&rsaKey, jose.PS256) {
		t.Error("a key with alg RS256 fits PS256")
	}
}

func slicesContains(s []jose.SignatureAlgorithm, a jose.SignatureAlgorithm) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

func keyTypeName(k *jose.JSONWebKey) string { return fmt.Sprintf("%T(%s)", k.Key, k.KeyID) }
