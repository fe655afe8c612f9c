package orderly

import (
	"log/slog"
	"time"
)

// Header is one record header. Kafka allows repeated keys; order is kept.
type Header struct {
	Key   string
	Value []byte
}

// Record is one message of a partitioned stream.
//
// A Record handed to a Handler is owned by the engine: the handler may read
// it, and keep references to its slices after it returns, but must not
// modify it. Adapters fill a Record once and never touch it again.
type Record struct {
	Topic     string
	Partition int32
	// Offset is the record's position in its partition. Offsets increase
	// within a partition but need not be contiguous (compaction and
	// transaction markers leave gaps).
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

// Size is the number of bytes the record is charged against byte credits:
// key, value and headers. It is an estimate of the memory the engine holds
// for the record, not of its size on the wire.
func (r *Record) Size() int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// Header returns the value of the last header named key, and whether there
// was one.
func (r *Record) Header(key string) ([]byte, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// LogValue makes a record log as a group of the attributes that name it:
// topic, partition, offset and key (its value and headers are left out, as
// they may hold what must not be logged), so that
// slog.Any("record", r) works in a handler's logs.
func (r *Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("topic", r.Topic),
		slog.Int("partition", int(r.Partition)),
		slog.Int64("offset", r.Offset),
		slog.String("key", string(r.Key)),
	)
}
