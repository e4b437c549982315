package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every problem of the issue-15 variables is reported at once, and none
// repeats a secret.
func TestSharedConfigProblems(t *testing.T) {
	base := map[string]string{
		"AUTH_ISSUER_URL": "https://idp.example.com", "INTROSPECTION_CLIENT_ID": "gw",
		"INTROSPECTION_CLIENT_SECRET": "short", "MCP_RESOURCE_URL": "https://calc.example.com/mcp",
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"valid", map[string]string{"REDIS_URL": "rediss://default:pw@cache.example:6380/1", "CACHE_KEY_SECRET": "0123456789abcdef",
			"ADMIN_TOKEN": strings.Repeat("a", 32), "METRICS_PORT": "9091", "SSF_ISSUER": "https://ssf.example.com",
			"SSF_AUDIENCE": "https://calc.example.com/mcp, https://other.example", "REDIS_TIMEOUT": "20ms"}, nil},
		{"everything wrong", map[string]string{
			"REDIS_URL": "http://:hunter2-pw@cache.example", "REDIS_TIMEOUT": "1h", "ADMIN_TOKEN": "short admin",
			"SSF_JWKS_URL": "https://ssf.example.com/jwks", "SSF_AUTHORIZATION": "Bearer x",
		}, []string{
			`REDIS_URL: URL scheme "http" is not redis or rediss`, "REDIS_TIMEOUT=1h0m0s is longer than 10s",
			"CACHE_KEY_SECRET is required with REDIS_URL", "ADMIN_TOKEN is shorter than 32 characters",
			"ADMIN_TOKEN must not contain spaces", "ADMIN_TOKEN is set but METRICS_PORT is not",
			"SSF_JWKS_URL is set but SSF_ISSUER is not", "SSF_AUTHORIZATION is set but SSF_ISSUER is not",
		}},
		{"short key secret", map[string]string{"REDIS_URL": "redis://localhost", "CACHE_KEY_SECRET": "abc"},
			[]string{"CACHE_KEY_SECRET is shorter than 16 bytes"}},
		{"ssf issuer over http", map[string]string{"SSF_ISSUER": "http://ssf.example.com"}, []string{"SSF_ISSUER="}},
		{"bad redis db", map[string]string{"REDIS_URL": "redis://:hunter2-pw@localhost/x", "CACHE_KEY_SECRET": "0123456789abcdef"},
			[]string{"REDIS_URL:"}},
		{"dev auth credentials outside development mode", map[string]string{"DEV_AUTH_INTROSPECTION_CLIENT_ID": "x"},
			[]string{"DEV_AUTH_INTROSPECTION_CLIENT_ID/SECRET are set but AUTH_ISSUER_URL is too"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tc.vars {
				vars[k] = v
			}
			c, err := loadConfig(envOf(vars))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				if c.RedisTimeout != 20*time.Millisecond || len(c.SSFAudience) != 2 || c.revocationTTL() != 90*time.Second {
					t.Errorf("parsed %v %v %v", c.RedisTimeout, c.SSFAudience, c.revocationTTL())
				}
				if s, src := c.cacheKeySecret(); s != "0123456789abcdef" || src != "CACHE_KEY_SECRET" {
					t.Errorf("key secret from %s", src)
				}
				return
			}
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems lack %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "short admin") {
				t.Errorf("a secret is repeated: %v", err)
			}
		})
	}
	// Development mode: no Redis (each development gateway has its own
	// authorization server), but fixed introspection credentials.
	_, err := loadConfig(envOf(map[string]string{"REDIS_URL": "redis://localhost"}))
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL is set but AUTH_ISSUER_URL is not") {
		t.Errorf("REDIS_URL in development mode: %v", err)
	}
	c, err := loadConfig(envOf(map[string]string{"DEV_AUTH_INTROSPECTION_CLIENT_ID": "gw", "DEV_AUTH_INTROSPECTION_CLIENT_SECRET": "0123456789abcdef"}))
	if err != nil || c.DevAuthIntrospectionClientID != "gw" {
		t.Errorf("development credentials: %v", err)
	}
}
