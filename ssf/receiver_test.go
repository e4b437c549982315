package ssf_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/ssf"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

func TestNewConfigErrors(t *testing.T) {
	ok := func(context.Context, ssf.Revocation) error { return nil }
	tests := []struct {
		name string
		cfg  ssf.Config
		want []string // every one must be in the error
	}{
		{name: "empty: every problem at once", cfg: ssf.Config{},
			want: []string{"Issuer is required", "Audience", "OnRevocation is required"}},
		{name: "http issuer off loopback", cfg: ssf.Config{Issuer: "http://idp.example.com", Audience: []string{aud}, OnRevocation: ok},
			want: []string{"Issuer", "use https"}},
		{name: "issuer with a query", cfg: ssf.Config{Issuer: "https://idp.example.com/?tenant=1", Audience: []string{aud}, OnRevocation: ok},
			want: []string{"must not have a query"}},
		{name: "issuer not a URL", cfg: ssf.Config{Issuer: "idp.example.com", Audience: []string{aud}, OnRevocation: ok},
			want: []string{"not an absolute URL"}},
		{name: "JWKS URL over http off loopback", cfg: ssf.Config{Issuer: "https://idp.example.com", JWKSURL: "http://idp.example.com/jwks", Audience: []string{aud}, OnRevocation: ok},
			want: []string{"JWKSURL", "use https"}},
		{name: "empty audience value", cfg: ssf.Config{Issuer: "https://idp.example.com", Audience: []string{aud, ""}, OnRevocation: ok},
			want: []string{"Audience"}},
		{name: "none and HMAC algorithms", cfg: ssf.Config{Issuer: "https://idp.example.com", Audience: []string{aud}, OnRevocation: ok, Algorithms: []string{"RS256", "none", "HS256"}},
			want: []string{`"none" is not allowed`, `"HS256" is not allowed`}},
		{name: "negative durations and sizes", cfg: ssf.Config{Issuer: "https://idp.example.com", Audience: []string{aud}, OnRevocation: ok, MaxAge: -1, ClockSkew: -time.Second, MaxBodyBytes: -1},
			want: []string{"MaxAge must not be negative", "ClockSkew must not be negative", "MaxBodyBytes"}},
		{name: "authorization header with a line break", cfg: ssf.Config{Issuer: "https://idp.example.com", Audience: []string{aud}, OnRevocation: ok, AuthorizationHeader: "Bearer a\r\nX-Evil: 1"},
			want: []string{"AuthorizationHeader"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv, err := ssf.New(tt.cfg)
			if err == nil {
				rcv.Close()
				t.Fatal("New accepted the configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewAcceptsLoopbackHTTPAndDefaults(t *testing.T) {
	for _, iss := range []string{"http://127.0.0.1:9999", "http://localhost/tenant", "https://idp.example.com/t/"} {
		rcv, err := ssf.New(ssf.Config{Issuer: iss, Audience: []string{aud}, OnRevocation: func(context.Context, ssf.Revocation) error { return nil }})
		if err != nil {
			t.Fatalf("%s: %v", iss, err)
		}
		rcv.Close()
	}
}

// TestConfigIsCopied: changing the caller's slices after New changes
// nothing.
func TestConfigIsCopied(t *testing.T) {
	audiences := []string{aud}
	f := newFixture(t, func(c *ssf.Config) { c.Audience = audiences })
	audiences[0] = "https://changed.example"
	if _, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))); err != nil {
		t.Fatal(err)
	}
}

// TestAcceptUntyped: the opt-in for transmitters that predate explicit
// typing accepts a SET without typ, and nothing else changes.
func TestAcceptUntyped(t *testing.T) {
	f := newFixture(t, func(c *ssf.Config) { c.AcceptUntyped = true })
	revs, err := f.rcv.Receive(context.Background(), []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o")), ssftest.WithoutType())))
	if err != nil || len(revs) != 1 {
		t.Fatalf("Receive = %+v, %v", revs, err)
	}
}

// TestVerifyWhileReceiving: Verify reads the replay cache while Receive
// writes it; under -race the two must not touch it unlocked.
func TestVerifyWhileReceiving(t *testing.T) {
	f := newFixture(t, nil)
	const n = 50
	sets := make([][]byte, 2*n)
	for i := range sets {
		sets[i] = []byte(f.tr.MustSign(t, f.claims(ssf.EventSessionRevoked, ssftest.Opaque("o"))))
	}
	done := make(chan error, 2)
	go func() {
		for _, s := range sets[:n] {
			if _, err := f.rcv.Receive(context.Background(), s); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for _, s := range sets[n:] {
			if _, err := f.rcv.Verify(context.Background(), s); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
