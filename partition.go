package orderly

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/backpressure"
	"github.com/orderly-go/orderly/committer"
)

// partition is one claim's dispatcher and the state its key actors share.
//
// Goroutines: run (the dispatcher) is the serve goroutine the source
// started; it alone reads the claim, registers offsets and sends records to
// the key group. The key actors run on the engine's scheduler. watchRevoke
// cancels readCtx when the claim is revoked and exits with it.
type partition struct {
	e     *Engine
	claim Claim
	log   *slog.Logger

	group   *actors.Group[string, *Record]
	valve   *backpressure.Valve
	records *backpressure.Credits // partition record credits
	bytes   *backpressure.Credits // partition byte credits
	window  *backpressure.Credits // uncommitted window, released by the committer
	cp      *committer.Partition
	skip    *committer.Skipper // offsets done before a restart; nil if none

	readCtx        context.Context // done on revoke or shutdown: stop dispatching
	cancelRead     context.CancelFunc
	handlerCtx     context.Context // handlers' parent; cancelled after the revoke/drain timeout
	cancelHandlers context.CancelFunc

	stopping atomic.Bool  // set on revoke: records not yet started are abandoned
	live     atomic.Int64 // records dispatched and not finished (handled or abandoned)
	running  atomic.Int64 // handler calls running
	idle     chan struct{}
	idleOnce sync.Once

	// Owned by the dispatcher.
	keys    []string
	pending []*Record // at-most-once: registered as done, waiting for their commit
}

func newPartition(e *Engine, c Claim) *partition {
	p := &partition{
		e: e, claim: c, idle: make(chan struct{}),
		log: e.log.With(slog.String("topic", c.Topic()), slog.Int("partition", int(c.Partition()))),
	}
	cfg := &e.cfg
	p.valve = backpressure.NewValve(c.Pause, c.Resume)
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
	for {
		var (
			r  *Record
			ok bool
		)
		select {
		case r, ok = <-recs:
		default:
			p.flushPending() // nothing more is ready: let at-most-once work start
			select {
			case r, ok = <-recs:
			case <-p.readCtx.Done():
			}
		}
		if !ok || p.readCtx.Err() != nil || p.dispatch(r) != nil {
			break
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
	size := r.Size()
	if err := p.acquireRecord(size); err != nil {
		return err
	}
	p.live.Add(1)
	if p.e.cfg.atMostOnce {
		if err := p.cp.Skip(r.Offset); err != nil {
			return err
		}
		p.pending = append(p.pending, r)
		if len(p.pending) >= 256 {
			p.flushPending()
		}
		return nil
	}
	if err := p.cp.Register(r.Offset); err != nil {
		return err
	}
	p.send(r, size)
	return nil
}

func (p *partition) send(r *Record, size int64) {
	p.keys = p.e.cfg.ordering.keys(r, p.keys[:0])
	p.group.Send(r, size, p.keys...)
}

// flushPending commits the at-most-once records registered so far, then
// lets them run. If the commit fails they are dropped unhandled, which is
// what at-most-once allows.
func (p *partition) flushPending() {
	if len(p.pending) == 0 {
		return
	}
	err := p.cp.Flush(p.readCtx)
	for _, r := range p.pending {
		if err != nil {
			p.finish(r)
			continue
		}
		p.send(r, r.Size())
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

// receive is the key actors' receive function: it runs the handler (or
// abandons the record when the claim is ending) and finishes the record.
func (p *partition) receive(r *Record) {
	defer p.finish(r)
	if p.stopping.Load() {
		return // revoked before it started: the next owner handles it
	}
	e := p.e
	e.inFlight.Add(1)
	p.running.Add(1)
	err := e.call(p.handlerCtx, r)
	p.running.Add(-1)
	e.inFlight.Add(-1)
	switch {
	case err == nil:
		e.handled.Add(1)
	case p.stopping.Load() && p.handlerCtx.Err() != nil:
		return // cancelled by the revoke timeout: not done, handled again by the next owner
	default:
		e.failed.Add(1)
		// The single failure hook: the failure-handling middleware
		// replaces it with retries and dead-lettering.
		e.cfg.onFailure(p.handlerCtx, r, err)
	}
	if !e.cfg.atMostOnce {
		_ = p.cp.Complete(r.Offset) // after Close it is dropped (fenced)
	}
}

// finish gives back a record's credits.
func (p *partition) finish(r *Record) {
	size := r.Size()
	p.records.Release(1)
	p.bytes.Release(size)
	p.e.records.Release(1)
	p.e.bytes.Release(size)
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
