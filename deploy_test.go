package main

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The deploy files must match the code: the port the binary listens on,
// the health-check paths it serves, the signal it handles, the metrics port.
func TestDeployFilesMatchTheCode(t *testing.T) {
	fly, err := os.ReadFile("fly.toml")
	if err != nil {
		t.Fatal(err)
	}
	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	value := func(key string) string {
		m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s*=\s*"?([^"\n]+)"?`).FindSubmatch(fly)
		if m == nil {
			t.Fatalf("fly.toml has no %s", key)
		}
		return strings.TrimSpace(string(m[1]))
	}
	if value("internal_port") != value("PORT") {
		t.Errorf("fly.toml internal_port %s != PORT %s", value("internal_port"), value("PORT"))
	}
	if value("port") != value("METRICS_PORT") {
		t.Errorf("fly.toml [metrics] port %s != METRICS_PORT %s", value("port"), value("METRICS_PORT"))
	}
	if value("kill_signal") != "SIGINT" {
		t.Errorf("kill_signal = %s; the gateway shuts down gracefully on SIGINT and SIGTERM", value("kill_signal"))
	}
	if !strings.Contains(string(docker), "EXPOSE "+value("PORT")) || !strings.Contains(string(docker), "PORT="+value("PORT")) {
		t.Errorf("Dockerfile does not expose and set PORT=%s", value("PORT"))
	}
	if !strings.Contains(string(docker), "nonroot") || !strings.Contains(string(docker), "CGO_ENABLED=0") {
		t.Error("Dockerfile must build a static binary and run as non-root")
	}

	// Every checked path answers 200 on a running gateway.
	_, g := externalAS(t, nil)
	paths := regexp.MustCompile(`(?m)^\s*path\s*=\s*"([^"]+)"`).FindAllSubmatch(fly, -1)
	checked := 0
	for _, p := range paths {
		path := string(p[1])
		if path == "/metrics" {
			continue // served on METRICS_PORT
		}
		checked++
		resp, err := http.Get(g.BaseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("fly.toml checks %s, which answers %d", path, resp.StatusCode)
		}
	}
	if checked < 2 {
		t.Errorf("fly.toml checks %d paths, want /healthz and /readyz", checked)
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
