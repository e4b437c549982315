package ssftest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

func getJSON(t *testing.T, url string, v any) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

func TestMetadataAndJWKS(t *testing.T) {
	k1 := ssftest.MustKey(t, "ES256", "k1")
	tr := ssftest.Start(t, k1)
	var md map[string]any
	if status, ct := getJSON(t, tr.MetadataURL(), &md); status != 200 || ct != "application/json" {
		t.Fatalf("metadata: %d %s", status, ct)
	}
	if md["issuer"] != tr.Issuer() || md["jwks_uri"] != tr.JWKSURL() || md["spec_version"] != "1_0" {
		t.Fatalf("metadata %v", md)
	}
	var set jose.JSONWebKeySet
	if status, _ := getJSON(t, tr.JWKSURL(), &set); status != 200 || len(set.Keys) != 1 || set.Keys[0].KeyID != "k1" || !set.Keys[0].IsPublic() {
		t.Fatalf("jwks %+v", set)
	}
	if md, jwks := tr.Requests(); md != 1 || jwks != 1 {
		t.Fatalf("requests %d %d", md, jwks)
	}

	tr.SetMetadata(map[string]any{"issuer": "https://other.example", "jwks_uri": nil})
	md = nil
	getJSON(t, tr.MetadataURL(), &md)
	if _, has := md["jwks_uri"]; md["issuer"] != "https://other.example" || has {
		t.Fatalf("overridden metadata %v", md)
	}

	k2 := ssftest.MustKey(t, "EdDSA", "k2")
	tr.Publish(k2)
	set = jose.JSONWebKeySet{}
	getJSON(t, tr.JWKSURL(), &set)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != "k2" {
		t.Fatalf("published %+v", set)
	}

	tr.Fail(http.StatusTeapot)
	if status, _ := getJSON(t, tr.JWKSURL(), &set); status != http.StatusTeapot {
		t.Fatalf("failing JWKS answered %d", status)
	}
}

// TestSignVerifiesWithPublishedKey: what Sign produces is a compact JWS
// with typ secevent+jwt, the key's kid and alg, that verifies with the
// published key and carries the claims.
func TestSignVerifiesWithPublishedKey(t *testing.T) {
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			k := ssftest.MustKey(t, alg, "kid-"+alg)
			tr := ssftest.Start(t, k)
			claims := tr.Claims("https://rp.example", "https://schemas.openid.net/secevent/caep/event-type/session-revoked", ssftest.Opaque("x"))
			s := tr.MustSign(t, claims, ssftest.WithHeader("jku", "https://ignored.example"))
			jws, err := jose.ParseSignedCompact(s, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Protected
			if h.KeyID != k.ID || h.Algorithm != alg || h.ExtraHeaders[jose.HeaderType] != "secevent+jwt" || h.ExtraHeaders["jku"] != "https://ignored.example" {
				t.Fatalf("header %+v", h)
			}
			pub := k.JWK()
			payload, err := jws.Verify(&pub)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(payload, &got); err != nil || got["jti"] != claims["jti"] || got["iss"] != tr.Issuer() {
				t.Fatalf("payload %s", payload)
			}
		})
	}
}

func TestSignOptions(t *testing.T) {
	k := ssftest.MustKey(t, "ES256", "k")
	other := ssftest.MustKey(t, "ES256", "other")
	tr := ssftest.Start(t, k)
	s := tr.MustSign(t, map[string]any{"a": 1}, ssftest.WithoutType(), ssftest.WithKey(other), ssftest.WithEmbeddedJWK())
	jws, err := jose.ParseSignedCompact(s, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if _, typed := h.ExtraHeaders[jose.HeaderType]; typed || h.KeyID != "other" || h.JSONWebKey == nil {
		t.Fatalf("header %+v", h)
	}
	if _, err := jws.Verify(other.Signer.Public()); err != nil {
		t.Fatal("not signed with WithKey's key")
	}
	if _, err := ssftest.NewKey("HS256", "x"); err == nil {
		t.Fatal("NewKey made a key for HS256")
	}
	if _, err := ssftest.NewTransmitter(); err == nil {
		t.Fatal("a transmitter without keys")
	}
}

func TestCompact(t *testing.T) {
	s, err := ssftest.Compact(map[string]any{"alg": "none"}, map[string]any{"x": 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(s, "."); len(parts) != 3 || parts[2] != "" {
		t.Fatalf("compact %q", s)
	}
	s, _ = ssftest.Compact(map[string]any{"alg": "X"}, map[string]any{}, func(in []byte) []byte { return []byte("sig") })
	if !strings.HasSuffix(s, ".c2ln") {
		t.Fatalf("compact %q", s)
	}
}

// TestRoundTripWithReceiver: the transmitter, pushed to a real ssf.Receiver
// over HTTP, the way the gateway's end-to-end tests will use it.
func TestRoundTripWithReceiver(t *testing.T) {
	tr := ssftest.Start(t)
	var got []ssf.Revocation
	rcv, err := ssf.New(ssf.Config{
		Issuer:       tr.Issuer(),
		Audience:     []string{"https://mcp.example/mcp"},
		OnRevocation: func(_ context.Context, r ssf.Revocation) error { got = append(got, r); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	set := tr.MustSign(t, tr.Claims("https://mcp.example/mcp", ssf.EventAccountDisabled, ssftest.IssSub(tr.Issuer(), "user-42")))
	resp, err := ssftest.Push(context.Background(), srv.Client(), srv.URL, set, "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || len(got) != 1 || got[0].Subject.Sub != "user-42" {
		t.Fatalf("status %d, revocations %+v", resp.StatusCode, got)
	}
}
