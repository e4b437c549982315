package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help", "-help"} {
		var out bytes.Buffer
		if err := run(t.Context(), []string{arg}, envOf(nil), &out, io.Discard, nil); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"mcp-gateway check", "mcp-gateway version", "go run . check"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output lacks %q", arg, want)
			}
		}
		for _, v := range envVars() {
			if !strings.Contains(out.String(), v.Name+"=") {
				t.Errorf("%s: output does not list %s", arg, v.Name)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, envOf(nil), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "mcp-gateway ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("version = %q", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"chekc"}, `did you mean "check"`},
		{[]string{"--verison"}, `did you mean "version"`},
		{[]string{"HELP"}, `did you mean "help"`},
		{[]string{"serve"}, "commands are check, version, help"},
		{[]string{"PORT=9000"}, "configured by environment variables"},
	} {
		err := run(t.Context(), tc.args, envOf(nil), io.Discard, io.Discard, nil)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want a configuration error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"check", "check", 0}, {"chekc", "check", 2}, {"chck", "check", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

// The port the gateway listens on is taken: the error names PORT.
func TestAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	err = run(t.Context(), nil, envOf(map[string]string{"HOST": "127.0.0.1", "PORT": fmt.Sprint(port)}), io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "set PORT") {
		t.Errorf("run on a busy port = %v, want a hint to set PORT", err)
	}
}

// Logs are JSON when not written to a terminal (LOG_FORMAT=auto), and
// durations are written as "10s", not nanoseconds.
func TestLoggerFormat(t *testing.T) {
	var b bytes.Buffer
	newLogger(&b, "info", "auto").Info("x", "timeout", 10*time.Second)
	if got := strings.TrimSpace(b.String()); !strings.HasPrefix(got, "{") || !strings.Contains(got, `"timeout":"10s"`) {
		t.Errorf("auto on a buffer = %s, want JSON with \"timeout\":\"10s\"", got)
	}
	b.Reset()
	newLogger(&b, "info", "text").Info("x", "timeout", 1500*time.Millisecond)
	if got := b.String(); !strings.Contains(got, "timeout=1.5s") {
		t.Errorf("text = %s", got)
	}
	b.Reset()
	newLogger(&b, "warn", "json").LogAttrs(context.Background(), slog.LevelInfo, "hidden")
	if b.Len() != 0 {
		t.Errorf("info logged at level warn: %s", b.String())
	}
}
