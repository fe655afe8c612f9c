package orderly

import (
	"context"
	"log/slog"
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
	key            limits
	keySet         bool
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
	recover        func(ctx context.Context, r *Record, err error) error
	deadLetter     DeadLetterSink
	parking        bool
	parkFor        time.Duration
	breaker        *BreakerPolicy
	attemptTimeout time.Duration
	rateLimit      *rateLimit
	partitionRate  *rateLimit
	errs           []error
}

func defaultConfig() config {
	return config{
		ordering:       ByKey(),
		concurrency:    64,
		partition:      limits{records: 1000, bytes: 16 << 20},
		engine:         limits{records: 10000, bytes: 128 << 20},
		lowMark:        0.5,
		maxUncommitted: 10000,
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
// the engine, over all partitions. Default 64; must be ≥ 1.
func WithMaxConcurrency(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail(invalid("WithMaxConcurrency(%d): must be ≥ 1", n))
		}
		c.concurrency = n
	}
}

// WithKeyBuffer sets a key's high water mark: the records (and their
// bytes) one key may hold, queued or running. A key over it pauses its
// partition's fetching (reason "key") until it falls to its low water mark;
// records already fetched, of every key, are still accepted and run, so a
// full key delays only what must wait for it. Default: the partition buffer,
// so that a hot key never pauses its partition while the partition itself
// has credit. Set it lower to stop one key from taking most of a
// partition's buffer. records and bytes must be ≥ 1.
func WithKeyBuffer(records int, bytes int64) Option {
	return func(c *config) {
		if records < 1 || bytes < 1 {
			c.fail(invalid("WithKeyBuffer(%d, %d): both must be ≥ 1", records, bytes))
		}
		c.key, c.keySet = limits{records, bytes}, true
	}
}

// WithPartitionBuffer sets how many records, and how many bytes of them
// (see Record.Size), one partition may hold in the engine between dispatch
// and completion. When it runs out, the partition's fetching is paused and
// its dispatcher waits for credit. Default 1000 records, 16 MiB; both must
// be ≥ 1.
func WithPartitionBuffer(records int, bytes int64) Option {
	return func(c *config) {
		if records < 1 || bytes < 1 {
			c.fail(invalid("WithPartitionBuffer(%d, %d): both must be ≥ 1", records, bytes))
		}
		c.partition = limits{records, bytes}
	}
}

// WithEngineBuffer sets how many records, and bytes, the whole engine may
// hold over all partitions. When it runs out, every partition that asks for
// more is paused until credit returns. Default 10,000 records, 128 MiB; both
// must be ≥ 1.
//
// Memory bound: the engine holds at most this many records, plus, per
// assigned partition, what the source had already fetched when the
// partition was paused (for adapters/memory its fetch buffer; for sarama
// Consumer.ChannelBufferSize plus one fetch response).
func WithEngineBuffer(records int, bytes int64) Option {
	return func(c *config) {
		if records < 1 || bytes < 1 {
			c.fail(invalid("WithEngineBuffer(%d, %d): both must be ≥ 1", records, bytes))
		}
		c.engine = limits{records, bytes}
	}
}

// WithLowWaterMark sets where a paused partition resumes, as a fraction of
// each high water mark: it resumes when every credit that paused it is back
// at or below fraction × high. Default 0.5; must be in [0, 1).
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
// not. A record that takes long holds the watermark back; once n records
// have piled up behind it the partition is paused. This bounds what a crash
// re-delivers, the offset tracker's memory, and the commit metadata.
// Default 10,000; must be ≥ 1.
func WithMaxUncommitted(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail(invalid("WithMaxUncommitted(%d): must be ≥ 1", n))
		}
		c.maxUncommitted = n
	}
}

// WithCommitInterval sets how often the committer commits each partition
// whose watermark or completed offsets changed. Default 1s; must be > 0.
// Revokes and shutdown always commit at once, synchronously.
func WithCommitInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(invalid("WithCommitInterval(%v): must be > 0", d))
		}
		c.commitInterval = d
	}
}

// WithCommitEvery commits a partition as soon as n records have completed
// since its last commit, without waiting for the interval. Default 1000;
// 0 commits by interval only; negative is invalid.
func WithCommitEvery(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.fail(invalid("WithCommitEvery(%d): must be ≥ 0", n))
		}
		c.commitEvery = n
	}
}

// WithCommitTimeout bounds each commit: an interval commit that takes
// longer is abandoned and retried at the next interval, and the final
// commit of a revoke or shutdown gets this long after the revoke (or
// drain) timeout, so Run returns within the drain timeout plus the commit
// timeout whatever the broker does. Default 10s; must be > 0.
func WithCommitTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(invalid("WithCommitTimeout(%v): must be > 0", d))
		}
		c.commitTimeout = d
	}
}

// WithRevokeTimeout bounds how long a revoked partition waits for its
// running handlers before their contexts are cancelled and the partition
// commits what is done. Default 30s; must be > 0.
func WithRevokeTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(invalid("WithRevokeTimeout(%v): must be > 0", d))
		}
		c.revokeTimeout = d
	}
}

// WithDrainTimeout is WithRevokeTimeout for shutdown: when Run's context is
// cancelled, running handlers get this long before their contexts are
// cancelled. Default 30s; must be > 0.
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(invalid("WithDrainTimeout(%v): must be > 0", d))
		}
		c.drainTimeout = d
	}
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
// handler that ignores its context. Default: no deadline; d must be > 0.
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(invalid("WithAttemptTimeout(%v): must be > 0", d))
		}
		c.attemptTimeout = d
	}
}

// WithRateLimit limits handler starts (attempts) engine-wide to r per
// second with bursts of burst (a token bucket, golang.org/x/time/rate). A
// record waiting for a token holds no concurrency slot. r must be > 0 and
// burst ≥ 1.
func WithRateLimit(r float64, burst int) Option {
	return func(c *config) {
		if !(r > 0) || burst < 1 {
			c.fail(invalid("WithRateLimit(%v, %d): rate must be > 0 and burst ≥ 1", r, burst))
		}
		c.rateLimit = &rateLimit{rate.Limit(r), burst}
	}
}

// WithPartitionRateLimit is WithRateLimit for each partition on its own;
// both may be set.
func WithPartitionRateLimit(r float64, burst int) Option {
	return func(c *config) {
		if !(r > 0) || burst < 1 {
			c.fail(invalid("WithPartitionRateLimit(%v, %d): rate must be > 0 and burst ≥ 1", r, burst))
		}
		c.partitionRate = &rateLimit{rate.Limit(r), burst}
	}
}
