package orderly

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
)

// This file is a record's journey through its key actor: its attempts
// (breaker, rate limit, deadline, hooks), retries, recovery, the
// dead-letter write and key parking. partition.go dispatches records and
// finishes them.

// receive is the key actors' receive function: one step of a record's
// journey. It returns retry == true to be called again after the delay,
// with the record's keys still blocked.
func (p *partition) receive(t *task) (time.Duration, bool) {
	if p.stopping.Load() {
		p.abandon(t) // revoked before it finished: the next owner handles it
		return 0, false
	}
	if (t.fail == nil || !t.fail.deadLetter) && p.isParked(t) {
		f := t.failState()
		f.deadLetter, f.err = true, ErrKeyParked
	}
	if t.fail != nil && t.fail.deadLetter {
		return p.writeDeadLetter(t)
	}
	if t.fail != nil && t.fail.unroutable && t.attempt == 0 {
		return p.failed(t)
	}
	return p.attempt(t)
}

// attempt runs one handler call and decides what follows it.
func (p *partition) attempt(t *task) (time.Duration, bool) {
	e := p.e
	var breakerDone func(error)
	if e.breaker != nil {
		var wait time.Duration
		if breakerDone, wait = e.breaker.admit(); breakerDone == nil {
			return wait, true // open: wait without counting an attempt
		}
	}
	if wait := p.admitRate(t); wait > 0 {
		if breakerDone != nil {
			breakerDone(context.Canceled) // not an attempt; excluded from the counts
		}
		return wait, true
	}
	t.admitted = false
	t.attempt++

	ctx, cancel := p.handlerCtx, context.CancelFunc(nil)
	if e.cfg.attemptTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, e.cfg.attemptTimeout)
	}
	var info RecordInfo
	if e.timed {
		info = p.info(t)
		info.Started = time.Now()
		for _, h := range e.cfg.hooks.started {
			e.guard("HookRecordStarted", func() {
				if c := h.OnRecordStarted(ctx, t.rec, info); c != nil {
					ctx = c
				}
			})
		}
	}
	var stuck *time.Timer
	if e.cfg.attemptTimeout > 0 {
		rec, n := t.rec, t.attempt // the timer must not read t: a later attempt writes it
		stuck = time.AfterFunc(2*e.cfg.attemptTimeout, func() { p.reportStuck(rec, n, true) })
	}
	e.inFlight.Add(1)
	p.running.Add(1)
	err := e.call(ctx, t.rec)
	p.running.Add(-1)
	e.inFlight.Add(-1)
	if stuck != nil && !stuck.Stop() {
		p.reportStuck(t.rec, t.attempt, false)
	}
	if breakerDone != nil {
		breakerDone(err)
	}
	for _, h := range e.cfg.hooks.finished {
		e.guard("HookRecordFinished", func() { h.OnRecordFinished(ctx, t.rec, info, err) })
	}
	if cancel != nil {
		cancel()
	}

	switch {
	case err == nil:
		p.end(t, OutcomeHandled)
		return 0, false
	case p.stopping.Load() && p.handlerCtx.Err() != nil:
		p.abandon(t) // cancelled by the revoke timeout: not done, the next owner handles it
		return 0, false
	}
	e.failed.Add(1)
	f := t.failState()
	if f.first.IsZero() {
		f.first = time.Now()
	}
	f.err = err
	if e.cfg.retry != nil {
		if delay, retry := e.cfg.retry.retry(err, t.attempt); retry {
			e.retried.Add(1)
			for _, h := range e.cfg.hooks.retried {
				e.guard("HookRecordRetried", func() { h.OnRecordRetried(ctx, t.rec, info, err, delay) })
			}
			p.e.log.LogAttrs(ctx, slog.LevelDebug, "orderly: attempt failed; will retry",
				RecordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Duration("delay", delay), slog.Any("error", err))...)
			return delay, true
		}
	}
	return p.failed(t)
}

// failed handles a record whose last attempt failed: recovery, then the
// dead-letter sink, then the log.
func (p *partition) failed(t *task) (time.Duration, bool) {
	e := p.e
	f := t.fail
	if e.cfg.recover != nil {
		err := e.recoverCall(p.handlerCtx, t.rec, f.err)
		if err == nil {
			p.end(t, OutcomeRecovered)
			return 0, false
		}
		f.err = err
	}
	if e.cfg.deadLetter == nil {
		p.e.log.LogAttrs(p.handlerCtx, slog.LevelError, "orderly: handler failed; record counted as done",
			RecordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Any("error", f.err))...)
		p.end(t, OutcomeFailed)
		return 0, false
	}
	f.deadLetter = true
	p.park(t)
	return p.writeDeadLetter(t)
}

// writeDeadLetter writes t to the sink, retrying with backoff until it
// succeeds or the claim ends.
func (p *partition) writeDeadLetter(t *task) (time.Duration, bool) {
	e := p.e
	f := t.fail
	ctx := p.handlerCtx
	if len(e.cfg.hooks.dead) > 0 {
		info := p.info(t)
		if n, ok := e.cfg.deadLetter.(DeadLetterTopicNamer); ok {
			e.guard("DeadLetterTopicNamer", func() { info.DeadLetterTopic = n.DeadLetterTopic(t.rec) })
		}
		for _, h := range e.cfg.hooks.dead {
			e.guard("HookRecordDeadLettered", func() {
				if c := h.OnDeadLetterStart(ctx, t.rec, info, f.err); c != nil {
					ctx = c
				}
			})
		}
	}
	err := e.deadLetterCall(ctx, t.rec, DeadLetter{Err: f.err, Attempts: t.attempt, FirstFailure: f.first, Group: e.group})
	for _, h := range e.cfg.hooks.dead {
		e.guard("HookRecordDeadLettered", func() { h.OnDeadLetterEnd(ctx, t.rec, err) })
	}
	if err != nil {
		f.dlAttempts++
		delay := e.dlBackoff.Backoff(f.dlAttempts)
		p.e.log.LogAttrs(ctx, slog.LevelWarn, "orderly: dead-letter write failed; will retry",
			RecordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Duration("delay", delay), slog.Any("error", err))...)
		return delay, true
	}
	p.e.log.LogAttrs(ctx, slog.LevelWarn, "orderly: record dead-lettered",
		RecordAttrs(t.rec, slog.Int("attempt", t.attempt), slog.Any("error", f.err))...)
	p.end(t, OutcomeDeadLettered)
	return 0, false
}

// end closes t's journey with outcome o and tells the hooks; the group's
// Done then marks it done (unless abandoned) and gives back its credits.
func (p *partition) end(t *task, o Outcome) {
	t.outcome = o
	if len(p.e.cfg.hooks.done) == 0 {
		return
	}
	var err error
	if o != OutcomeHandled {
		err = t.lastErr()
	}
	info := p.info(t)
	for _, h := range p.e.cfg.hooks.done {
		p.e.guard("HookRecordDone", func() { h.OnRecordDone(t.rec, info, o, err) })
	}
}

// abandon ends t without completing it: its claim is ending and the next
// owner handles it. Hooks hear of it only if it had started.
func (p *partition) abandon(t *task) {
	if t.attempt > 0 || (t.fail != nil && t.fail.deadLetter) {
		p.end(t, OutcomeAbandoned)
		return
	}
	t.outcome = OutcomeAbandoned
}

func (p *partition) info(t *task) RecordInfo {
	return RecordInfo{Group: p.e.group, Dispatched: t.dispatched, Attempt: t.attempt}
}

// admitRate takes a rate-limit token for the next attempt, or says how
// long to wait for one (the token is then reserved).
func (p *partition) admitRate(t *task) time.Duration {
	if t.admitted {
		return 0
	}
	var wait time.Duration
	for _, l := range [...]*rate.Limiter{p.e.limiter, p.limiter} {
		if l != nil {
			wait = max(wait, l.Reserve().Delay())
		}
	}
	if wait > 0 {
		t.admitted = true
	}
	return wait
}

func (p *partition) reportStuck(r *Record, attempt int, stuck bool) {
	if stuck {
		p.e.stuck.Add(1)
		p.e.log.LogAttrs(p.handlerCtx, slog.LevelError, "orderly: handler stuck past its deadline",
			RecordAttrs(r, slog.Int("attempt", attempt), slog.Duration("timeout", p.e.cfg.attemptTimeout))...)
		return
	}
	p.e.stuck.Add(-1) // the stuck handler returned
}

// isParked reports whether any of t's keys is parked, releasing keys whose
// parking has expired.
func (p *partition) isParked(t *task) bool {
	if p.nPark.Load() == 0 || len(t.keys) == 0 {
		return false
	}
	p.parkMu.Lock()
	defer p.parkMu.Unlock()
	parked := false
	for _, k := range t.keys {
		until, ok := p.parked[k]
		switch {
		case !ok:
		case !until.IsZero() && time.Now().After(until):
			delete(p.parked, k)
		default:
			parked = true
		}
	}
	p.nPark.Store(int32(len(p.parked)))
	return parked
}

func (p *partition) park(t *task) {
	if !p.e.cfg.parking || len(t.keys) == 0 {
		return
	}
	var until time.Time
	if p.e.cfg.parkFor > 0 {
		until = time.Now().Add(p.e.cfg.parkFor)
	}
	p.parkMu.Lock()
	if p.parked == nil {
		p.parked = make(map[string]time.Time)
	}
	for _, k := range t.keys {
		p.parked[k] = until
	}
	p.nPark.Store(int32(len(p.parked)))
	p.parkMu.Unlock()
}

// parkedKeys counts the keys parked now, forgetting those whose parking
// has expired.
func (p *partition) parkedKeys() int {
	if p.nPark.Load() == 0 {
		return 0
	}
	p.parkMu.Lock()
	defer p.parkMu.Unlock()
	now := time.Now()
	for k, until := range p.parked {
		if !until.IsZero() && now.After(until) {
			delete(p.parked, k)
		}
	}
	p.nPark.Store(int32(len(p.parked)))
	return len(p.parked)
}

func (p *partition) release(key string) bool {
	p.parkMu.Lock()
	defer p.parkMu.Unlock()
	_, ok := p.parked[key]
	delete(p.parked, key)
	p.nPark.Store(int32(len(p.parked)))
	return ok
}
