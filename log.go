package orderly

import (
	"log/slog"
)

// recordAttrs returns the log attributes that name a record (topic,
// partition, offset, key), followed by extra: every engine log line about a
// record carries them at its top level. Users log a record with
// slog.Any("record", r) (see Record.LogValue).
func recordAttrs(r *Record, extra ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{
		slog.String("topic", r.Topic),
		slog.Int("partition", int(r.Partition)),
		slog.Int64("offset", r.Offset),
		slog.String("key", string(r.Key)),
	}, extra...)
}
