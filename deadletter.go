package orderly

import (
	"context"
	"errors"
	"time"
)

// DeadLetter describes why a record is dead-lettered.
type DeadLetter struct {
	Err          error     // the last attempt's error (ErrKeyParked for a parked key's follower)
	Attempts     int       // handler calls made for the record
	FirstFailure time.Time // when its first attempt failed
	Group        string    // the consumer group, when the source knows it
}

// ErrKeyParked is the DeadLetter.Err of a record that was not handled
// because an earlier record of its key was dead-lettered and the key is
// parked (see WithKeyParking).
var ErrKeyParked = errors.New("orderly: key parked after an earlier record was dead-lettered")

// DeadLetterSink receives records that failed for good. DeadLetter must be
// safe for concurrent use; it is called on the record's key actor, so the
// key waits for it. An error makes the engine retry the write with backoff
// until it succeeds or the claim ends: a record is never dropped silently.
// adapters/orderlysarama provides a sink that writes to a dead-letter topic.
type DeadLetterSink interface {
	DeadLetter(ctx context.Context, r *Record, dl DeadLetter) error
}

// DeadLetterTopicNamer is implemented by sinks that write to a topic; hooks
// get its answer in RecordInfo.DeadLetterTopic (a tracing hook names its
// producer span after it).
type DeadLetterTopicNamer interface {
	DeadLetterTopic(r *Record) string
}

// DeadLetterFunc adapts a function to a DeadLetterSink.
type DeadLetterFunc func(ctx context.Context, r *Record, dl DeadLetter) error

// DeadLetter calls f.
func (f DeadLetterFunc) DeadLetter(ctx context.Context, r *Record, dl DeadLetter) error {
	return f(ctx, r, dl)
}

// WithDeadLetter sends records that failed for good (after their last
// attempt, and after the fallback (WithFallback), if any, declined them) to sink;
// then they count as done and the watermark moves past them.
func WithDeadLetter(sink DeadLetterSink) Option {
	return func(c *config) {
		if sink == nil {
			c.fail(invalid("WithDeadLetter(nil)"))
		}
		c.deadLetter = sink
	}
}

// WithFallback sets a fallback: a function called after a record's last
// attempt failed, with the last error, before the record goes to the
// dead-letter sink. It is not panic recovery (the engine recovers handler
// panics itself): it is the last chance to handle the record another way
// (a default value, a compensating action). Returning nil declares the
// record done (OutcomeRecovered); returning an error passes the record on
// to the dead-letter sink (or, without one, to the log) with that error. A
// fallback that panics counts as returning the panic as an error. It runs
// on the record's key actor, so the key waits for it.
func WithFallback(f func(ctx context.Context, r *Record, err error) error) Option {
	return func(c *config) {
		if f == nil {
			c.fail(invalid("WithFallback(nil)"))
		}
		c.fallback = f
	}
}

// ParkUntilReleased as WithKeyParking's duration parks a key until
// Engine.ReleaseKey releases it.
const ParkUntilReleased time.Duration = -1

// DefaultParkFor is how long WithKeyParking(0) parks a key.
const DefaultParkFor = 5 * time.Minute

// WithKeyParking parks a key once one of its records is dead-lettered:
// the key's later records on that partition follow it to the dead-letter
// sink, in order, without being handled, so that a key's later events are
// never applied on top of a failed one. A parked key is released after d,
// or by Engine.ReleaseKey; d == 0 means DefaultParkFor, ParkUntilReleased
// parks until ReleaseKey, and other negative values are invalid. Needs
// WithDeadLetter. Under ByKeys a record is parked if any of its keys is,
// and dead-lettering it parks all of them. Parking lives in the engine: a
// restart or a partition moving to another member forgets it.
func WithKeyParking(d time.Duration) Option {
	return func(c *config) {
		switch {
		case d == 0:
			d = DefaultParkFor
		case d < 0 && d != ParkUntilReleased:
			c.fail(invalid("WithKeyParking(%v): must be ≥ 0, or ParkUntilReleased", d))
		}
		c.parking, c.parkFor = true, d
	}
}
