package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// chaosVerboseEnv prints every member's log lines, Debug included, after a
// chaos run: ORDERLY_CHAOS_VERBOSE=1.
const chaosVerboseEnv = "ORDERLY_CHAOS_VERBOSE"

// Logs journals the log lines of a run's members (engine and
// adapter) and prints them when the test fails, or always with
// ORDERLY_CHAOS_VERBOSE set. Without it, only warnings and errors are
// kept, the last chaosLogsKept of them.
type Logs struct {
	min     slog.Level
	verbose bool
	mu      sync.Mutex
	lines   []string
	counts  map[string]int // warnings and errors by message
}

const chaosLogsKept = 400

func newLogs(t *testing.T) *Logs {
	l := &Logs{min: slog.LevelWarn, counts: make(map[string]int)}
	if os.Getenv(chaosVerboseEnv) != "" {
		l.min, l.verbose = slog.LevelDebug, true
	}
	t.Cleanup(func() {
		if !t.Failed() && !l.verbose {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Logf("members' log (%d lines):\n%s", len(l.lines), strings.Join(l.lines, "\n"))
	})
	return l
}

// logger returns member's logger.
func (l *Logs) logger(member string) *slog.Logger {
	return slog.New(&chaosLogHandler{l: l, prefix: member})
}

// warnings counts the warnings and errors logged with a message that
// contains part.
func (l *Logs) Warnings(part string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for msg, c := range l.counts {
		if strings.Contains(msg, part) {
			n += c
		}
	}
	return n
}

type chaosLogHandler struct {
	l      *Logs
	prefix string // member name and the attributes added by With
}

func (h *chaosLogHandler) Enabled(_ context.Context, level slog.Level) bool { return level >= h.l.min }

func (h *chaosLogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s", r.Time.Format("15:04:05.000"), h.prefix, r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	h.l.lines = append(h.l.lines, b.String())
	if r.Level >= slog.LevelWarn {
		h.l.counts[r.Message]++
	}
	if !h.l.verbose && len(h.l.lines) > chaosLogsKept {
		h.l.lines = h.l.lines[len(h.l.lines)-chaosLogsKept:]
	}
	return nil
}

func (h *chaosLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	return &chaosLogHandler{l: h.l, prefix: b.String()}
}

func (h *chaosLogHandler) WithGroup(string) slog.Handler { return h }
