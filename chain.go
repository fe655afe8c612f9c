package orderly

import (
	"context"
	"log/slog"
	"time"

	"github.com/orderly-go/orderly/actors"
	"golang.org/x/time/rate"
)

// chain is the failure chain: the user's policies a record meets on its
// journey through its key actor, in order, built once by New.
//
//  1. Before each attempt: the circuit breaker (while it is open the
//     record waits, its attempt not counted) and the rate limits,
//     engine-wide and per partition (it waits for a token). Waiting holds
//     no goroutine and no concurrency slot.
//  2. The attempt: the handler (with middleware) under the attempt
//     timeout, between the attempt hooks.
//  3. After a failed attempt: the retry policy (a later attempt, after a
//     backoff, in the same key actor).
//  4. After the last attempt: the fallback, which may declare the record
//     done.
//  5. Then the dead-letter sink, whose write is retried until it
//     succeeds, parking the record's keys; without a sink, the log.
//
// A record of a parked key skips to 5. The chain itself is immutable; what
// it keeps per partition (the partition's rate limiter, its parked keys,
// its handlers' context) lives on the partition, and what it keeps per
// record lives on the record's task, which the chain owns while a worker
// runs the record's turn (between turns it rests in its key's mailbox,
// owned by the dispatcher).
type chain struct {
	e         *Engine
	breaker   *breaker      // nil without WithCircuitBreaker
	limiter   *rate.Limiter // engine-wide; nil if none
	timeout   time.Duration // per attempt; 0: none
	retry     *RetryPolicy  // nil: no retries
	fallback  func(ctx context.Context, r *Record, err error) error
	sink      DeadLetterSink
	sinkRetry RetryPolicy   // backoff of failed dead-letter writes
	parkFor   time.Duration // > 0: for that long; ParkUntilReleased; 0: no parking
}

// task is one record's journey through its key actor: where it was
// dispatched from, its attempts, and the failure path if it comes to that.
// The dispatcher fills it at dispatch; the chain, on the worker running the
// record's turn, changes it; the dispatcher reads it again when it
// collects the finished record (the group's hand-overs order these).
type task struct {
	rec        *Record
	offset     int64 // rec.Offset, kept here so that completion does not touch the record
	size       int64
	dispatched time.Time // set when some hook needs it
	attempt    int       // handler calls made
	outcome    Outcome   // how the journey ended; read by the dispatcher's done
	admitted   bool      // a rate-limit token is already reserved for the next attempt
	level      uint8     // priority level (WithPriorities); 0 without
	runLevel   uint8     // the level the current step runs at: level, or a higher one inherited
	keys       []string  // the record's keys, when parking needs them
	quiet      uint64    // hooks whose filter left the record out (HookRecordFilter)
	fail       *failure  // nil until the record first fails
	born       int64     // dispatch stamp for Inspect (dispatchStamp)
	view       *taskView // for Inspect: guarded by the partition's viewMu; nil until the record first waits or fails
	reread     bool      // read again from the log: its key had spilled
}

// failure is the state of a record on the failure path.
type failure struct {
	first      time.Time // when its first attempt failed
	err        error     // the last error
	deadLetter bool      // the handler is done with it; only the dead-letter write remains
	dlAttempts int       // dead-letter writes tried
	unroutable bool      // its key function panicked: no handler call
}

func (t *task) failState() *failure {
	if t.fail == nil {
		t.fail = &failure{}
	}
	return t.fail
}

func (t *task) lastErr() error {
	if t.fail == nil {
		return nil
	}
	return t.fail.err
}

// step is the key actors' receive function: one step of t's journey, on
// worker w. It returns retry == true to be called again after the delay,
// with t's keys still blocked.
func (c *chain) step(p *partition, t *task, w *actors.Worker) (time.Duration, bool) {
	t.runLevel = uint8(w.Level())
	if p.stopping.Load() {
		c.abandon(p, t) // revoked before it finished: the next owner handles it
		return 0, false
	}
	if (t.fail == nil || !t.fail.deadLetter) && p.parked.Any(t.keys, time.Now) {
		f := t.failState()
		f.deadLetter, f.err = true, ErrKeyParked
		p.note(t, waitNone, 0)
	}
	switch {
	case t.fail != nil && t.fail.deadLetter:
		return c.deadLetter(p, t)
	case t.fail != nil && t.fail.unroutable && t.attempt == 0:
		return c.lastAttemptFailed(p, t)
	}
	return c.attempt(p, t, w)
}

// admit asks the breaker and the rate limits whether an attempt may start
// now. When it may not, it says how long to wait; done, when not nil, must
// be told the attempt's result.
func (c *chain) admit(p *partition, t *task) (done func(error), wait time.Duration) {
	if c.breaker != nil {
		if done, wait = c.breaker.admit(); done == nil {
			p.note(t, waitBreaker, wait)
			return nil, wait // open: wait without counting an attempt
		}
	}
	if !t.admitted {
		for _, l := range [...]*rate.Limiter{c.limiter, p.limiter} {
			if l != nil {
				wait = max(wait, l.Reserve().Delay())
			}
		}
		if wait > 0 {
			t.admitted = true // the token is reserved for the next try
			p.note(t, waitRateLimit, wait)
			if done != nil {
				done(context.Canceled) // not an attempt; excluded from the breaker's counts
			}
			return nil, wait
		}
	}
	t.admitted = false
	return done, 0
}

// attempt runs one handler call and decides what follows it.
func (c *chain) attempt(p *partition, t *task, w *actors.Worker) (time.Duration, bool) {
	e := c.e
	breakerDone, wait := c.admit(p, t)
	if wait > 0 {
		return wait, true
	}
	t.attempt++

	ctx, cancel := p.handlerCtx, context.CancelFunc(nil)
	if c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	var info RecordInfo
	heard := e.timed && !e.cfg.hooks.silent(t.quiet) // some hook wants this record
	if heard {
		info = p.info(t)
		if e.wantsStartTime(t) {
			info.Started = time.Now()
		}
		for _, h := range e.cfg.hooks.started {
			if t.quiet&h.bit != 0 {
				continue
			}
			e.guard("HookAttemptStarted", func() {
				if hc := h.h.OnAttemptStarted(ctx, t.rec, info); hc != nil {
					ctx = hc
				}
			})
		}
	}
	var stuck *time.Timer
	if c.timeout > 0 {
		rec, n := t.rec, t.attempt // the timer must not read t: a later attempt writes it
		stuck = time.AfterFunc(2*c.timeout, func() { c.reportStuck(p, rec, n, true) })
	}
	slot := &e.slots[w.ID()]
	slot.running.Store(p.num)
	err := e.call(ctx, t.rec)
	slot.running.Store(0)
	if stuck != nil && !stuck.Stop() {
		c.reportStuck(p, t.rec, t.attempt, false)
	}
	if breakerDone != nil {
		breakerDone(err)
	}
	if heard {
		for _, h := range e.cfg.hooks.finished {
			if t.quiet&h.bit == 0 {
				e.guard("HookAttemptFinished", func() { h.h.OnAttemptFinished(ctx, t.rec, info, err) })
			}
		}
	}
	if cancel != nil {
		cancel()
	}

	switch {
	case err == nil:
		c.end(p, t, OutcomeHandled)
		return 0, false
	case p.stopping.Load() && p.handlerCtx.Err() != nil:
		c.abandon(p, t) // cancelled by the revoke timeout: not done, the next owner handles it
		return 0, false
	}
	e.failed.Add(1)
	f := t.failState()
	if f.first.IsZero() {
		f.first = time.Now()
	}
	f.err = err
	if c.retry != nil {
		if delay, retry := c.retry.retry(err, t.attempt); retry {
			e.retried.Add(1)
			for _, h := range e.cfg.hooks.retried {
				if t.quiet&h.bit == 0 {
					e.guard("HookRetryScheduled", func() { h.h.OnRetryScheduled(ctx, t.rec, info, err, delay) })
				}
			}
			e.log.LogAttrs(ctx, slog.LevelDebug, "orderly: attempt failed; will retry",
				recordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Duration("delay", delay), slog.Any("error", err))...)
			p.note(t, waitRetry, delay)
			return delay, true
		}
	}
	return c.lastAttemptFailed(p, t)
}

// lastAttemptFailed handles a record whose last attempt failed: the
// fallback, then the dead-letter sink, then the log.
func (c *chain) lastAttemptFailed(p *partition, t *task) (time.Duration, bool) {
	e := c.e
	f := t.fail
	if c.fallback != nil {
		err := e.fallbackCall(p.handlerCtx, t.rec, f.err)
		if err == nil {
			c.end(p, t, OutcomeRecovered)
			return 0, false
		}
		f.err = err
	}
	if c.sink == nil {
		e.log.LogAttrs(p.handlerCtx, slog.LevelError, "orderly: handler failed; record counted as done",
			recordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Any("error", f.err))...)
		c.end(p, t, OutcomeFailed)
		return 0, false
	}
	f.deadLetter = true
	c.park(p, t)
	p.note(t, waitNone, 0)
	return c.deadLetter(p, t)
}

// deadLetter writes t to the sink, retrying with backoff until it succeeds
// or the claim ends.
func (c *chain) deadLetter(p *partition, t *task) (time.Duration, bool) {
	e := c.e
	f := t.fail
	ctx := p.handlerCtx
	if len(e.cfg.hooks.dead) > 0 {
		info := p.info(t)
		if n, ok := c.sink.(DeadLetterTopicNamer); ok {
			e.guard("DeadLetterTopicNamer", func() { info.DeadLetterTopic = n.DeadLetterTopic(t.rec) })
		}
		for _, h := range e.cfg.hooks.dead {
			if t.quiet&h.bit != 0 {
				continue
			}
			e.guard("HookDeadLetter", func() {
				if hc := h.h.OnDeadLetterStart(ctx, t.rec, info, f.err); hc != nil {
					ctx = hc
				}
			})
		}
	}
	err := e.deadLetterCall(ctx, t.rec, DeadLetter{Err: f.err, Attempts: t.attempt, FirstFailure: f.first, Group: e.group})
	for _, h := range e.cfg.hooks.dead {
		if t.quiet&h.bit == 0 {
			e.guard("HookDeadLetter", func() { h.h.OnDeadLetterEnd(ctx, t.rec, err) })
		}
	}
	if err != nil {
		f.dlAttempts++
		delay := c.sinkRetry.Backoff(f.dlAttempts)
		e.log.LogAttrs(ctx, slog.LevelWarn, "orderly: dead-letter write failed; will retry",
			recordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Duration("delay", delay), slog.Any("error", err))...)
		p.noteErr(t, waitDeadLetter, delay, err)
		return delay, true
	}
	e.log.LogAttrs(ctx, slog.LevelWarn, "orderly: record dead-lettered",
		recordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Any("error", f.err))...)
	c.end(p, t, OutcomeDeadLettered)
	return 0, false
}

// park parks t's keys after it was dead-lettered, when parking is on.
func (c *chain) park(p *partition, t *task) {
	if c.parkFor == 0 {
		return
	}
	var until time.Time
	if c.parkFor > 0 {
		until = time.Now().Add(c.parkFor)
	}
	p.parked.Park(t.keys, until)
}

// end closes t's journey with outcome o and tells the hooks; the group's
// Done then marks it done (unless abandoned) and gives back its credits.
func (c *chain) end(p *partition, t *task, o Outcome) {
	t.outcome = o
	hooks := c.e.cfg.hooks.done
	if len(hooks) == 0 || c.e.cfg.hooks.silent(t.quiet) {
		return
	}
	var err error
	if o != OutcomeHandled {
		err = t.lastErr()
	}
	info := p.info(t)
	for _, h := range hooks {
		if t.quiet&h.bit == 0 {
			c.e.guard("HookRecordDone", func() { h.h.OnRecordDone(t.rec, info, o, err) })
		}
	}
}

// abandon ends t without completing it: its claim is ending and the next
// owner handles it. Hooks hear of it only if it had started.
func (c *chain) abandon(p *partition, t *task) {
	if t.attempt > 0 || (t.fail != nil && t.fail.deadLetter) {
		c.end(p, t, OutcomeAbandoned)
		return
	}
	t.outcome = OutcomeAbandoned
}

func (c *chain) reportStuck(p *partition, r *Record, attempt int, stuck bool) {
	c.e.stuckCalls.changed(p, r, attempt, stuck, 2*c.timeout)
	if stuck {
		c.e.stuck.Add(1)
		c.e.log.LogAttrs(p.handlerCtx, slog.LevelError, "orderly: handler stuck past its deadline",
			recordAttrs(r, slog.Int("attempt", attempt), slog.Duration("timeout", c.timeout))...)
		return
	}
	c.e.stuck.Add(-1) // the stuck handler returned
}
