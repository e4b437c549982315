package introspect

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

func TestMetadataURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://as.example.com", []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration",
		}},
		{"https://as.example.com/", []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration",
		}},
		{"https://as.example.com/realms/mcp/", []string{
			"https://as.example.com/.well-known/oauth-authorization-server/realms/mcp",
			"https://as.example.com/.well-known/openid-configuration/realms/mcp",
			"https://as.example.com/realms/mcp/.well-known/openid-configuration",
		}},
	}
	for _, tt := range tests {
		got, err := MetadataURLs(tt.issuer)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("MetadataURLs(%q) = %q, %v; want %q", tt.issuer, got, err, tt.want)
		}
	}
}

func TestDiscovery(t *testing.T) {
	tests := []struct {
		name string
		opts []introspecttest.Option
	}{
		{"rfc8414 root issuer", nil},
		{"rfc8414 path-inserted", []introspecttest.Option{introspecttest.WithIssuerPath("/tenant")}},
		{"openid fallback root", []introspecttest.Option{introspecttest.WithoutOAuthMetadata()}},
		{"openid fallback with path", []introspecttest.Option{introspecttest.WithoutOAuthMetadata(), introspecttest.WithIssuerPath("/realms/mcp")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := introspecttest.New(t, tt.opts...)
			md, err := DiscoverMetadata(t.Context(), nil, srv.URL)
			if err != nil {
				t.Fatalf("DiscoverMetadata: %v", err)
			}
			if md.IntrospectionEndpoint != srv.IntrospectionURL() || md.Issuer != srv.URL {
				t.Errorf("metadata = %+v", md)
			}
			if len(md.IntrospectionEndpointAuthMethodsSupported) == 0 || len(md.ScopesSupported) == 0 {
				t.Errorf("metadata lists not parsed: %+v", md)
			}

			v, _ := newTestVerifier(t, srv, func(c *Config) { c.Endpoint = "" })
			if v.Endpoint() != "" {
				t.Fatal("endpoint known before discovery")
			}
			tok := srv.Issue("u", nil, testResource, time.Hour)
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("Verify with discovery: %v", err)
			}
			if v.Endpoint() != srv.IntrospectionURL() {
				t.Errorf("Endpoint() = %q", v.Endpoint())
			}
			if err := v.Ready(t.Context()); err != nil {
				t.Errorf("Ready: %v", err)
			}
		})
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	srv := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		md["issuer"] = "https://evil.example.com"
	}))
	if _, err := DiscoverMetadata(t.Context(), nil, srv.URL); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("DiscoverMetadata err = %v, want issuer mismatch", err)
	}
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.Endpoint = "" })
	if err := v.Ready(t.Context()); err == nil {
		t.Fatal("Ready succeeded with a mismatched issuer")
	}
	var ue *UnavailableError
	if _, err := v.Verify(t.Context(), "tok"); !errors.As(err, &ue) {
		t.Fatalf("Verify err = %v, want UnavailableError", err)
	}
	if v.Endpoint() != "" {
		t.Errorf("endpoint %q adopted from a mismatched document", v.Endpoint())
	}
}

func TestDiscoveryRejectsInsecureEndpoint(t *testing.T) {
	srv := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		md["introspection_endpoint"] = "http://as.example.com/introspect"
	}))
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.Endpoint = "" })
	if err := v.Discover(t.Context()); err == nil {
		t.Fatal("Discover accepted an http endpoint on a non-loopback host")
	}
}

func TestDiscoveryMissingEndpoint(t *testing.T) {
	srv := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		delete(md, "introspection_endpoint")
	}))
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.Endpoint = "" })
	if err := v.Discover(t.Context()); err == nil || !strings.Contains(err.Error(), "introspection_endpoint") {
		t.Fatalf("Discover err = %v", err)
	}
}

func TestDiscoveryNotFound(t *testing.T) {
	srv := introspecttest.New(t, introspecttest.WithIssuerPath("/a"))
	if _, err := DiscoverMetadata(t.Context(), nil, srv.URL+"/other"); err == nil {
		t.Fatal("DiscoverMetadata found metadata for an unknown issuer")
	}
}

func TestDiscoverConcurrentIdempotent(t *testing.T) {
	srv := introspecttest.New(t)
	v, _ := newTestVerifier(t, srv, func(c *Config) { c.Endpoint = "" })
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := v.Discover(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	before := srv.DiscoveryCalls()
	if err := v.Discover(t.Context()); err != nil {
		t.Fatal(err)
	}
	if srv.DiscoveryCalls() != before {
		t.Error("Discover fetched metadata again although the endpoint is known")
	}
	if v.Endpoint() != srv.IntrospectionURL() {
		t.Errorf("Endpoint() = %q", v.Endpoint())
	}
}
