package orderly

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/actors"
	"github.com/orderly-go/orderly/internal/backpressure"
	"github.com/orderly-go/orderly/internal/committer"
	"golang.org/x/time/rate"
)

// partition is one claim's dispatcher and the state its key actors share.
//
// Goroutines: run (the dispatcher) is the serve goroutine the source
// started; it alone reads the claim, registers offsets and sends records to
// the key group. The key actors run on the engine's scheduler. A small
// goroutine started by run cancels readCtx when the claim is revoked and
// exits with it.
type partition struct {
	e     *Engine
	claim Claim
	topic string
	id    int32
	log   *slog.Logger

	group   *actors.Group[string, task]
	valve   *backpressure.Valve
	records *backpressure.Credits // partition record credits
	bytes   *backpressure.Credits // partition byte credits
	window  *backpressure.Credits // uncommitted window, released by the committer
	cp      *committer.Partition
	skip    *committer.Skipper // offsets done before a restart; nil if none
	limiter *rate.Limiter      // per-partition rate limit; nil if none

	readCtx        context.Context // done on revoke or shutdown: stop dispatching
	cancelRead     context.CancelFunc
	handlerCtx     context.Context // handlers' parent; cancelled after the revoke/drain timeout
	cancelHandlers context.CancelFunc

	stopping atomic.Bool  // set on revoke: records not yet started are abandoned
	live     atomic.Int64 // records dispatched and not finished (handled or abandoned)
	running  atomic.Int64 // handler calls running
	idle     chan struct{}
	idleOnce sync.Once

	parkMu sync.Mutex           // guards parked
	parked map[string]time.Time // parked keys -> release time (zero: until ReleaseKey)
	nPark  atomic.Int32         // len(parked), read without the lock on the hot path

	// Owned by the dispatcher.
	keys    []string
	pending []task // at-most-once: registered as done, waiting for their commit
}

// task is one record's journey through its key actor: its attempts, and
// the dead-letter write if it comes to that.
type task struct {
	rec        *Record
	size       int64
	keys       []string // set only when parking needs them
	dispatched time.Time
	attempt    int
	firstFail  time.Time
	err        error // the last attempt's error
	deadLetter bool  // the handler is done with it; only the dead-letter write remains
	dlAttempts int
	admitted   bool // a rate-limit token is already reserved for the next attempt
}

func newPartition(e *Engine, c Claim) *partition {
	p := &partition{
		e: e, claim: c, topic: c.Topic(), id: c.Partition(), idle: make(chan struct{}),
		log: e.log.With(slog.String("topic", c.Topic()), slog.Int("partition", int(c.Partition()))),
	}
	cfg := &e.cfg
	p.valve = backpressure.NewValve(p.pause, p.resume)
	p.records = backpressure.NewCredits(int64(cfg.partition.records), lowMark(int64(cfg.partition.records), cfg.lowMark),
		func() { p.valve.Set(backpressure.ReasonPartitionRecords, false) })
	p.bytes = backpressure.NewCredits(cfg.partition.bytes, lowMark(cfg.partition.bytes, cfg.lowMark),
		func() { p.valve.Set(backpressure.ReasonPartitionBytes, false) })
	p.window = backpressure.NewCredits(int64(cfg.maxUncommitted), lowMark(int64(cfg.maxUncommitted), cfg.lowMark),
		func() { p.valve.Set(backpressure.ReasonUncommitted, false) })
	p.group = actors.NewGroup(e.sched, p.receive, actors.KeyLimits[string]{
		High:    actors.Load{Messages: cfg.key.records, Weight: cfg.key.bytes},
		Low:     actors.Load{Messages: int(lowMark(int64(cfg.key.records), cfg.lowMark)), Weight: lowMark(cfg.key.bytes, cfg.lowMark)},
		OnOver:  func(string) { p.valve.Hold(backpressure.ReasonKey) },
		OnUnder: func(string) { p.valve.Release(backpressure.ReasonKey) },
	})
	if cfg.partitionRate != nil {
		p.limiter = rate.NewLimiter(cfg.partitionRate.limit, cfg.partitionRate.burst)
	}
	if e.breaker != nil && e.breaker.isOpen() {
		p.valve.Set(backpressure.ReasonBreaker, true)
	}

	start := c.Start()
	var skip []committer.Range
	p.cp, skip = e.committer.Open(c, start.Offset, start.Metadata, p.passed, p.log)
	if len(skip) > 0 {
		p.skip = committer.NewSkipper(skip)
	}
	p.readCtx, p.cancelRead = context.WithCancel(e.runCtx)
	p.handlerCtx, p.cancelHandlers = context.WithCancel(context.WithoutCancel(e.runCtx))
	return p
}

// pause and resume are the valve's: they run under its lock.
func (p *partition) pause(r backpressure.Reason) {
	p.claim.Pause()
	for _, h := range p.e.cfg.hooks.paused {
		h.OnPartitionPaused(p.topic, p.id, []string{r.String()})
	}
}

func (p *partition) resume() {
	p.claim.Resume()
	for _, h := range p.e.cfg.hooks.paused {
		h.OnPartitionResumed(p.topic, p.id)
	}
}

// passed is the committer telling us the watermark passed n records.
func (p *partition) passed(n int64) { p.window.Release(n) }

// run dispatches the claim's records until it is revoked or the engine
// stops, then drains and commits.
func (p *partition) run() {
	defer p.cancelHandlers()
	// Owned by run: turns a revoke into readCtx's cancellation so that a
	// dispatcher blocked on credits wakes; exits when readCtx is done.
	go func() {
		select {
		case <-p.claim.Revoked():
			p.cancelRead()
		case <-p.readCtx.Done():
		}
	}()
	recs := p.claim.Records()
loop:
	for {
		var (
			b  []*Record
			ok bool
		)
		select {
		case b, ok = <-recs:
		default:
			p.flushPending() // nothing more is ready: let at-most-once work start
			select {
			case b, ok = <-recs:
			case <-p.readCtx.Done():
			}
		}
		if !ok || p.readCtx.Err() != nil {
			break
		}
		for _, r := range b {
			if p.dispatch(r) != nil {
				break loop
			}
		}
	}
	p.stop()
}

// dispatch registers r, takes its credits and hands it to its key actors.
// It returns an error only when the claim ends while it waits for credit.
func (p *partition) dispatch(r *Record) error {
	if err := p.acquire(p.window, 1, backpressure.ReasonUncommitted); err != nil {
		return err
	}
	if p.skip != nil && p.skip.Skip(r.Offset) {
		return p.cp.Skip(r.Offset) // done before a restart
	}
	t := task{rec: r, size: r.Size()}
	if err := p.acquireRecord(t.size); err != nil {
		return err
	}
	p.live.Add(1)
	if p.e.cfg.atMostOnce {
		if err := p.cp.Skip(r.Offset); err != nil {
			return err
		}
		p.pending = append(p.pending, t)
		if len(p.pending) >= 256 {
			p.flushPending()
		}
		return nil
	}
	if err := p.cp.Register(r.Offset); err != nil {
		return err
	}
	p.send(t)
	return nil
}

// send hands t to its key actors; the group keeps its own copy.
func (p *partition) send(t task) {
	e := p.e
	p.keys = e.cfg.ordering.keys(t.rec, p.keys[:0])
	if e.cfg.parking && len(p.keys) > 0 {
		t.keys = append([]string(nil), p.keys...)
	}
	if e.timed {
		t.dispatched = time.Now()
		for _, h := range e.cfg.hooks.dispatched {
			h.OnRecordDispatched(t.rec, p.info(&t))
		}
	}
	p.group.Send(t, t.size, p.keys...)
}

func (p *partition) info(t *task) RecordInfo {
	return RecordInfo{Group: p.e.group, Dispatched: t.dispatched, Attempt: t.attempt}
}

// flushPending commits the at-most-once records registered so far, then
// lets them run. If the commit fails they are dropped unhandled, which is
// what at-most-once allows.
func (p *partition) flushPending() {
	if len(p.pending) == 0 {
		return
	}
	err := p.cp.Flush(p.readCtx)
	for i := range p.pending {
		if err != nil {
			p.finish(&p.pending[i])
			continue
		}
		p.send(p.pending[i])
	}
	if err != nil {
		p.log.Warn("orderly: at-most-once commit failed; records dropped unhandled", slog.Int("records", len(p.pending)), slog.Any("error", err))
	}
	clear(p.pending)
	p.pending = p.pending[:0]
}

// acquireRecord takes a record's credits at the partition and engine
// levels, giving back what it took if the claim ends meanwhile.
func (p *partition) acquireRecord(size int64) error {
	steps := [...]struct {
		c *backpressure.Credits
		n int64
		r backpressure.Reason
	}{
		{p.records, 1, backpressure.ReasonPartitionRecords},
		{p.bytes, size, backpressure.ReasonPartitionBytes},
		{p.e.records, 1, backpressure.ReasonEngineRecords},
		{p.e.bytes, size, backpressure.ReasonEngineBytes},
	}
	for i, s := range steps {
		if err := p.acquire(s.c, s.n, s.r); err != nil {
			for _, done := range steps[:i] {
				done.c.Release(done.n)
			}
			return err
		}
	}
	return nil
}

// acquire takes n credits, pausing the claim for reason while it has to
// wait. The pause lasts until the credits fall to their low water mark.
func (p *partition) acquire(c *backpressure.Credits, n int64, reason backpressure.Reason) error {
	if c.TryAcquire(n) {
		return nil
	}
	p.flushPending() // what we hold must be able to run, or credit never returns
	p.valve.Set(reason, true)
	err := c.Acquire(p.readCtx, n)
	if !c.Tripped() {
		// The low mark was reached before we paused: nobody else will
		// lift this reason.
		p.valve.Set(reason, false)
	}
	return err
}

// complete reports t done to the committer and finishes it.
func (p *partition) complete(t *task, o Outcome) {
	if !p.e.cfg.atMostOnce {
		_ = p.cp.Complete(t.rec.Offset) // after Close it is dropped (fenced)
	}
	p.done(t, o)
	p.finish(t)
}

// abandon finishes t without completing it: its claim is ending and the
// next owner handles it.
func (p *partition) abandon(t *task) {
	if t.attempt > 0 || t.deadLetter {
		p.done(t, OutcomeAbandoned)
	}
	p.finish(t)
}

func (p *partition) done(t *task, o Outcome) {
	if len(p.e.cfg.hooks.done) == 0 {
		return
	}
	var err error
	if o != OutcomeHandled {
		err = t.err
	}
	info := p.info(t)
	for _, h := range p.e.cfg.hooks.done {
		h.OnRecordDone(t.rec, info, o, err)
	}
}

// finish gives back a record's credits.
func (p *partition) finish(t *task) {
	p.records.Release(1)
	p.bytes.Release(t.size)
	p.e.records.Release(1)
	p.e.bytes.Release(t.size)
	if p.live.Add(-1) == 0 && p.stopping.Load() {
		p.idleOnce.Do(func() { close(p.idle) })
	}
}

// stop ends the claim: no new records start, running handlers get the
// revoke (or drain) timeout, then the final position is committed.
func (p *partition) stop() {
	p.flushPending()
	p.stopping.Store(true)
	p.cancelRead()
	p.group.WakeAll() // records waiting to retry give up now
	if p.live.Load() == 0 {
		p.idleOnce.Do(func() { close(p.idle) })
	}
	timeout := p.e.cfg.revokeTimeout
	if p.e.runCtx.Err() != nil {
		timeout = p.e.cfg.drainTimeout
	}
	timer := time.NewTimer(timeout)
	select {
	case <-p.idle:
		timer.Stop()
	case <-timer.C:
		p.log.Warn("orderly: handlers still running at the revoke timeout; cancelling them",
			slog.Int64("running", p.running.Load()), slog.Duration("timeout", timeout))
		p.cancelHandlers()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.e.runCtx), p.e.cfg.drainTimeout)
	defer cancel()
	if err := p.cp.Close(ctx); err != nil {
		p.log.Warn("orderly: final commit failed", slog.Any("error", err))
	}
}
