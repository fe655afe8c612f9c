package orderly

import (
	"context"
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Option configures an Engine. Options are checked once, by New; a bad
// value makes New return an error wrapping ErrInvalidOption.
type Option func(*config)

type limits struct {
	records int
	bytes   int64
}

type config struct {
	ordering       Ordering
	concurrency    int
	keyRecords     int // WithKeyBuffer; 0: the default (see keyLimits)
	keyBytes       int64
	partition      limits
	engine         limits
	lowMark        float64
	maxUncommitted int
	commitInterval time.Duration
	commitEvery    int
	commitTimeout  time.Duration
	revokeTimeout  time.Duration
	drainTimeout   time.Duration
	atMostOnce     bool
	logger         *slog.Logger
	middleware     []Middleware
	hooks          hooks
	retry          *RetryPolicy
	fallback       func(ctx context.Context, r *Record, err error) error
	deadLetter     DeadLetterSink
	parking        bool
	parkFor        time.Duration
	breaker        *BreakerPolicy
	attemptTimeout time.Duration
	rateLimit      *rateLimit
	partitionRate  *rateLimit
	priorities     *priorityConfig // WithPriorities; nil without
	errs           []error
}

func defaultConfig() config {
	return config{
		ordering:       ByKey(),
		concurrency:    64,
		partition:      limits{records: 1000, bytes: 16 << 20},
		engine:         limits{records: 10000, bytes: 128 << 20},
		lowMark:        0.5,
		maxUncommitted: 1_000_000,
		commitInterval: time.Second,
		commitEvery:    1000,
		commitTimeout:  10 * time.Second,
		revokeTimeout:  30 * time.Second,
		drainTimeout:   30 * time.Second,
		logger:         slog.Default(),
	}
}

func (c *config) fail(err error) { c.errs = append(c.errs, err) }

// WithOrdering sets the ordering mode: ByKey (the default), ByKeyFunc,
// ByKeys, Serial or Unordered.
func WithOrdering(o Ordering) Option {
	return func(c *config) {
		if !o.valid() {
			c.fail(invalid("WithOrdering: use ByKey, ByKeyFunc, ByKeys, Serial or Unordered"))
		}
		c.ordering = o
	}
}

// WithMaxConcurrency sets the most handler calls in flight at once across
// the engine, over all partitions. Default 64; 0 means the default; must
// not be negative.
func WithMaxConcurrency(n int) Option {
	return func(c *config) {
		switch {
		case n < 0:
			c.fail(invalid("WithMaxConcurrency(%d): must be ≥ 1 (0: the default)", n))
		case n > 0:
			c.concurrency = n
		}
	}
}

// setLimits applies a buffer option's records and bytes to l: a zero value
// keeps l's current value (the default), so that either can be set alone.
func (c *config) setLimits(name string, l *limits, records int, bytes int64) {
	if records < 0 || bytes < 0 {
		c.fail(invalid("%s(%d, %d): must not be negative (0: the default)", name, records, bytes))
		return
	}
	if records > 0 {
		l.records = records
	}
	if bytes > 0 {
		l.bytes = bytes
	}
}

// WithKeyBuffer sets a key's high water mark: the records (and their
// bytes) one key may hold, queued or running, before it overflows. What a
// key over it does depends on the claim (see KeyOverflow):
//
//   - It spills (KeyOverflowSpill), when the claim can re-read its
//     partition (Rereader: the memory and Kafka adapters). Its later
//     records are dropped from memory and read again from the log once it
//     has drained to its low water mark (WithLowWaterMark), in order; the
//     partition is not paused, so the other keys go on at full speed
//     while the spilled key holds the watermark back (see
//     WithMaxUncommitted). Default: half the partition buffer, so
//     that one key never takes more than half of it.
//   - It pauses its partition's fetching (PauseKey) until it falls to its
//     low water mark (KeyOverflowPause: a claim that cannot re-read,
//     WithAtMostOnce, or Serial). Records already fetched, of every key,
//     are still accepted and run, so a full key delays only what must wait
//     for it. Default: the partition buffer, so that a hot key never
//     pauses its partition while the partition itself has credit.
//
// A zero records or bytes keeps the default, so either may be set alone;
// negative values are invalid.
func WithKeyBuffer(records int, bytes int64) Option {
	return func(c *config) {
		c.keyRecords, c.keyBytes = records, bytes
		if records < 0 || bytes < 0 {
			c.fail(invalid("WithKeyBuffer(%d, %d): must not be negative (0: the default)", records, bytes))
		}
	}
}

// WithPartitionBuffer sets how many records, and how many bytes of them
// (see Record.Size), one partition may hold in the engine between dispatch
// and completion. When it runs out, the partition's fetching is paused and
// its dispatcher waits for credit. Default 1000 records, 16 MiB; a zero
// records or bytes keeps its default, so either may be set alone; negative
// values are invalid.
func WithPartitionBuffer(records int, bytes int64) Option {
	return func(c *config) { c.setLimits("WithPartitionBuffer", &c.partition, records, bytes) }
}

// WithEngineBuffer sets how many records, and bytes, the whole engine may
// hold over all partitions. When it runs out, every partition that asks for
// more is paused until credit returns. Default 10,000 records, 128 MiB; a
// zero records or bytes keeps its default, so either may be set alone;
// negative values are invalid.
//
// Memory bound: the engine holds at most this many records, plus, per
// assigned partition, what the source had already fetched when the
// partition was paused (for adapters/memory its fetch buffer; for the
// sarama adapter Consumer.ChannelBufferSize plus one batch and one fetch
// response).
func WithEngineBuffer(records int, bytes int64) Option {
	return func(c *config) { c.setLimits("WithEngineBuffer", &c.engine, records, bytes) }
}

// WithLowWaterMark sets where a paused partition resumes, as a fraction of
// each high water mark: it resumes when every credit that paused it is back
// at or below fraction × high. Default 0.5; must be in [0, 1) (0 is a
// valid mark here: resume only when empty).
func WithLowWaterMark(fraction float64) Option {
	return func(c *config) {
		if !(fraction >= 0 && fraction < 1) {
			c.fail(invalid("WithLowWaterMark(%v): must be in [0, 1)", fraction))
		}
		c.lowMark = fraction
	}
}

// WithMaxUncommitted bounds a partition's uncommitted window: the records
// dispatched since the watermark (the lowest unfinished offset), finished or
// not. A record that takes long, or a spilled key waiting to be read again,
// holds the watermark back while the other keys run ahead; once n records
// have piled up behind it the partition is paused (PauseUncommitted). This
// bounds what a crash re-delivers (beyond the finished offsets the commit
// metadata can carry) and the offset tracker's memory: two bits per offset
// of the window, about 250 KB for a full window of 1,000,000. Default
// 1,000,000, so that a spilled hot key lets the other keys of its partition
// run far ahead; 0 means the default; must not be negative.
func WithMaxUncommitted(n int) Option {
	return func(c *config) {
		switch {
		case n < 0:
			c.fail(invalid("WithMaxUncommitted(%d): must be ≥ 1 (0: the default)", n))
		case n > 0:
			c.maxUncommitted = n
		}
	}
}

// setDuration applies a duration option: 0 keeps the default, negative is
// invalid.
func (c *config) setDuration(name string, d time.Duration, to *time.Duration) {
	switch {
	case d < 0:
		c.fail(invalid("%s(%v): must be > 0 (0: the default)", name, d))
	case d > 0:
		*to = d
	}
}

// WithCommitInterval sets how often the committer commits the partitions
// whose watermark or completed offsets changed (with one request per tick
// for all of them when the source is a BatchCommitter). Default 1s; 0
// means the default; must not be negative. Revokes and shutdown always
// commit at once, synchronously.
func WithCommitInterval(d time.Duration) Option {
	return func(c *config) { c.setDuration("WithCommitInterval", d, &c.commitInterval) }
}

// CommitIntervalOnly as WithCommitEvery's count commits on the interval
// only.
const CommitIntervalOnly = -1

// WithCommitEvery commits a partition as soon as n records have completed
// since its last commit, without waiting for the interval. Default 1000;
// 0 means the default; CommitIntervalOnly commits on the interval only;
// other negative values are invalid.
func WithCommitEvery(n int) Option {
	return func(c *config) {
		switch {
		case n == CommitIntervalOnly:
			c.commitEvery = 0
		case n < 0:
			c.fail(invalid("WithCommitEvery(%d): must be ≥ 1, or CommitIntervalOnly (0: the default)", n))
		case n > 0:
			c.commitEvery = n
		}
	}
}

// WithCommitTimeout bounds each commit: an interval commit that takes
// longer is abandoned and retried at the next interval, and the final
// commit of a revoke or shutdown gets this long after the revoke (or
// drain) timeout and the one second handlers cancelled at it get to
// return, so Run returns within the drain timeout plus one second plus the
// commit timeout whatever the broker does. Default 10s; 0 means the default;
// must not be negative.
func WithCommitTimeout(d time.Duration) Option {
	return func(c *config) { c.setDuration("WithCommitTimeout", d, &c.commitTimeout) }
}

// WithRevokeTimeout bounds how long a revoked partition waits for its
// running handlers before their contexts are cancelled (they then get one
// second more to return) and the partition commits what is done. Default
// 30s; 0 means the default; must not be negative.
func WithRevokeTimeout(d time.Duration) Option {
	return func(c *config) { c.setDuration("WithRevokeTimeout", d, &c.revokeTimeout) }
}

// WithDrainTimeout is WithRevokeTimeout for shutdown: when Run's context is
// cancelled, running handlers get this long before their contexts are
// cancelled (and then one second more to return). Default 30s; 0 means the
// default; must not be negative.
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) { c.setDuration("WithDrainTimeout", d, &c.drainTimeout) }
}

// WithAtMostOnce commits each record's offset when it is dispatched, before
// it is handled: a crash loses the records in flight instead of handling
// them twice. The default is at-least-once: an offset is committed only
// when it and every lower offset are done.
func WithAtMostOnce() Option {
	return func(c *config) { c.atMostOnce = true }
}

// WithLogger sets the logger for engine events and handler failures.
// Default slog.Default(); nil is invalid.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail(invalid("WithLogger(nil)"))
		}
		c.logger = l
	}
}

// WithMiddleware wraps the handler; the first middleware given runs
// outermost. May be given several times; the lists are joined in order.
func WithMiddleware(m ...Middleware) Option {
	return func(c *config) {
		for i, mw := range m {
			if mw == nil {
				c.fail(invalid("WithMiddleware: middleware %d is nil", i))
			}
		}
		c.middleware = append(c.middleware, m...)
	}
}

type rateLimit struct {
	limit rate.Limit
	burst int
}

// WithAttemptTimeout runs each handler attempt under a context deadline of
// d. A handler that outlives its deadline by another d is reported as stuck
// (a log line and Stats.Stuck) until it returns; the engine cannot stop a
// handler that ignores its context. Default: no deadline (0 means the
// default); must not be negative.
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *config) { c.setDuration("WithAttemptTimeout", d, &c.attemptTimeout) }
}

// WithRateLimit limits handler starts (attempts) engine-wide to r per
// second with bursts of burst (a token bucket, golang.org/x/time/rate). A
// record waiting for a token holds no concurrency slot. r must be > 0 (it
// has no default); burst 0 means 1; negative bursts are invalid.
func WithRateLimit(r float64, burst int) Option {
	return func(c *config) { c.rateLimit = c.newRateLimit("WithRateLimit", r, burst) }
}

// WithPartitionRateLimit is WithRateLimit for each partition on its own;
// both may be set.
func WithPartitionRateLimit(r float64, burst int) Option {
	return func(c *config) { c.partitionRate = c.newRateLimit("WithPartitionRateLimit", r, burst) }
}

func (c *config) newRateLimit(name string, r float64, burst int) *rateLimit {
	if !(r > 0) || math.IsInf(r, 1) || burst < 0 {
		c.fail(invalid("%s(%v, %d): rate must be > 0 and finite, burst ≥ 0 (0: 1)", name, r, burst))
	}
	return &rateLimit{rate.Limit(r), max(burst, 1)}
}
