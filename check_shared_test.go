package main

import (
	"testing"

	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
	"github.com/mcp-gateway/mcp-gateway/ssf/ssftest"
)

// The doctor pings Redis (never printing its password or the key secret),
// says where the admin API is, and fetches the SSF transmitter's keys.
func TestCheckSharedTier(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "redis-pw-123")
	tr := ssftest.Start(t)
	as := introspecttest.New(t, introspecttest.WithClientCredentials("gw", "s3cr3t-value-xyz"), introspecttest.WithMetadata(completeMetadata))
	vars := externalVars(as)
	vars["REDIS_URL"] = "redis://:redis-pw-123@" + srv.Addr + "/2"
	vars["ADMIN_TOKEN"] = testAdminToken
	vars["METRICS_PORT"] = "9091"
	vars["SSF_ISSUER"] = tr.Issuer()
	code, out := runDoctor(t, vars)
	if code != checkReady {
		t.Fatalf("exit %d, want 0", code)
	}
	wantLines(t, out,
		"ok   shared cache: keys derived from INTROSPECTION_CLIENT_SECRET; every machine must have the same value",
		"ok   shared cache: Redis at redis://:xxxxx@"+srv.Addr+"/2 answers PING in ",
		"ok   revocations: 0 live record(s) in Redis",
		"ok   admin API: POST /admin/revoke on METRICS_PORT=9091 only",
		"ok   shared signals: POST /ssf/events accepts SETs from "+tr.Issuer()+" signed with 1 key(s) from "+tr.JWKSURL()+", for aud "+vars["MCP_RESOURCE_URL"],
	)
	notIn(t, out, "redis-pw-123", "s3cr3t-value-xyz", testAdminToken)

	// A wrong password and an unreachable Redis are warnings: the gateway
	// works without Redis.
	vars["REDIS_URL"] = "redis://:wrong-pw@" + srv.Addr
	code, out = runDoctor(t, vars)
	if code != checkReady {
		t.Fatalf("wrong password: exit %d, want 0 (a warning)", code)
	}
	wantLines(t, out, "warn shared cache: Redis at redis://:xxxxx@"+srv.Addr+" does not answer: the password (or user) in REDIS_URL is refused")
	notIn(t, out, "wrong-pw")

	// Transmitter keys that cannot be fetched are a failure.
	tr.Fail(500)
	code, out = runDoctor(t, vars)
	if code != checkFailed {
		t.Fatalf("transmitter down: exit %d, want 1", code)
	}
	wantLines(t, out, "FAIL shared signals: the keys of SSF_ISSUER="+tr.Issuer()+" cannot be fetched")
}
