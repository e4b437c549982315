package ssf_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

// TestDiscoveryFetchesOnce: the metadata and JWKS are fetched once for
// many SETs, and Refresh describes them.
func TestDiscoveryFetchesOnce(t *testing.T) {
	f := newFixture(t, nil)
	for range 5 {
		set := f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
		if _, err := f.rcv.Receive(context.Background(), []byte(set)); err != nil {
			t.Fatal(err)
		}
	}
	if md, jwks := f.tr.Requests(); md != 1 || jwks != 1 {
		t.Fatalf("fetches: metadata %d, jwks %d; want 1, 1", md, jwks)
	}
	st, err := f.rcv.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.MetadataURL != f.tr.MetadataURL() || st.JWKSURL != f.tr.JWKSURL() || st.SpecVersion != "1_0" ||
		!slices.Equal(st.KeyIDs, []string{"rsa-1", "ec-1"}) || len(st.Warnings) != 0 || !st.FetchedAt.Equal(f.clk.Now()) {
		t.Fatalf("status %+v", st)
	}
	if md, jwks := f.tr.Requests(); md != 2 || jwks != 2 {
		t.Fatalf("Refresh did not refetch: metadata %d, jwks %d", md, jwks)
	}
}

func TestExplicitJWKSURLSkipsMetadata(t *testing.T) {
	f := newFixture(t, func(c *ssf.Config) { c.JWKSURL = c.Issuer + ssftest.JWKSPath })
	set := f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
	if _, err := f.rcv.Receive(context.Background(), []byte(set)); err != nil {
		t.Fatal(err)
	}
	if md, jwks := f.tr.Requests(); md != 0 || jwks != 1 {
		t.Fatalf("fetches: metadata %d, jwks %d; want 0, 1", md, jwks)
	}
}

// transmitterServer is a hand-written transmitter for the cases ssftest
// cannot serve: other paths, broken documents, redirects.
func transmitterServer(t *testing.T, routes map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for p, h := range routes {
		mux.HandleFunc(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func jwksJSON(keys ...ssftest.Key) []byte {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	b, _ := json.Marshal(set)
	return b
}

func writeDoc(w http.ResponseWriter, doc any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// TestRISCConfigurationFallback: a transmitter that only publishes
// /.well-known/risc-configuration (SSF 1.0 §7.2.2), with an issuer that
// has a path (the well-known segment goes between host and path, §7.2).
func TestRISCConfigurationFallback(t *testing.T) {
	var issuer string
	srv := transmitterServer(t, map[string]http.HandlerFunc{
		"GET /.well-known/risc-configuration/tenant1": func(w http.ResponseWriter, _ *http.Request) {
			writeDoc(w, map[string]any{"issuer": issuer, "jwks_uri": strings.TrimSuffix(issuer, "/tenant1") + "/keys"})
		},
		"GET /keys": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwksJSON(key("rsa"))) },
	})
	issuer = srv.URL + "/tenant1"
	rec := &recorder{}
	rcv, err := ssf.New(ssf.Config{Issuer: issuer, Audience: []string{aud}, OnRevocation: rec.OnRevocation})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	st, err := rcv.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.MetadataURL != srv.URL+"/.well-known/risc-configuration/tenant1" || !slices.Equal(st.KeyIDs, []string{"rsa-1"}) {
		t.Fatalf("status %+v", st)
	}
	set := sign(t, key("rsa"), map[string]any{"iss": issuer, "aud": aud, "iat": time.Now().Unix(), "jti": "j1",
		"events": map[string]any{ssf.EventAccountDisabled: map[string]any{"subject": ssftest.Email("a@example.com")}}})
	if revs, err := rcv.Receive(context.Background(), []byte(set)); err != nil || len(revs) != 1 {
		t.Fatalf("Receive = %+v, %v", revs, err)
	}
}

// TestKeySourceFailures: every way the transmitter's metadata or keys can
// be unusable makes Refresh fail and a SET unavailable (503, retried
// later), never accepted.
func TestKeySourceFailures(t *testing.T) {
	var redirectTargetHits atomic.Int64
	tests := []struct {
		name     string
		explicit bool // configure JWKSURL = srv.URL+"/keys" instead of discovery
		routes   func(issuer *string) map[string]http.HandlerFunc
		wantErr  string
	}{
		{name: "metadata issuer differs (SSF 1.0 §7.2.4)", wantErr: "want exactly",
			routes: func(iss *string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /.well-known/ssf-configuration": func(w http.ResponseWriter, _ *http.Request) {
					writeDoc(w, map[string]any{"issuer": "https://evil.example", "jwks_uri": *iss + "/keys"})
				}}
			}},
		{name: "metadata issuer differs by a trailing slash", wantErr: "want exactly",
			routes: func(iss *string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /.well-known/ssf-configuration": func(w http.ResponseWriter, _ *http.Request) {
					writeDoc(w, map[string]any{"issuer": *iss + "/", "jwks_uri": *iss + "/keys"})
				}}
			}},
		{name: "no jwks_uri", wantErr: "no jwks_uri",
			routes: func(iss *string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /.well-known/ssf-configuration": func(w http.ResponseWriter, _ *http.Request) {
					writeDoc(w, map[string]any{"issuer": *iss})
				}}
			}},
		{name: "jwks_uri over plain http to a remote host", wantErr: "use https",
			routes: func(iss *string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /.well-known/ssf-configuration": func(w http.ResponseWriter, _ *http.Request) {
					writeDoc(w, map[string]any{"issuer": *iss, "jwks_uri": "http://keys.example.com/jwks"})
				}}
			}},
		{name: "metadata not JSON", wantErr: "not a valid document",
			routes: func(*string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /.well-known/ssf-configuration": func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write([]byte("<html>"))
				}}
			}},
		{name: "metadata too large", wantErr: "larger than",
			routes: func(*string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /.well-known/ssf-configuration": func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write([]byte(`{"x":"` + strings.Repeat("a", 300<<10) + `"}`))
				}}
			}},
		{name: "no metadata anywhere", wantErr: "no transmitter metadata",
			routes: func(*string) map[string]http.HandlerFunc { return map[string]http.HandlerFunc{} }},
		{name: "metadata redirect is not followed", wantErr: "HTTP 302",
			routes: func(iss *string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{
					"GET /.well-known/ssf-configuration": func(w http.ResponseWriter, r *http.Request) {
						http.Redirect(w, r, "/elsewhere", http.StatusFound)
					},
					"GET /elsewhere": func(w http.ResponseWriter, _ *http.Request) {
						redirectTargetHits.Add(1)
						writeDoc(w, map[string]any{"issuer": *iss, "jwks_uri": *iss + "/keys"})
					},
				}
			}},
		{name: "JWKS answers 500", explicit: true, wantErr: "HTTP 500",
			routes: func(*string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /keys": func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "boom", http.StatusInternalServerError)
				}}
			}},
		{name: "JWKS is not a JWK Set", explicit: true, wantErr: "not a JWK Set",
			routes: func(*string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /keys": func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write(key("rsa").JWK().Key.(*rsa.PublicKey).N.Bytes())
				}}
			}},
		{name: "JWKS with too many keys", explicit: true, wantErr: "more than",
			routes: func(*string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"GET /keys": func(w http.ResponseWriter, _ *http.Request) {
					keys := make([]ssftest.Key, 65)
					for i := range keys {
						keys[i] = key("ec")
					}
					_, _ = w.Write(jwksJSON(keys...))
				}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var issuer string
			srv := transmitterServer(t, tt.routes(&issuer))
			issuer = srv.URL
			rec := &recorder{}
			cfg := ssf.Config{Issuer: issuer, Audience: []string{aud}, OnRevocation: rec.OnRevocation}
			if tt.explicit {
				cfg.JWKSURL = srv.URL + "/keys"
			}
			rcv, err := ssf.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer rcv.Close()
			if _, err := rcv.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Refresh error = %v, want one containing %q", err, tt.wantErr)
			}
			set := sign(t, key("rsa"), map[string]any{"iss": issuer, "aud": aud, "iat": time.Now().Unix(), "jti": "j1",
				"sub_id": ssftest.Opaque("o"), "events": map[string]any{ssf.EventSessionRevoked: map[string]any{}}})
			_, err = rcv.Receive(context.Background(), []byte(set))
			wantUnavailable(t, err, ssf.ReasonKeysUnavail)
			if len(rec.calls()) != 0 {
				t.Fatal("a SET was accepted without keys")
			}
		})
	}
	if n := redirectTargetHits.Load(); n != 0 {
		t.Fatalf("a redirect was followed %d times", n)
	}
}

// TestUnusableKeysAreSkipped: symmetric keys, small RSA keys, encryption
// keys and private halves are not used as published; the rest work, and a
// published private key is reported.
func TestUnusableKeysAreSkipped(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	enc := key("rsa2").JWK()
	enc.Use = "enc"
	keys := []jose.JSONWebKey{
		{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac", Algorithm: "HS256", Use: "sig"},
		{Key: small.Public(), KeyID: "small", Algorithm: "RS256", Use: "sig"},
		enc,
		{Key: key("ec").Signer, KeyID: "ec-1", Algorithm: "ES256"}, // a private key published by mistake: its public half is used
		key("rsa").JWK(),
	}
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	// One more entry the library cannot parse at all.
	body = []byte(strings.Replace(string(body), `"keys":[`, `"keys":[{"kty":"XYZ","kid":"odd"},`, 1))
	srv := transmitterServer(t, map[string]http.HandlerFunc{"GET /keys": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }})
	clk := newClock()
	rcv, err := ssf.New(ssf.Config{Issuer: srv.URL, JWKSURL: srv.URL + "/keys", Audience: []string{aud}, OnRevocation: (&recorder{}).OnRevocation, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	st, err := rcv.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.KeyIDs, []string{"ec-1", "rsa-1"}) || len(st.Warnings) != 2 || !strings.Contains(st.Warnings[0], "4 key(s)") ||
		!strings.Contains(st.Warnings[1], "1 private key(s)") || !strings.Contains(st.Warnings[1], `"ec-1"`) {
		t.Fatalf("status %+v", st)
	}
	clk.Advance(ssf.DefaultRefetchInterval) // past the Refresh, so the unknown kid is looked up again
	claims := map[string]any{"iss": srv.URL, "aud": aud, "iat": clk.Now().Unix(), "jti": "j-small",
		"sub_id": ssftest.Opaque("o"), "events": map[string]any{ssf.EventSessionRevoked: map[string]any{}}}
	_, err = rcv.Verify(context.Background(), []byte(sign(t, ssftest.Key{ID: "small", Alg: "RS256", Signer: small}, claims)))
	wantRefused(t, err, ssf.CodeInvalidKey, ssf.ReasonUnknownKey)
	if _, err := rcv.Verify(context.Background(), []byte(sign(t, key("ec"), claims))); err != nil {
		t.Fatalf("a SET signed with the usable EC key: %v", err)
	}
}

// TestRefetchIsRateLimited: an unknown kid causes one refetch; more unknown
// kids within the refetch interval cause none and are put off with
// Retry-After; after the interval, one more refetch.
func TestRefetchIsRateLimited(t *testing.T) {
	f := newFixture(t, nil)
	unknown := func() []byte {
		return []byte(sign(t, key("rsa2"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
	}
	_, err := f.rcv.Receive(context.Background(), unknown())
	wantRefused(t, err, ssf.CodeInvalidKey, ssf.ReasonUnknownKey)
	if _, jwks := f.tr.Requests(); jwks != 1 {
		t.Fatalf("jwks fetched %d times, want 1", jwks)
	}
	f.clk.Advance(10 * time.Second)
	for range 20 {
		_, err = f.rcv.Receive(context.Background(), unknown())
		un := wantUnavailable(t, err, ssf.ReasonKeysUnavail)
		if want := ssf.DefaultRefetchInterval - 10*time.Second; un.RetryAfter != want {
			t.Fatalf("RetryAfter %v, want %v", un.RetryAfter, want)
		}
	}
	// Known keys keep working meanwhile, without a fetch.
	if _, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))); err != nil {
		t.Fatal(err)
	}
	if _, jwks := f.tr.Requests(); jwks != 1 {
		t.Fatalf("jwks fetched %d times within the interval, want 1", jwks)
	}
	f.clk.Advance(ssf.DefaultRefetchInterval)
	_, err = f.rcv.Receive(context.Background(), unknown())
	wantRefused(t, err, ssf.CodeInvalidKey, ssf.ReasonUnknownKey)
	if _, jwks := f.tr.Requests(); jwks != 2 {
		t.Fatalf("jwks fetched %d times after the interval, want 2", jwks)
	}
}

// TestKeyRotation: the transmitter publishes a new key; the first SET
// signed with it makes the receiver refetch and is accepted.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.rcv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(ssf.DefaultRefetchInterval)
	f.tr.Publish(key("rsa"), key("rsa2"))
	set := sign(t, key("rsa2"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
	if _, err := f.rcv.Receive(context.Background(), []byte(set)); err != nil {
		t.Fatal(err)
	}
}

// TestRotationInsideRefetchIntervalIsRetried: a new kid that arrives just
// after a refetch is put off (503), not refused, so the transmitter's retry
// succeeds once the interval has passed.
func TestRotationInsideRefetchIntervalIsRetried(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.rcv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// An unknown kid (an attacker's, say) triggers the one refetch allowed.
	_, err := f.rcv.Receive(context.Background(), []byte(sign(t, key("evil-ec"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithKey(key("evil-ec")))))
	if err == nil {
		t.Fatal("forged SET accepted")
	}
	f.clk.Advance(time.Second)
	f.tr.Publish(key("rsa"), key("rsa2"))
	set := []byte(sign(t, key("rsa2"), f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
	_, err = f.rcv.Receive(context.Background(), set)
	un := wantUnavailable(t, err, ssf.ReasonKeysUnavail)
	f.clk.Advance(un.RetryAfter)
	if _, err := f.rcv.Receive(context.Background(), set); err != nil {
		t.Fatalf("retry after %v: %v", un.RetryAfter, err)
	}
}

// TestWithdrawnKeyStopsWorking: once KeyMaxAge has passed, keys are
// refetched and a key the transmitter no longer publishes is refused.
func TestWithdrawnKeyStopsWorking(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.rcv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.tr.Publish(key("ec"))
	f.clk.Advance(ssf.DefaultKeyMaxAge)
	_, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))))
	wantRefused(t, err, ssf.CodeInvalidKey, ssf.ReasonUnknownKey)
}

// TestOldKeysServeWhileTransmitterIsDown: when the refetch after KeyMaxAge
// fails, the keys fetched before keep verifying.
func TestOldKeysServeWhileTransmitterIsDown(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.rcv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.tr.Fail(http.StatusServiceUnavailable)
	f.clk.Advance(ssf.DefaultKeyMaxAge)
	if _, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))); err != nil {
		t.Fatal(err)
	}
}

// TestTransmitterDownAtStart: no keys yet and the transmitter is down: the
// SET is put off, then accepted once the transmitter is back.
func TestTransmitterDownAtStart(t *testing.T) {
	f := newFixture(t, nil)
	f.tr.Fail(http.StatusBadGateway)
	set := []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
	_, err := f.rcv.Receive(context.Background(), set)
	un := wantUnavailable(t, err, ssf.ReasonKeysUnavail)
	f.tr.Fail(0)
	f.clk.Advance(un.RetryAfter)
	if _, err := f.rcv.Receive(context.Background(), set); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentFirstSETsShareOneFetch: SETs arriving together before any
// key is known cause one metadata and one JWKS fetch.
func TestConcurrentFirstSETsShareOneFetch(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	var hits atomic.Int64
	srv := transmitterServer(t, map[string]http.HandlerFunc{"GET /keys": func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		_, _ = w.Write(jwksJSON(key("rsa")))
	}})
	rec := &recorder{}
	rcv, err := ssf.New(ssf.Config{Issuer: srv.URL, JWKSURL: srv.URL + "/keys", Audience: []string{aud}, OnRevocation: rec.OnRevocation})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// The first caller gives up while the fetch is in flight; the fetch
	// must go on for the others.
	impatient, cancel := context.WithCancel(context.Background())
	wg.Go(func() {
		set := sign(t, key("rsa"), map[string]any{"iss": srv.URL, "aud": aud, "iat": time.Now().Unix(), "jti": "impatient",
			"sub_id": ssftest.Opaque("o"), "events": map[string]any{ssf.EventSessionRevoked: map[string]any{}}})
		if _, err := rcv.Receive(impatient, []byte(set)); err == nil {
			errs <- err
		}
	})
	<-arrived
	cancel()
	for i := range n {
		set := sign(t, key("rsa"), map[string]any{"iss": srv.URL, "aud": aud, "iat": time.Now().Unix(), "jti": "j" + string(rune('a'+i)),
			"sub_id": ssftest.Opaque("o"), "events": map[string]any{ssf.EventSessionRevoked: map[string]any{}}})
		wg.Go(func() {
			if _, err := rcv.Receive(context.Background(), []byte(set)); err != nil {
				errs <- err
			}
		})
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Receive: %v", err)
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", got)
	}
	if got := len(rec.calls()); got != n {
		t.Fatalf("%d revocations, want %d", got, n)
	}
}

// TestNoKidTriesFewKeys: without a kid, a SET is checked against every key
// of its alg only while there are few of them.
func TestNoKidTriesFewKeys(t *testing.T) {
	many := []ssftest.Key{key("ec")}
	for i := range 4 {
		many = append(many, ssftest.MustKey(t, "ES256", "extra-"+string(rune('a'+i))))
	}
	f := newFixture(t, nil, many...)
	set := sign(t, ssftest.Key{Alg: "ES256", Signer: key("ec").Signer}, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
	_, err := f.rcv.Verify(context.Background(), []byte(set))
	wantRefused(t, err, ssf.CodeInvalidKey, ssf.ReasonUnknownKey)
	f.tr.Publish(many[:4]...)
	f.clk.Advance(ssf.DefaultKeyMaxAge)
	set = sign(t, ssftest.Key{Alg: "ES256", Signer: key("ec").Signer}, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")))
	if _, err := f.rcv.Verify(context.Background(), []byte(set)); err != nil {
		t.Fatalf("with 4 keys: %v", err)
	}
}
