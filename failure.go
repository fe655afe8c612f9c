package orderly

import (
	"context"
	"log/slog"
	"runtime/debug"
)

// What happens to a record whose handler fails (returns an error or
// panics; a panic becomes a *PanicError):
//
//  1. With WithRetry, the attempt is retried with backoff inside the
//     record's key actor, unless the error is Permanent or the policy's
//     attempts are used up.
//  2. After the last attempt, the WithRecover function (if any) may
//     declare the record done.
//  3. Otherwise the record goes to the WithDeadLetter sink (if any), whose
//     write is retried until it succeeds; WithKeyParking then sends the
//     key's later records after it.
//  4. Without a sink, the failure is logged with the record's topic,
//     partition, offset, key and attempt.
//
// In every case the record then counts as done and the watermark moves past
// it: a failing record never stops the partition and is never re-read in a
// loop.

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

// deadLetterCall calls the sink, turning a panic into an error so that
// the write is retried rather than lost.
func (e *Engine) deadLetterCall(ctx context.Context, r *Record, dl DeadLetter) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return e.cfg.deadLetter.DeadLetter(ctx, r, dl)
}
