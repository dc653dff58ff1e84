package service

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestNewLogger_JSONDurationsCarryTheirUnit(t *testing.T) {
	var buf bytes.Buffer
	level := &slog.LevelVar{}
	newLogger(&buf, "json", level).Info("x", "latency", 1500*time.Microsecond, "nested", slog.GroupValue(slog.Duration("d", 2*time.Second)))
	for _, want := range []string{`"latency":"1.5ms"`, `"d":"2s"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %s lacks %s", buf.String(), want)
		}
	}
}
