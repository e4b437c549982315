package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runtimeVars are read by the Go runtime, not the gateway; .env.example
// documents them for fly.toml's sake.
var runtimeVars = []string{"GOGC", "GOMEMLIMIT"}

// TestEnvContract checks the one list of variables (env's struct tags)
// against what documents it: every variable is in .env.example with its
// default (or commented out when it has none), nothing there is unknown,
// and README.md's configuration table names every one.
func TestEnvContract(t *testing.T) {
	vars := envVars()
	if len(vars) < 30 {
		t.Fatalf("envVars lists %d variables; the struct tags were not read", len(vars))
	}
	example, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{} // name -> value ("" for a commented example)
	line := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	for l := range strings.Lines(string(example)) {
		m := line.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		v := m[3]
		if m[1] != "" {
			v = ""
		} else if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		documented[m[2]] = v
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range vars {
		known[v.Name] = true
		got, ok := documented[v.Name]
		switch {
		case !ok:
			t.Errorf(".env.example does not document %s", v.Name)
		case got != v.Default:
			t.Errorf(".env.example has %s=%q, the default is %q", v.Name, got, v.Default)
		}
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not name %s", v.Name)
		}
	}
	for name := range documented {
		if !known[name] && !slices.Contains(runtimeVars, name) {
			t.Errorf(".env.example documents %s, which the gateway does not read", name)
		}
	}
}

// TestReadEnv: a variable that is set is taken as it is, even empty; one
// that is not set gets its default; nothing comes from the process.
func TestReadEnv(t *testing.T) {
	t.Setenv("PORT", "1234") // must not leak in: only the lookup is read
	e := readEnv(envOf(map[string]string{"HOST": "", "LOG_LEVEL": "debug"}))
	if e.Port != "8080" || e.Host != "" || e.LogLevel != "debug" || e.CacheMaxTTL != "60s" {
		t.Errorf("readEnv = PORT %q HOST %q LOG_LEVEL %q CACHE_MAX_TTL %q", e.Port, e.Host, e.LogLevel, e.CacheMaxTTL)
	}
	e = readEnv(envOf(map[string]string{"SCOPES_SUPPORTED": ""}))
	if e.ScopesSupported != "" {
		t.Errorf("an empty SCOPES_SUPPORTED became %q, want it kept empty", e.ScopesSupported)
	}
}

// TestProxyModeConfig: UPSTREAM_URL selects proxy mode, whose defaults
// differ (no policy: any valid token; no scopes; its own resource name),
// and every problem of the upstream settings is reported at once, never
// quoting UPSTREAM_AUTHORIZATION.
func TestProxyModeConfig(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"UPSTREAM_URL": "http://127.0.0.1:3001/mcp", "UPSTREAM_AUTHORIZATION": "Bearer s3cret-value"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PolicySource != policyNone || c.Policy.Requirement("anything", nil).Denied || len(c.ScopesSupported) != 0 || c.ResourceName != "MCP server" {
		t.Errorf("proxy defaults: policy %q, scopes %q, name %q", c.PolicySource, c.ScopesSupported, c.ResourceName)
	}
	pc := c.proxyConfig()
	if pc.Upstream != "http://127.0.0.1:3001/mcp" || pc.Authorization != "Bearer s3cret-value" || pc.Timeout != 60*time.Second ||
		pc.MaxSessions != 1000 || pc.MaxSessionsPerUser != 20 || pc.MaxStreams != 1000 || pc.MaxStreamsPerUser != 20 ||
		pc.SessionIdleTimeout != 30*time.Minute || pc.MaxBodyBytes != 1<<20 {
		t.Errorf("proxyConfig = %+v", pc)
	}
	if c, err := loadConfig(envOf(nil)); err != nil || c.PolicySource != policyBuiltIn || c.ResourceName != "Calculator" {
		t.Errorf("built-in defaults: %v %+v", err, c)
	}

	for _, tt := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"http to a remote host", map[string]string{"UPSTREAM_URL": "http://mcp.example.com/mcp"}, []string{"UPSTREAM_ALLOW_HTTP=true"}},
		{"credentials in the URL", map[string]string{"UPSTREAM_URL": "https://u:pw@mcp.example.com/mcp"}, []string{"user information"}},
		{"bad header value", map[string]string{"UPSTREAM_URL": "https://mcp.example.com/mcp", "UPSTREAM_AUTHORIZATION": "Bearer s3cret\r\nX: 1"}, []string{"UPSTREAM_AUTHORIZATION is not a valid header value"}},
		{"settings without URL", map[string]string{"UPSTREAM_AUTHORIZATION": "Bearer s3cret", "UPSTREAM_ALLOW_HTTP": "true"}, []string{"UPSTREAM_AUTHORIZATION is set but UPSTREAM_URL is not", "UPSTREAM_ALLOW_HTTP=true is set"}},
		{"bad numbers", map[string]string{"UPSTREAM_URL": "https://mcp.example.com/mcp", "UPSTREAM_TIMEOUT": "10ms", "MCP_MAX_SESSIONS_PER_USER": "0", "UPSTREAM_ALLOW_HTTP": "maybe"},
			[]string{"UPSTREAM_TIMEOUT=10ms must be at least 100ms", "MCP_MAX_SESSIONS_PER_USER=0", "UPSTREAM_ALLOW_HTTP=\"maybe\""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envOf(tt.vars))
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("loadConfig = %v, want a configuration error", err)
			}
			if len(ce.problems) != len(tt.want) {
				t.Errorf("%d problems, want %d: %q", len(ce.problems), len(tt.want), ce.problems)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("a secret in the error: %v", err)
			}
		})
	}
}

// TestREADMENamesEveryFuzzTarget: the README's fuzz table lists every fuzz
// target in the module with its package, so that none is forgotten.
func TestREADMENamesEveryFuzzTarget(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	fuzz := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	found := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fuzz.FindAllStringSubmatch(string(src), -1) {
			found++
			row := fmt.Sprintf("| `./%s/` |", filepath.Dir(path))
			i := strings.Index(string(readme), row)
			if i < 0 {
				t.Errorf("README.md has no fuzz row for %s (%s)", filepath.Dir(path), m[1])
				continue
			}
			line, _, _ := strings.Cut(string(readme)[i:], "\n")
			if !strings.Contains(line, "`"+m[1]+"`") {
				t.Errorf("README.md's fuzz row for %s does not name %s", filepath.Dir(path), m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 20 {
		t.Errorf("found %d fuzz targets; the walk is broken", found)
	}
}

// TestRetiredVariables: a variable the gateway no longer reads, whose
// meaning changed, is a configuration error naming what replaced it, not
// silently ignored; listed with any other problem.
func TestRetiredVariables(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"INTROSPECTION_CLIENT_RATE": "50"}, []string{"INTROSPECTION_CLIENT_RATE is no longer read", "CLIENT_REFUSAL_RATE"}},
		{map[string]string{"INTROSPECTION_CLIENT_BURST": "100"}, []string{"INTROSPECTION_CLIENT_BURST is no longer read", "CLIENT_REFUSAL_BURST"}},
		{map[string]string{"INTROSPECTION_CLIENT_RATE": "50", "PORT": "eighty"}, []string{"INTROSPECTION_CLIENT_RATE", "PORT"}},
	} {
		_, err := loadConfig(envOf(tt.env))
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %q", tt.env, err, w)
			}
		}
	}
	c, err := loadConfig(envOf(map[string]string{"CLIENT_REFUSAL_RATE": "2.5", "CLIENT_REFUSAL_BURST": "7", "INTROSPECTION_CLIENT_CONCURRENCY": "3",
		"MCP_MAX_SESSIONS_PER_USER": "4", "MCP_MAX_STREAMS_PER_USER": "5"}))
	if err != nil {
		t.Fatal(err)
	}
	ic, gc := c.introspectConfig(), c.gatewayConfig()
	if ic.RefusalRate != 2.5 || ic.RefusalBurst != 7 || ic.ClientConcurrency != 3 || gc.MaxSessionsPerUser != 4 || gc.MaxStreamsPerUser != 5 {
		t.Errorf("introspect %v/%v/%v, gateway %v/%v", ic.RefusalRate, ic.RefusalBurst, ic.ClientConcurrency, gc.MaxSessionsPerUser, gc.MaxStreamsPerUser)
	}
	if !gc.LoopbackOnly {
		t.Error("development mode without DEV_AUTH_ALLOW_PUBLIC does not answer loopback Hosts only")
	}
	if c, _ := loadConfig(envOf(map[string]string{"DEV_AUTH_ALLOW_PUBLIC": "true"})); c.gatewayConfig().LoopbackOnly {
		t.Error("DEV_AUTH_ALLOW_PUBLIC=true still restricts to loopback Hosts")
	}
}

// TestREADMELayoutNamesEveryPackage: the README's layout table names every
// package directory and every non-test file of the main package, so that a
// newcomer finds each one there (a nested package by its name, in the row
// of its parent).
func TestREADMELayoutNamesEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no \"## Layout\" section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	named := func(path string) bool {
		if strings.Contains(layout, "`"+path+"/`") || strings.Contains(layout, "`"+path+"`") {
			return true
		}
		base := filepath.Base(path)
		return path != base && (strings.Contains(layout, "`"+base+"`") || strings.Contains(layout, "`"+base+"/`"))
	}
	packages := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir := filepath.Dir(path)
		switch {
		case dir == ".":
			if !strings.HasSuffix(path, "_test.go") && !named(path) {
				t.Errorf("README.md's layout does not name %s", path)
			}
		case filepath.Base(path) == firstGoFile(t, dir):
			packages++
			if !named(filepath.ToSlash(dir)) {
				t.Errorf("README.md's layout does not name the package %s/", dir)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if packages < 20 {
		t.Errorf("found %d packages; the walk is broken", packages)
	}
}

// firstGoFile is the name of the first .go file in dir, so that each
// directory is checked once.
func firstGoFile(t *testing.T, dir string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no .go file in %s: %v", dir, err)
	}
	return filepath.Base(matches[0])
}
