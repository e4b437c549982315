package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/jwtaccess/jwtaccesstest"
)

// keyError is Lookup's error as a *KeyError, or fails the test.
func keyError(t *testing.T, err error) *KeyError {
	t.Helper()
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("err %v (%T), want *KeyError", err, err)
	}
	return ke
}

// An unknown kid inside MinRefresh is Deferred, with the rest of
// MinRefresh as RetryAfter; past it, the lookup fetches and the kid is
// plainly unknown.
func TestLookupDeferred(t *testing.T) {
	iss := jwtaccesstest.New(t)
	clk := newFakeClock()
	ks := newKeySet(t, KeySetConfig{URL: iss.JWKSURL(), Now: clk.Now, MinRefresh: 30 * time.Second})
	if err := ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	_, err := ks.Lookup(t.Context(), "unknown", jose.RS256)
	if ke := keyError(t, err); !ke.Deferred || ke.RetryAfter != 20*time.Second || ke.Unavailable != nil {
		t.Fatalf("inside MinRefresh: %+v, want Deferred, RetryAfter 20s", ke)
	}
	if n := iss.JWKSCalls(); n != 1 {
		t.Fatalf("JWKS calls %d, want 1", n)
	}
	clk.Advance(20 * time.Second)
	_, err = ks.Lookup(t.Context(), "unknown", jose.RS256)
	if ke := keyError(t, err); ke.Deferred || ke.RetryAfter != 30*time.Second || ke.Unavailable != nil {
		t.Fatalf("past MinRefresh: %+v, want fetched, RetryAfter 30s", ke)
	}
	if n := iss.JWKSCalls(); n != 2 {
		t.Fatalf("JWKS calls %d, want 2", n)
	}
}

// A KeySet that is not started refreshes keys past their lifetime on use
// (under the MinRefresh gate), keeping them if that fails; a started one
// leaves that to its background loop.
func TestLazyRefresh(t *testing.T) {
	const lifetime = 10 * time.Minute
	for _, tc := range []struct {
		name      string
		started   bool
		failing   bool
		advance   time.Duration
		wantCalls int64
		wantFound bool // the withdrawn key is still found
	}{
		{"fresh: no fetch", false, false, lifetime - time.Second, 1, true},
		{"stale: fetched, withdrawn key gone", false, false, lifetime, 2, false},
		{"stale, fetch fails: old keys kept", false, true, lifetime, 2, true},
		{"started: the loop refreshes, not the lookup", true, false, lifetime, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := jwtaccesstest.New(t, jwtaccesstest.WithCacheControl("max-age=600"))
			old := iss.Key()
			clk := newFakeClock()
			ks := newKeySet(t, KeySetConfig{URL: iss.JWKSURL(), Now: clk.Now})
			if tc.started {
				fetched := make(chan struct{})
				ks.SetWait(func(ctx context.Context, _ time.Duration) bool {
					close(fetched)
					<-ctx.Done()
					return false
				})
				ks.Start()
				<-fetched
			} else if err := ks.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			iss.Rotate(jose.RS256)
			iss.Unpublish(old.KID)
			if tc.failing {
				iss.SetJWKSFailure(func(w http.ResponseWriter, _ *http.Request) bool {
					w.WriteHeader(http.StatusServiceUnavailable)
					return true
				})
			}
			clk.Advance(tc.advance)
			_, err := ks.Lookup(t.Context(), old.KID, jose.RS256)
			if found := err == nil; found != tc.wantFound {
				t.Errorf("withdrawn key found %v (%v), want %v", found, err, tc.wantFound)
			}
			if n := iss.JWKSCalls(); n != tc.wantCalls {
				t.Errorf("JWKS calls %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

// Without a kid, up to KeylessCandidates keys fitting alg are returned;
// more is no match (and other algorithms' keys do not count).
func TestKeylessCandidates(t *testing.T) {
	rsa := func(kid string) jose.JSONWebKey { return jwtaccesstest.NewKey(t, jose.RS256, kid).JWK() }
	ec := jwtaccesstest.NewKey(t, jose.ES256, "ec").JWK()
	for _, tc := range []struct {
		name    string
		keys    []jose.JSONWebKey
		kid     string
		keyless int
		want    int
	}{
		{"one key, no kid", []jose.JSONWebKey{rsa("a"), ec}, "", 1, 1},
		{"two keys, no kid, default bound", []jose.JSONWebKey{rsa("a"), rsa("b"), ec}, "", 1, 0},
		{"two keys, no kid, bound 4", []jose.JSONWebKey{rsa("a"), rsa("b"), ec}, "", 4, 2},
		{"five keys, no kid, bound 4", []jose.JSONWebKey{rsa("a"), rsa("b"), rsa("c"), rsa("d"), rsa("e")}, "", 4, 0},
		{"kid names one of many", []jose.JSONWebKey{rsa("a"), rsa("b"), rsa("c")}, "b", 1, 1},
		{"kid unknown", []jose.JSONWebKey{rsa("a")}, "z", 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &snapshot{keys: tc.keys}
			if got := s.candidates(tc.kid, jose.RS256, tc.keyless); len(got) != tc.want {
				t.Errorf("%d candidates, want %d", len(got), tc.want)
			}
		})
	}
	if _, err := NewKeySet(KeySetConfig{URL: "https://idp.example.com/jwks", KeylessCandidates: -1}); err == nil {
		t.Error("negative KeylessCandidates accepted")
	}
}

// The rules a KeySetConfig may change: a private key's public half kept
// (never a symmetric key's), and too many entries failing the document.
func TestParseRules(t *testing.T) {
	rsaKey := jwtaccesstest.NewKey(t, jose.RS256, "rsa")
	ecKey := jwtaccesstest.NewKey(t, jose.ES256, "ec")
	js := func(k jose.JSONWebKey) string {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	private := js(jose.JSONWebKey{Key: rsaKey.Private, KeyID: "priv", Use: "sig"})
	hmac := `{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"hmac"}`
	three := `{"keys":[` + js(ecKey.JWK()) + `,` + js(ecKey.JWK()) + `,` + js(ecKey.JWK()) + `]}`
	for _, tc := range []struct {
		name      string
		doc       string
		rules     parseRules
		kept      int
		skipped   int
		exposed   int
		errSubstr string
	}{
		{"private refused by default", `{"keys":[` + private + `,` + js(ecKey.JWK()) + `]}`, parseRules{maxKeys: 10}, 1, 1, 0, ""},
		{"private: public half kept, and said", `{"keys":[` + private + `,` + js(ecKey.JWK()) + `]}`, parseRules{maxKeys: 10, publicHalf: true}, 2, 0, 1, ""},
		{"symmetric refused even so", `{"keys":[` + hmac + `,` + js(ecKey.JWK()) + `]}`, parseRules{maxKeys: 10, publicHalf: true}, 1, 1, 0, ""},
		{"above MaxKeys truncated by default", three, parseRules{maxKeys: 2}, 2, 1, 0, ""},
		{"above MaxKeys refused", three, parseRules{maxKeys: 2, refuseAboveMax: true}, 0, 0, 0, "3 keys, more than 2"},
		{"at MaxKeys accepted", three, parseRules{maxKeys: 3, refuseAboveMax: true}, 3, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, skipped, exposed, err := parseKeySet([]byte(tc.doc), tc.rules)
			if tc.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("error %v, want %q", err, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != tc.kept || len(skipped) != tc.skipped || len(exposed) != tc.exposed {
				t.Fatalf("kept %d skipped %q exposed %q, want %d, %d and %d", len(keys), skipped, exposed, tc.kept, tc.skipped, tc.exposed)
			}
			for _, k := range keys {
				if !k.IsPublic() || unusable(&k) != "" {
					t.Errorf("kept a key that is not a usable public key: %s", k.KeyID)
				}
			}
		})
	}
}

// ResolveURL is asked where the JWKS is on every fetch; its answer must be
// a URL the gateway may fetch, and its failure is the fetch's.
func TestResolveURL(t *testing.T) {
	iss := jwtaccesstest.New(t)
	if _, err := NewKeySet(KeySetConfig{URL: iss.JWKSURL(), ResolveURL: func(context.Context) (string, error) { return iss.JWKSURL(), nil }}); err == nil {
		t.Error("URL and ResolveURL both accepted")
	}
	for _, tc := range []struct {
		name    string
		resolve func(context.Context) (string, error)
		outcome FetchOutcome
		errWant string
	}{
		{"resolved", func(context.Context) (string, error) { return iss.JWKSURL(), nil }, FetchOK, ""},
		{"plain http off loopback", func(context.Context) (string, error) { return "http://idp.example.com/jwks", nil }, FetchBadResponse, "must use https"},
		{"resolver refuses", func(context.Context) (string, error) { return "", errors.New("metadata issuer differs") }, FetchBadResponse, "metadata issuer differs"},
		{"resolver cannot connect", func(context.Context) (string, error) {
			return "", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}, FetchNetwork, "connection refused"},
		{"resolver times out", func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() }, FetchTimeout, "deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			obs := &countingObserver{}
			ks := newKeySet(t, KeySetConfig{Observer: obs, Timeout: 50 * time.Millisecond, ResolveURL: func(ctx context.Context) (string, error) {
				calls.Add(1)
				return tc.resolve(ctx)
			}})
			if ks.URL() != "" {
				t.Errorf("URL before a fetch: %q", ks.URL())
			}
			err := ks.Refresh(t.Context())
			if tc.errWant == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ks.URL() != iss.JWKSURL() {
					t.Errorf("URL %q, want %q", ks.URL(), iss.JWKSURL())
				}
				if _, err := ks.Lookup(t.Context(), iss.Key().KID, jose.RS256); err != nil {
					t.Errorf("the resolved JWKS's key: %v", err)
				}
				if err := ks.Refresh(t.Context()); err != nil || calls.Load() != 2 {
					t.Errorf("second fetch: %v, resolver called %d times, want 2", err, calls.Load())
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("error %v, want %q", err, tc.errWant)
			}
			if obs.last() != tc.outcome {
				t.Errorf("outcome %q, want %q", obs.last(), tc.outcome)
			}
		})
	}
}
