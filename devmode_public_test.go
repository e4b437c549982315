package main

import (
	"context"
	"github.com/mcp-gateway/mcp-gateway/internal/syncbuf"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestPublicDevModeWarnsRepeatedly(t *testing.T) {
	var buf syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { warnPublicDevMode(ctx, logger, "0.0.0.0", 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(buf.String(), "BEYOND LOOPBACK") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d warnings after 5s, want at least 3", strings.Count(buf.String(), "BEYOND LOOPBACK"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestDevModeRefusesPublicHostWithoutOptIn(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{"HOST": "0.0.0.0"}))
	if err == nil || !strings.Contains(err.Error(), "DEV_AUTH_ALLOW_PUBLIC") {
		t.Fatalf("err = %v, want a refusal naming DEV_AUTH_ALLOW_PUBLIC", err)
	}
	if _, err := loadConfig(envOf(map[string]string{"HOST": "0.0.0.0", "DEV_AUTH_ALLOW_PUBLIC": "true"})); err != nil {
		t.Fatalf("with DEV_AUTH_ALLOW_PUBLIC=true: %v", err)
	}
}
