package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/pelletier/go-toml/v2"
)

// flyConfig is the part of fly.toml the code depends on, read as TOML, so
// that the file may be written in any TOML style: ours with double quotes
// and comments, or flyctl's, which `fly launch --copy-config` writes back
// with single quotes, sorted [env] keys, [[metrics]] as an array of tables,
// a [[vm]] block and none of our comments.
//
// github.com/pelletier/go-toml/v2 parses it: a maintained TOML 1.0 parser
// (v2.4.3, 2026), the one Viper uses; BurntSushi/toml would do as well,
// this one decodes into structs with the same tags and no reflection
// surprises for the [metrics] table-or-array case below.
type flyConfig struct {
	KillSignal  string            `toml:"kill_signal"`
	Env         map[string]string `toml:"env"`
	HTTPService struct {
		InternalPort int `toml:"internal_port"`
		Checks       []struct {
			Method string `toml:"method"`
			Path   string `toml:"path"`
		} `toml:"checks"`
	} `toml:"http_service"`
	// Metrics is [metrics] (a table, as in this repository) or
	// [[metrics]] (an array of tables, as flyctl writes it).
	Metrics any `toml:"metrics"`
}

// flyMetrics is one metrics scrape target.
type flyMetrics struct {
	Port int
	Path string
}

// metricsTargets normalises Metrics to a list of targets.
func (c *flyConfig) metricsTargets() ([]flyMetrics, error) {
	var tables []map[string]any
	switch m := c.Metrics.(type) {
	case nil:
	case map[string]any:
		tables = []map[string]any{m}
	case []any:
		for _, x := range m {
			t, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("[[metrics]] entry is %T, not a table", x)
			}
			tables = append(tables, t)
		}
	default:
		return nil, fmt.Errorf("metrics is %T, not a table or an array of tables", m)
	}
	var out []flyMetrics
	for _, t := range tables {
		port, ok := t["port"].(int64)
		path, _ := t["path"].(string)
		if !ok {
			return nil, fmt.Errorf("metrics port is %T, not an integer", t["port"])
		}
		out = append(out, flyMetrics{Port: int(port), Path: path})
	}
	return out, nil
}

// checkFlyConfig parses a fly.toml and returns its health-check paths and
// every way it disagrees with the code and the Dockerfile.
func checkFlyConfig(data, dockerfile []byte) (checkPaths []string, problems []string) {
	var c flyConfig
	if err := toml.Unmarshal(data, &c); err != nil {
		return nil, []string{"fly.toml is not valid TOML: " + err.Error()}
	}
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	port, err := strconv.Atoi(c.Env["PORT"])
	if err != nil {
		bad("[env] PORT = %q is not a port number", c.Env["PORT"])
	}
	if c.HTTPService.InternalPort != port {
		bad("[http_service] internal_port %d != [env] PORT %d", c.HTTPService.InternalPort, port)
	}
	if c.KillSignal != "SIGINT" {
		bad("kill_signal = %q; the gateway shuts down gracefully on SIGINT and SIGTERM", c.KillSignal)
	}
	targets, err := c.metricsTargets()
	if err != nil {
		bad("%v", err)
	}
	metricsPort, err := strconv.Atoi(c.Env["METRICS_PORT"])
	if err != nil {
		bad("[env] METRICS_PORT = %q is not a port number", c.Env["METRICS_PORT"])
	}
	if len(targets) != 1 {
		bad("%d metrics targets, want 1", len(targets))
	}
	for _, m := range targets {
		if m.Port != metricsPort || m.Path != "/metrics" {
			bad("metrics scraped at port %d path %q, but METRICS_PORT=%d serves /metrics", m.Port, m.Path, metricsPort)
		}
	}
	for _, ch := range c.HTTPService.Checks {
		if ch.Method != "" && ch.Method != http.MethodGet {
			bad("check %s uses %s; the health endpoints answer GET", ch.Path, ch.Method)
		}
		checkPaths = append(checkPaths, ch.Path)
	}
	if len(checkPaths) < 2 {
		bad("fly.toml checks %v, want /healthz and /readyz", checkPaths)
	}
	docker := string(dockerfile)
	if !regexp.MustCompile(`(?m)^EXPOSE\s+`+strconv.Itoa(port)+`\s*$`).MatchString(docker) ||
		!regexp.MustCompile(`(?m)^ENV\b.*\bPORT=`+strconv.Itoa(port)+`\b`).MatchString(docker) {
		bad("Dockerfile does not expose and set PORT=%d", port)
	}
	if !strings.Contains(docker, "nonroot") || !strings.Contains(docker, "CGO_ENABLED=0") {
		bad("Dockerfile must build a static binary and run as non-root")
	}
	return checkPaths, problems
}

// The deploy files must match the code: the port the binary listens on,
// the health-check paths it serves, the signal it handles, the metrics
// port; and they must keep matching after flyctl rewrites fly.toml.
func TestDeployFilesMatchTheCode(t *testing.T) {
	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	fly, err := os.ReadFile("fly.toml")
	if err != nil {
		t.Fatal(err)
	}
	launched, err := os.ReadFile("testdata/fly.launched.toml")
	if err != nil {
		t.Fatal(err)
	}
	swap := func(in []byte, old, new string) []byte {
		if !strings.Contains(string(in), old) {
			t.Fatalf("test data lacks %q", old)
		}
		return []byte(strings.Replace(string(in), old, new, 1))
	}
	tests := []struct {
		name     string
		fly      []byte
		problems []string // substrings, one per expected problem; none: valid
	}{
		{"fly.toml", fly, nil},
		{"fly.toml as fly launch --copy-config rewrites it", launched, nil},
		{"internal_port differs from PORT", swap(launched, "internal_port = 8080", "internal_port = 8081"), []string{"internal_port 8081 != [env] PORT 8080"}},
		{"metrics port differs", swap(launched, "port = 9091", "port = 9092"), []string{"metrics scraped at port 9092"}},
		{"metrics table form, wrong path", swap(fly, `path = "/metrics"`, `path = "/stats"`), []string{`path "/stats"`}},
		{"kill_signal that cuts requests short", swap(launched, "kill_signal = 'SIGINT'", "kill_signal = 'SIGKILL'"), []string{`kill_signal = "SIGKILL"`}},
		{"not TOML", []byte("app = 'x\n"), []string{"not valid TOML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := checkFlyConfig(tt.fly, docker)
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems %q, want %d: %q", problems, len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.Contains(problems[i], want) {
					t.Errorf("problem %q does not say %q", problems[i], want)
				}
			}
		})
	}

	// Every checked path answers 200 on a running gateway.
	paths, _ := checkFlyConfig(fly, docker)
	_, g := externalAS(t, nil)
	for _, path := range paths {
		resp, err := http.Get(g.BaseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("fly.toml checks %s, which answers %d", path, resp.StatusCode)
		}
	}
}

// TestDockerignoreKeepsWhatTheBuildNeeds: the Docker build context drops
// what it must not carry (history, secrets, npm packages, test data) and
// keeps every file `go build .` reads: go.mod, go.sum and each source
// file of the module's packages that main imports, as `go list` names
// them. The patterns are applied by github.com/moby/patternmatcher, the
// matcher Docker itself uses for .dockerignore.
func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	f, err := os.Open(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(path string) bool {
		t.Helper()
		ok, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Dir,GoFiles,EmbedFiles,Module", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath, Dir     string
			GoFiles, EmbedFiles []string
			Module              *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != "github.com/mcp-gateway/mcp-gateway" {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range append(p.GoFiles, p.EmbedFiles...) {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, name)))
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, path := range needed {
		if excluded(path) {
			t.Errorf(".dockerignore excludes %s, which go build . needs", path)
		}
	}
	for _, path := range []string{
		".git/HEAD", ".env", ".env.local", "interop/oidc-provider/node_modules/oidc-provider/package.json",
		"node_modules/x", "artifacts/consent.png", ".ci/bin/staticcheck", "gateway/testdata/fuzz/FuzzX/1",
		"testdata/fly.launched.toml", "deploy_test.go", "devauth/devauth_test.go", "README.md",
	} {
		if !excluded(path) {
			t.Errorf(".dockerignore lets %s into the build context", path)
		}
	}
}

// CI must run exactly the test command README.md gives a newcomer, so the
// two cannot drift apart.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)Run the tests:\\s*```sh\\n([^\\n]+)\\n```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no \"Run the tests:\" command block")
	}
	cmd := strings.TrimSpace(string(m[1]))
	found := false
	for _, line := range strings.Split(string(ci), "\n") {
		if strings.TrimSpace(line) == cmd {
			found = true
		}
	}
	if !found {
		t.Errorf(".ci/run does not run the README test command %q on a line of its own", cmd)
	}
}
