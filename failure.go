package orderly

import (
	"context"
	"log/slog"
)

// FailureHandler is told about a record whose handler returned an error or
// panicked (err is then a *PanicError). It runs on the record's key actor,
// so the key waits for it; when it returns, the record counts as done and
// the watermark may pass it.
//
// This is the single place where failure policy plugs in. The default,
// LogFailures, logs and moves on; retries with backoff, dead-lettering and
// key parking replace it.
type FailureHandler func(ctx context.Context, r *Record, err error)

// LogFailures returns the default FailureHandler: it logs the error with the
// record's topic, partition, offset and key at level Error.
func LogFailures(logger *slog.Logger) FailureHandler {
	return func(ctx context.Context, r *Record, err error) {
		logger.LogAttrs(ctx, slog.LevelError, "orderly: handler failed; record counted as done",
			RecordAttrs(r, slog.Any("error", err))...)
	}
}

// RecordAttrs returns the log attributes that name a record (topic,
// partition, offset, key), followed by extra.
func RecordAttrs(r *Record, extra ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{
		slog.String("topic", r.Topic),
		slog.Int("partition", int(r.Partition)),
		slog.Int64("offset", r.Offset),
		slog.String("key", string(r.Key)),
	}, extra...)
}
