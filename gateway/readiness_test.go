package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/mcp-gateway/mcp-gateway/introspect"
)

// TestReadinessReasons: /readyz is public, so it gives a reason code, and
// the error itself (addresses, dial errors) only to the log.
func TestReadinessReasons(t *testing.T) {
	dial := &url.Error{Op: "Get", URL: "https://10.1.2.3:8443/.well-known/oauth-authorization-server", Err: errors.New("dial tcp 10.1.2.3:8443: connect: connection refused")}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"credentials", &introspect.ClientAuthError{StatusCode: 401}, ReasonCredentialsRejected},
		{"credentials wrapped", fmt.Errorf("ready: %w", &introspect.ClientAuthError{StatusCode: 403}), ReasonCredentialsRejected},
		{"issuer mismatch", &introspect.DiscoveryError{Issuer: "https://as.example.com", FoundAt: "https://as.example.com/.well-known/x", DeclaredIssuer: "https://other.example.com"}, ReasonASMisconfigured},
		{"no introspection endpoint", fmt.Errorf("introspect: discovery: no endpoint: %w", introspect.ErrNoIntrospectionEndpoint), ReasonASMisconfigured},
		{"unreachable", &introspect.DiscoveryError{Issuer: "https://as.example.com", Err: dial}, ReasonASUnreachable},
		{"no metadata", &introspect.DiscoveryError{Issuer: "https://as.example.com", Tried: []string{"https://as.example.com/.well-known/x (HTTP 404)"}}, ReasonASUnreachable},
		{"timeout", context.DeadlineExceeded, ReasonASUnreachable},
		{"anything else", errors.New("something unexpected at 10.1.2.3"), ReasonASUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, v := newTestGateway(t, nil)
			v.setReady(tt.err)
			rec := serve(g, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz = %d", rec.Code)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if len(body) != 2 || body["status"] != "unavailable" || body["reason"] != tt.want {
				t.Errorf("/readyz body %q, want exactly status unavailable and reason %q", rec.Body.String(), tt.want)
			}
		})
	}
}
