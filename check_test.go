package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/interop"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

const checkResource = "https://calc.example.com/mcp"

// runDoctor runs the doctor with exactly vars set (CHECK_TOKEN included)
// and returns its exit status and output.
func runDoctor(t *testing.T, vars map[string]string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := doctor(t.Context(), newReport(&out), envOf(vars))
	t.Logf("mcp-gateway check (exit %d):\n%s", code, out.String())
	return code, out.String()
}

// completeMetadata adds what introspecttest's metadata lacks and a real
// MCP-ready authorization server has.
func completeMetadata(md map[string]any) {
	md["registration_endpoint"] = md["issuer"].(string) + "/register"
	md["code_challenge_methods_supported"] = []string{"S256"}
}

func externalVars(as *introspecttest.Server) map[string]string {
	return map[string]string{
		"MCP_RESOURCE_URL":            checkResource,
		"AUTH_ISSUER_URL":             as.URL,
		"INTROSPECTION_CLIENT_ID":     as.ClientID,
		"INTROSPECTION_CLIENT_SECRET": as.ClientSecret,
		"INTROSPECTION_TIMEOUT":       "2s",
	}
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

func notIn(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("output contains the secret or token %q", s)
		}
	}
}

func TestCheckAllGood(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithClientCredentials("gw", "s3cr3t-value-xyz"), introspecttest.WithMetadata(completeMetadata))
	code, out := runDoctor(t, externalVars(as))
	if code != checkReady {
		t.Fatalf("exit %d, want 0", code)
	}
	wantLines(t, out,
		"ok   configuration: every variable parses",
		"ok   tool policy: built-in; tools named: whoami calculator; scopes needed: op:add op:sub op:mult op:div",
		"ok   MCP_RESOURCE_URL="+checkResource+" uses https",
		"ok   issuer metadata: "+as.URL+"/.well-known/oauth-authorization-server answered",
		fmt.Sprintf("ok   issuer: the metadata declares %q, equal to AUTH_ISSUER_URL", as.URL),
		"ok   introspection_endpoint: "+as.IntrospectionURL()+" (discovered)",
		"ok   registration_endpoint: ",
		"ok   code_challenge_methods_supported includes S256",
		"ok   scopes_supported covers op:add op:sub op:mult op:div",
		"ok   introspection credentials: "+as.IntrospectionURL()+" answered active:false",
		"INTROSPECTION_CLIENT_SECRET set (16 characters)",
		"ok   protected resource metadata: https://calc.example.com/.well-known/oauth-protected-resource/mcp has resource \"https://calc.example.com/mcp\"",
		fmt.Sprintf("ok   authorization_servers[0]=%q is the issuer the metadata declares", as.URL),
		`note: ACCEPTED_AUDIENCES is empty: access tokens must carry aud "https://calc.example.com/mcp"`,
		"READY: all checks passed, 0 warning(s)",
	)
	if strings.Contains(out, "FAIL") || strings.Contains(out, "warn ") {
		t.Errorf("unexpected FAIL or warn line")
	}
	notIn(t, out, "s3cr3t-value-xyz")
}

func TestCheckWarnsAboutMissingRegistrationPKCEAndScopes(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		md["scopes_supported"] = []string{"openid", "op:add"}
	}))
	vars := externalVars(as)
	delete(vars, "MCP_RESOURCE_URL")
	code, out := runDoctor(t, vars)
	if code != checkReady {
		t.Fatalf("exit %d, want 0 (warnings only)", code)
	}
	wantLines(t, out,
		"warn MCP_RESOURCE_URL is unset: it defaults to http://localhost:8080/mcp",
		"warn registration_endpoint: absent: Claude needs dynamic client registration",
		"https://claude.ai/api/mcp/auth_callback",
		"warn code_challenge_methods_supported does not list S256",
		"warn scopes_supported lacks op:sub op:mult op:div",
		"fix: create these scopes at your IdP: op:sub op:mult op:div",
		"READY: all checks passed, 4 warning(s)",
	)
}

func TestCheckWrongSecret(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))
	vars := externalVars(as)
	vars["INTROSPECTION_CLIENT_SECRET"] = "not-the-secret"
	code, out := runDoctor(t, vars)
	if code != checkFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	wantLines(t, out,
		"FAIL introspection credentials: the authorization server rejected INTROSPECTION_CLIENT_ID/INTROSPECTION_CLIENT_SECRET (HTTP 401)",
		"INTROSPECTION_CLIENT_SECRET set (14 characters)",
		"fix: check the secret, and INTROSPECTION_AUTH_METHOD (client_secret_basic vs client_secret_post)",
		"NOT READY: 1 check(s) failed",
	)
	notIn(t, out, "not-the-secret", as.ClientSecret)
}

// With client_secret_post, refused credentials name the auth method in
// use, and the right credentials are accepted (introspecttest reads both
// methods, so a broken post would fail the first run).
func TestCheckWrongAuthMethodPost(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))
	vars := externalVars(as)
	vars["INTROSPECTION_AUTH_METHOD"] = "client_secret_post"
	if code, out := runDoctor(t, vars); code != checkReady {
		t.Fatalf("right credentials with client_secret_post: exit %d, want 0\n%s", code, out)
	}
	vars["INTROSPECTION_CLIENT_SECRET"] = "wrong"
	vars["INTROSPECTION_AUTH_METHOD"] = "client_secret_post"
	code, out := runDoctor(t, vars)
	if code != checkFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	wantLines(t, out, "INTROSPECTION_AUTH_METHOD=client_secret_post", "(HTTP 401)")
}

func TestCheckIssuerMismatch(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		completeMetadata(md)
		md["issuer"] = "https://other.example.com"
	}))
	code, out := runDoctor(t, externalVars(as))
	if code != checkFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	wantLines(t, out,
		fmt.Sprintf(`FAIL issuer: the metadata at %s/.well-known/oauth-authorization-server declares "https://other.example.com", but AUTH_ISSUER_URL is %q`, as.URL, as.URL),
		"FAIL introspection credentials: not checked: the introspection endpoint is unknown",
		`FAIL authorization_servers[0]=`,
	)
}

func TestCheckIssuerTrailingSlash(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(func(md map[string]any) {
		completeMetadata(md)
		md["issuer"] = md["issuer"].(string) + "/"
	}))
	code, out := runDoctor(t, externalVars(as))
	if code != checkFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	wantLines(t, out,
		"they differ only by a trailing slash",
		"fix: set AUTH_ISSUER_URL="+as.URL+"/\n",
		// The gateway itself tolerates the slash: introspection works.
		"ok   introspection credentials:",
	)
}

func TestCheckAuthorizationServerDown(t *testing.T) {
	issuer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	code, out := runDoctor(t, map[string]string{
		"MCP_RESOURCE_URL":            checkResource,
		"AUTH_ISSUER_URL":             issuer,
		"INTROSPECTION_CLIENT_ID":     "gw",
		"INTROSPECTION_CLIENT_SECRET": "secret",
		"INTROSPECTION_TIMEOUT":       "1s",
	})
	if code != checkFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	wantLines(t, out,
		"FAIL issuer metadata: cannot fetch the metadata of "+issuer,
		"connection refused",
		"fix: check that AUTH_ISSUER_URL is right and that this machine can reach it",
	)
}

func TestCheckIntrospectionDown(t *testing.T) {
	// Metadata answers, introspection fails with 503.
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))
	as.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	code, out := runDoctor(t, externalVars(as))
	if code != checkFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	wantLines(t, out, "FAIL introspection credentials: not checked: authorization server answered HTTP 503")
}

func TestCheckHTTPResourceOnPublicHost(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))
	vars := externalVars(as)
	vars["MCP_RESOURCE_URL"] = "http://calc.example.com/mcp"
	code, out := runDoctor(t, vars)
	if code != checkInvalid {
		t.Fatalf("exit %d, want 2", code)
	}
	wantLines(t, out,
		"FAIL configuration: 1 problem(s)",
		`MCP_RESOURCE_URL="http://calc.example.com/mcp" must use https`,
		"production needs https: Claude refuses http connectors",
	)
}

func TestCheckHTTPResourceCheck(t *testing.T) {
	// checkResourceURL on its own (the configuration already refuses a
	// public http URL, so the doctor never gets there with one).
	var out bytes.Buffer
	r := newReport(&out)
	checkResourceURL(r, "http://calc.example.com/mcp", true)
	if r.failures != 1 || !strings.Contains(out.String(), "FAIL MCP_RESOURCE_URL=http://calc.example.com/mcp uses http: production needs https: Claude refuses http connectors") {
		t.Errorf("failures %d, output:\n%s", r.failures, out.String())
	}
	out.Reset()
	r = newReport(&out)
	checkResourceURL(r, "http://127.0.0.1:8080/mcp", true)
	if r.failures != 0 || r.warnings != 1 {
		t.Errorf("loopback http: failures %d warnings %d:\n%s", r.failures, r.warnings, out.String())
	}
}

func TestCheckInvalidConfiguration(t *testing.T) {
	code, out := runDoctor(t, map[string]string{
		"AUTH_ISSUER_URL": "https://idp.example.com",
		"PORT":            "-1",
		"CLOCK_SKEW":      "soon",
	})
	if code != checkInvalid {
		t.Fatalf("exit %d, want 2", code)
	}
	wantLines(t, out, "FAIL configuration: 2 problem(s)", "PORT", "CLOCK_SKEW", "INVALID CONFIGURATION")
}

func TestCheckDevelopmentMode(t *testing.T) {
	code, out := runDoctor(t, nil)
	if code != checkReady {
		t.Fatalf("exit %d, want 0", code)
	}
	wantLines(t, out, "warn development mode: AUTH_ISSUER_URL is unset", "not for production", "READY")
}

func TestCheckToken(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))
	good := as.Issue("alice", []string{"op:add", "op:sub", "op:mult", "op:div"}, checkResource, time.Hour)
	wrongAud := as.Issue("alice", []string{"op:add"}, "https://api.example.com", time.Hour)
	noAud := as.Issue("alice", []string{"op:add"}, "", time.Hour)

	t.Run("accepted", func(t *testing.T) {
		vars := externalVars(as)
		code, out := runDoctorWithToken(t, vars, good)
		if code != checkReady {
			t.Fatalf("exit %d, want 0", code)
		}
		wantLines(t, out, "the authorization server says: active=true aud=[\"https://calc.example.com/mcp\"]", "ok   CHECK_TOKEN: the gateway would accept this token")
		notIn(t, out, good, "alice")
	})
	t.Run("wrong audience", func(t *testing.T) {
		code, out := runDoctorWithToken(t, externalVars(as), wrongAud)
		if code != checkFailed {
			t.Fatalf("exit %d, want 1", code)
		}
		wantLines(t, out,
			"FAIL CHECK_TOKEN: the gateway would refuse this token: invalid token: audience",
			`fix: the token carries aud "https://api.example.com": set MCP_RESOURCE_URL to https://api.example.com (if that is this server's public URL) or add https://api.example.com to ACCEPTED_AUDIENCES, or make your IdP put https://calc.example.com/mcp in aud`,
		)
		notIn(t, out, wrongAud)
	})
	t.Run("no audience", func(t *testing.T) {
		code, out := runDoctorWithToken(t, externalVars(as), noAud)
		if code != checkFailed {
			t.Fatalf("exit %d, want 1", code)
		}
		wantLines(t, out, "aud=absent", "fix: the token carries no aud")
	})
	t.Run("unknown", func(t *testing.T) {
		code, out := runDoctorWithToken(t, externalVars(as), "not-a-token")
		if code != checkFailed {
			t.Fatalf("exit %d, want 1", code)
		}
		wantLines(t, out, "active=false", "FAIL CHECK_TOKEN: the gateway would refuse this token: invalid token: inactive")
	})
}

func runDoctorWithToken(t *testing.T, vars map[string]string, token string) (int, string) {
	t.Helper()
	vars[checkTokenEnv] = token
	var out bytes.Buffer
	code := doctor(t.Context(), newReport(&out), envOf(vars))
	t.Logf("mcp-gateway check (exit %d):\n%s", code, out.String())
	return code, out.String()
}

func TestCheckThroughRun(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))
	vars := externalVars(as)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"check"}, envOf(vars), &stdout, &stderr, nil); err != nil {
		t.Fatalf("run check: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "READY") {
		t.Errorf("stdout:\n%s", stdout.String())
	}

	vars["INTROSPECTION_CLIENT_SECRET"] = "wrong"
	stdout.Reset()
	var cf *checkFailedError
	if err := run(t.Context(), []string{"check"}, envOf(vars), &stdout, &stderr, nil); !errors.As(err, &cf) {
		t.Fatalf("run check with a wrong secret: %v, want *checkFailedError", err)
	}

	vars["PORT"] = "x"
	var ce *configError
	if err := run(t.Context(), []string{"check"}, envOf(vars), &stdout, &stderr, nil); !errors.As(err, &ce) {
		t.Fatalf("run check with a bad PORT: %v, want *configError", err)
	}
	if err := run(t.Context(), []string{"check", "extra"}, envOf(vars), &stdout, &stderr, nil); !errors.As(err, &ce) {
		t.Fatalf("run check extra: %v, want *configError", err)
	}
}

func TestCheckProcessExitStatus(t *testing.T) {
	as := introspecttest.New(t, introspecttest.WithMetadata(completeMetadata))
	base := []string{"MCP_GATEWAY_TEST_ARGS=check", "MCP_RESOURCE_URL=" + checkResource, "AUTH_ISSUER_URL=" + as.URL,
		"INTROSPECTION_CLIENT_ID=" + as.ClientID}
	for _, tc := range []struct {
		name   string
		env    []string
		status int
	}{
		{"ready", []string{"INTROSPECTION_CLIENT_SECRET=" + as.ClientSecret}, 0},
		{"wrong secret", []string{"INTROSPECTION_CLIENT_SECRET=wrong"}, 1},
		{"invalid", []string{"INTROSPECTION_CLIENT_SECRET=x", "CLOCK_SKEW=soon"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := gatewayProcess(t, append(append([]string{}, base...), tc.env...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", status, tc.status, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), "ok   configuration") && tc.status != 2 {
				t.Errorf("stdout:\n%s", stdout.String())
			}
			// The doctor printed the problems; main must not repeat them.
			if tc.status == 2 && (!strings.Contains(stdout.String(), "CLOCK_SKEW") || strings.Contains(stderr.String(), "CLOCK_SKEW")) {
				t.Errorf("an invalid configuration must be reported once, on stdout\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			}
		})
	}
}

func TestCheckInteropOIDCProvider(t *testing.T) {
	p := interop.Start(t, checkResource)
	vars := map[string]string{
		"MCP_RESOURCE_URL":            checkResource,
		"AUTH_ISSUER_URL":             p.Issuer,
		"INTROSPECTION_CLIENT_ID":     p.IntrospectionClientID,
		"INTROSPECTION_CLIENT_SECRET": p.IntrospectionClientSecret,
	}
	t.Run("good", func(t *testing.T) {
		code, out := runDoctor(t, vars)
		if code != checkReady {
			t.Fatalf("exit %d, want 0", code)
		}
		wantLines(t, out,
			"ok   issuer metadata: "+p.Issuer+"/.well-known/oauth-authorization-server answered",
			"ok   introspection_endpoint: "+p.IntrospectionEndpoint+" (discovered)",
			"ok   registration_endpoint: "+p.RegistrationEndpoint,
			"ok   code_challenge_methods_supported includes S256",
			"ok   introspection credentials: "+p.IntrospectionEndpoint+" answered active:false",
			"READY",
		)
		notIn(t, out, p.IntrospectionClientSecret)
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := map[string]string{}
		for k, v := range vars {
			bad[k] = v
		}
		bad["INTROSPECTION_CLIENT_SECRET"] = "wrong-secret"
		code, out := runDoctor(t, bad)
		if code != checkFailed {
			t.Fatalf("exit %d, want 1", code)
		}
		wantLines(t, out,
			"FAIL introspection credentials: the authorization server rejected INTROSPECTION_CLIENT_ID/INTROSPECTION_CLIENT_SECRET",
			"fix: check the secret, and INTROSPECTION_AUTH_METHOD (client_secret_basic vs client_secret_post)",
		)
		notIn(t, out, "wrong-secret")
	})
}

func TestCheckDevelopmentModeSaysCheckTokenIsIgnored(t *testing.T) {
	code, out := runDoctor(t, map[string]string{checkTokenEnv: "some-token"})
	if code != checkReady {
		t.Fatalf("exit %d, want 0", code)
	}
	wantLines(t, out, "warn CHECK_TOKEN is set but not checked", "whoami")
	notIn(t, out, "some-token")
}
