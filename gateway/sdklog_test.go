package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestSDKLoggerDropsInfo(t *testing.T) {
	var buf bytes.Buffer
	l := sdkLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Info("server session connected")
	l.With("k", "v").WithGroup("g").Debug("detail")
	if buf.Len() != 0 {
		t.Errorf("info/debug from the SDK were logged: %s", buf.String())
	}
	l.With("k", "v").Warn("something odd")
	l.Error("something broke")
	if out := buf.String(); !strings.Contains(out, "something odd") || !strings.Contains(out, `"k":"v"`) || !strings.Contains(out, "something broke") {
		t.Errorf("warnings and errors lost: %s", out)
	}
}
