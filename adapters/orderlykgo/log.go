package orderlykgo

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger hands kgo's log lines to a slog.Logger: errors and warnings at
// the same levels, info lines at Debug (kgo narrates every rebalance at
// info) and debug lines one step below Debug. Its level is fixed when it is
// made, from what the slog logger enables then.
type kgoLogger struct {
	l     *slog.Logger
	level kgo.LogLevel
}

// slogLevelDebugKgo is the slog level of kgo's debug lines.
const slogLevelDebugKgo = slog.LevelDebug - 4

func newKgoLogger(l *slog.Logger) kgoLogger {
	ctx := context.Background()
	level := kgo.LogLevelNone
	for _, c := range []struct {
		kgo  kgo.LogLevel
		slog slog.Level
	}{
		{kgo.LogLevelError, slog.LevelError},
		{kgo.LogLevelWarn, slog.LevelWarn},
		{kgo.LogLevelInfo, slog.LevelDebug},
		{kgo.LogLevelDebug, slogLevelDebugKgo},
	} {
		if l.Enabled(ctx, c.slog) {
			level = c.kgo
		}
	}
	return kgoLogger{l: l, level: level}
}

func (k kgoLogger) Level() kgo.LogLevel { return k.level }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelDebug
	default:
		l = slogLevelDebugKgo
	}
	k.l.Log(context.Background(), l, "kgo: "+msg, keyvals...)
}
