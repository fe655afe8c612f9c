package orderly

import (
	"context"
	"errors"
)

// Rereader is implemented by claims that can read their partition again
// from an offset, beside and independently of Records. A claim that has it
// lets the engine spill a hot or stuck key: instead of pausing the
// partition when a key is over its buffer (WithKeyBuffer), the engine drops
// the key's later records from memory, goes on with the other keys, and
// reads the dropped records again from the log once the key has drained
// (see KeyOverflowSpill). The log is the overflow store: nothing is held
// in memory for a spilled key.
//
// adapters/memory, adapters/orderlysarama and adapters/orderlykgo claims
// implement it; adapters/adaptertest checks an implementation.
type Rereader interface {
	// ReadFrom opens a stream of the claim's partition from offset on. It
	// reads whatever the log holds, whether or not Records delivered it,
	// and is not affected by Pause. It may block (a Kafka client asks the
	// broker where to start) until ctx is done, and returns an error when
	// the stream cannot be opened, such as an offset the log no longer
	// has. The engine opens at most one stream per claim at a time, closes
	// it before the claim's serve call returns, and never calls ReadFrom
	// after that. Safe for concurrent use with the Claim's other methods.
	ReadFrom(ctx context.Context, offset int64) (RecordStream, error)
}

// RecordStream is one re-read of a partition (see Rereader): its records
// from the offset given to ReadFrom on, in offset order.
//
// Next and Close may be called from different goroutines; Next is not
// called concurrently with itself.
type RecordStream interface {
	// Next returns the stream's next batch: at least one record, offsets
	// increasing within it and from the batch before, the first at or
	// above the offset given to ReadFrom (offsets the log no longer has
	// are skipped, as Records skips them). It blocks until records are
	// available or ctx is done (it then returns ctx's error), and returns
	// an error when the stream ends: ErrStreamClosed after Close or once
	// the claim is revoked, or the client's error. The records belong to
	// the engine, as those of Records do.
	Next(ctx context.Context) ([]*Record, error)

	// Close ends the stream and releases what it holds (a Kafka client's
	// fetches for it). It is idempotent and does not block for long; a
	// Next blocked in another goroutine returns ErrStreamClosed.
	Close() error
}

// ErrStreamClosed is returned by RecordStream.Next once the stream was
// closed or its claim revoked.
var ErrStreamClosed = errors.New("orderly: record stream closed")

// KeyOverflow is what a partition does when a key holds more than its key
// buffer (WithKeyBuffer), as PartitionStats reports it.
type KeyOverflow string

const (
	// KeyOverflowSpill: the key spills. Its later records are dropped
	// from memory (the partition is not paused for it) and read again
	// from the log once the key has drained to its low water mark, by a
	// re-reader shared by the partition's spilled keys; they reach the
	// key in offset order, none twice. The claim is a Rereader, and the
	// engine is at-least-once with keys (ByKey, ByKeyFunc, ByKeys).
	KeyOverflowSpill KeyOverflow = "spill"
	// KeyOverflowPause: the partition's fetching pauses (PauseKey) until
	// the key drains: the claim cannot re-read its partition, or the
	// engine is at-most-once (WithAtMostOnce: a dropped record's offset
	// would already be committed), or the partition is one key (Serial:
	// spilling would only read everything twice).
	KeyOverflowPause KeyOverflow = "pause"
)
