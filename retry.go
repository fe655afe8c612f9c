package orderly

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// UnlimitedAttempts as RetryPolicy.MaxAttempts retries until the record
// succeeds (or its claim ends).
const UnlimitedAttempts = -1

// DefaultMaxAttempts is RetryPolicy.MaxAttempts when it is zero.
const DefaultMaxAttempts = 10

// NoJitter as RetryPolicy.Jitter turns jitter off (zero means the default).
const NoJitter = -1.0

// RetryPolicy says how failed handler calls are retried. A retry happens
// in the record's key actor: the key waits (later records of the key stay
// behind it, in order) while other keys go on; the partition's watermark
// waits for it; credits bound what piles up behind it. While a record waits
// for its next attempt it holds no goroutine and no concurrency slot.
//
// The delay before attempt n+1 is InitialDelay × Multiplier^(n-1), capped
// at MaxDelay, then spread by ±Jitter (a fraction). A handler error made
// with RetryAfter sets the delay itself; one made with Permanent (and a
// decode error of a Pipeline) is not retried at all.
//
// Every zero field takes its default, so RetryPolicy{} is a usable policy:
// 10 attempts, 100ms doubling to at most 30s, ±20% jitter.
type RetryPolicy struct {
	InitialDelay time.Duration // > 0; 0 means 100ms
	MaxDelay     time.Duration // ≥ InitialDelay; 0 means 30s (or InitialDelay, if larger)
	Multiplier   float64       // ≥ 1; 0 means 2
	// Jitter spreads each delay by ± this fraction, in [0, 1]; 0 means
	// the default 0.2. NoJitter turns it off.
	Jitter float64
	// MaxAttempts counts handler calls, the first included: 1 means no
	// retry; 0 means DefaultMaxAttempts; UnlimitedAttempts retries
	// forever. Below -1 is invalid.
	MaxAttempts int
	// Retryable, if set, classifies errors the handler did not mark: false
	// makes the error permanent.
	Retryable func(error) bool
}

func (p *RetryPolicy) withDefaults() RetryPolicy {
	q := *p
	if q.InitialDelay == 0 {
		q.InitialDelay = 100 * time.Millisecond
	}
	if q.MaxDelay == 0 {
		q.MaxDelay = max(30*time.Second, q.InitialDelay)
	}
	if q.Multiplier == 0 {
		q.Multiplier = 2
	}
	switch q.Jitter {
	case 0:
		q.Jitter = 0.2
	case NoJitter:
		q.Jitter = 0
	}
	if q.MaxAttempts == 0 {
		q.MaxAttempts = DefaultMaxAttempts
	}
	return q
}

func (p *RetryPolicy) validate() error {
	switch {
	case p.InitialDelay < 0:
		return invalid("RetryPolicy.InitialDelay %v: must be ≥ 0", p.InitialDelay)
	case p.MaxDelay < 0 || (p.MaxDelay > 0 && p.MaxDelay < p.InitialDelay):
		return invalid("RetryPolicy.MaxDelay %v: must be ≥ InitialDelay (%v)", p.MaxDelay, p.InitialDelay)
	case p.Multiplier != 0 && (p.Multiplier < 1 || math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0)):
		return invalid("RetryPolicy.Multiplier %v: must be ≥ 1", p.Multiplier)
	case !(p.Jitter >= 0 && p.Jitter <= 1) && p.Jitter != NoJitter:
		return invalid("RetryPolicy.Jitter %v: must be in [0, 1], or NoJitter", p.Jitter)
	case p.MaxAttempts < UnlimitedAttempts:
		return invalid("RetryPolicy.MaxAttempts %d: must be ≥ 0, or UnlimitedAttempts", p.MaxAttempts)
	}
	return nil
}

// Backoff is the delay before the attempt after attempt number n (n ≥ 1).
func (p *RetryPolicy) Backoff(n int) time.Duration {
	d := float64(p.InitialDelay) * math.Pow(p.Multiplier, float64(n-1))
	d = min(d, float64(p.MaxDelay))
	if p.Jitter > 0 {
		d *= 1 + p.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// retry decides whether attempt n, which failed with err, is retried and
// after how long.
func (p *RetryPolicy) retry(err error, n int) (time.Duration, bool) {
	if IsPermanent(err) {
		return 0, false
	}
	if p.MaxAttempts != UnlimitedAttempts && n >= p.MaxAttempts {
		return 0, false
	}
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after, true
	}
	if p.Retryable != nil && !p.Retryable(err) {
		return 0, false
	}
	return p.Backoff(n), true
}

// WithRetry retries failed handler calls as the policy says. Without it a
// failed record is not retried: it goes straight to the fallback (WithFallback),
// the dead-letter sink, or the log.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) {
		if err := p.validate(); err != nil {
			c.fail(err)
			return
		}
		q := p.withDefaults()
		c.retry = &q
	}
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the record is not retried and goes
// straight to recovery or dead-lettering. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.err, e.after)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter asks for the next attempt after d instead of the policy's
// backoff (a downstream's Retry-After, say). The policy's MaxAttempts still
// applies. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err, max(d, 0)}
}
