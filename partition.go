package orderly

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/actors"
	"github.com/orderly-go/orderly/internal/backpressure"
	"github.com/orderly-go/orderly/internal/committer"
	"github.com/orderly-go/orderly/internal/parking"
	"golang.org/x/time/rate"
)

// partition is one claim's dispatcher and the state its key actors share.
//
// Goroutines: run (the dispatcher) is the serve goroutine the source
// started; it alone reads the claim, registers offsets and sends records to
// the key group. The key actors run on the engine's scheduler. A small
// goroutine started by run cancels readCtx when the claim is revoked and
// exits with it.
//
// Locks: the group's lock (p.group.Lock) guards offsets, live, idle and
// completions: dispatch registers a batch's offsets and queues its records
// under one acquisition, and each record's completion marks its offset
// done under the same lock as its key moves on. Nothing under it calls
// user code or the source: the valve and the credits' low-water callbacks
// only record state there (the valve applies pauses on its own goroutine).
// parkMu guards parked and is a leaf.
type partition struct {
	e     *Engine
	claim Claim
	topic string
	id    int32
	log   *slog.Logger

	group   *actors.Group[task]
	valve   *backpressure.Valve
	records *backpressure.Credits // partition record credits
	bytes   *backpressure.Credits // partition byte credits
	window  *backpressure.Credits // uncommitted window, released as the watermark passes
	cp      *committer.Partition
	skip    *committer.Skipper // offsets done before a restart; nil if none
	limiter *rate.Limiter      // per-partition rate limit; nil if none

	readCtx        context.Context // done on revoke or shutdown: stop dispatching
	cancelRead     context.CancelFunc
	handlerCtx     context.Context // handlers' parent; cancelled after the revoke/drain timeout
	cancelHandlers context.CancelFunc

	stopping atomic.Bool  // set on revoke: records not yet started are abandoned
	running  atomic.Int64 // handler calls running

	// Guarded by the group's lock.
	offsets     *committer.Offsets
	live        int64 // records dispatched and not finished (done or abandoned)
	completions int   // records completed since the last poke of the committer
	idle        chan struct{}
	idleClosed  bool
	counts      counts // this partition's share of the engine's counters

	parked parking.Table // keys parked after a dead letter (WithKeyParking)

	spill *spiller // nil when keys over their buffer pause the partition (see KeyOverflow)

	// Owned by the dispatcher.
	msgs    []actors.Message[task]
	pending []*Record // at-most-once: registered as done, waiting for their commit

	prio partitionPriority // WithPriorities: levels found and taken, warnings; owned by the dispatcher
}

// counts are the engine's record counters, kept per partition under the
// group's lock (free there: the lock is held anyway) and summed by Stats.
type counts struct {
	handled      uint64
	recovered    uint64
	deadLettered uint64
	failed       uint64
	reread       uint64 // records read again from the log for spilled keys
}

func (c *counts) add(o counts) {
	c.handled += o.handled
	c.recovered += o.recovered
	c.deadLettered += o.deadLettered
	c.failed += o.failed
	c.reread += o.reread
}

// task is one record's journey through its key actor (see chain): where
// it was dispatched from, its attempts, and the failure path if it comes
// to that.
type task struct {
	rec        *Record
	offset     int64 // rec.Offset, kept here so that completion does not touch the record
	size       int64
	dispatched time.Time // set when some hook needs it
	attempt    int       // handler calls made
	outcome    Outcome   // how the journey ended; read by done
	admitted   bool      // a rate-limit token is already reserved for the next attempt
	level      uint8     // priority level (WithPriorities); 0 without
	runLevel   uint8     // the level the current step runs at: level, or a higher one inherited
	keys       []string  // the record's keys, when parking needs them
	fail       *failure  // nil until the record first fails
	born       int64     // dispatch stamp for Inspect (dispatchStamp)
	view       *taskView // for Inspect: guarded by the group's lock; nil until the record first waits or fails
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
	rereader, spills := e.spillable(c)
	key := cfg.keyLimits(spills)
	p.group = actors.NewGroup(e.sched, actors.GroupConfig[task]{
		ReceiveAt: func(t *task, level int) (time.Duration, bool) {
			t.runLevel = uint8(level)
			return e.chain.step(p, t)
		},
		Done: p.done,
		High: actors.Load{Messages: key.records, Weight: key.bytes},
		Low:  actors.Load{Messages: int(lowMark(int64(key.records), cfg.lowMark)), Weight: lowMark(key.bytes, cfg.lowMark)},
		OnOver: func(over int, seq uint64) {
			if p.spill == nil { // a spilling partition never pauses for a key
				p.valve.SetIfNewer(backpressure.ReasonKey, over > 0, seq)
			}
		},
		KeyEvent: func(key uint64) { p.spill.keyEvent(key) }, // turned on only while keys are spilled
	})
	if spills {
		p.spill = newSpiller(p, rereader)
	}
	if cfg.partitionRate != nil {
		p.limiter = rate.NewLimiter(cfg.partitionRate.limit, cfg.partitionRate.burst)
	}

	start := c.Start()
	var done []committer.Range
	if start.Offset >= 0 {
		var err error
		done, err = committer.DecodeMetadata(start.Offset, start.Metadata)
		if err != nil {
			p.log.Warn("orderly: ignoring commit metadata; records after the committed offset will be processed again",
				slog.Int64("committed", start.Offset), slog.Any("error", err))
			done = nil
		}
	}
	if len(done) > 0 {
		p.skip = committer.NewSkipper(done)
	}
	p.offsets = committer.NewOffsets(start.Offset, done)
	p.cp = e.committer.Open(c, start.Offset, start.Metadata, p.position, p.log)
	p.readCtx, p.cancelRead = context.WithCancel(e.runCtx)
	p.handlerCtx, p.cancelHandlers = context.WithCancel(context.WithoutCancel(e.runCtx))
	return p
}

// position is the committer's view of the partition, read under the
// group's lock.
func (p *partition) position(dst []committer.Range) committer.Position {
	p.group.Lock()
	defer p.group.Unlock()
	return p.offsets.Position(dst)
}

// pause and resume are the valve's: its applier calls them with no lock
// held, one at a time.
func (p *partition) pause(rs []backpressure.Reason) {
	p.claim.Pause()
	if len(p.e.cfg.hooks.paused) == 0 {
		return
	}
	reasons := pauseReasonsOf(rs)
	for _, h := range p.e.cfg.hooks.paused {
		p.e.guard("HookPartitionPaused", func() { h.OnPartitionPaused(p.topic, p.id, reasons) })
	}
}

func (p *partition) resume() {
	p.claim.Resume()
	for _, h := range p.e.cfg.hooks.paused {
		p.e.guard("HookPartitionPaused", func() { h.OnPartitionResumed(p.topic, p.id) })
	}
}

// run dispatches the claim's records until it is revoked or the engine
// stops, then drains and commits.
func (p *partition) run() {
	defer p.cancelHandlers()
	if p.e.breaker != nil {
		p.e.breaker.join(p)
	}
	p.valve.Flush()
	if p.spill != nil {
		// Owned by run; stop cancels and waits for it.
		go p.spill.run()
	}
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
		if !ok || p.readCtx.Err() != nil || p.dispatch(b) != nil {
			break
		}
	}
	p.stop()
}

// dispatch hands a batch to the key actors: credits are taken for as much
// of it as fits at once (all of it, usually), and that part is registered
// and queued under one lock acquisition. It returns an error only when the
// claim ends while it waits for credit.
func (p *partition) dispatch(b []*Record) error {
	for len(b) > 0 {
		if p.skip != nil {
			if p.skip.Done() {
				p.skip = nil
			} else if p.skip.Skip(b[0].Offset) {
				// Done before a restart: registered as done, holding only
				// its place in the uncommitted window until passed.
				if err := p.acquire(p.window, 1, backpressure.ReasonUncommitted); err != nil {
					return err
				}
				p.registerDone(b[:1], false)
				b = b[1:]
				continue
			}
		}
		n := len(b)
		if p.skip != nil {
			n = 1 // one at a time while skip ranges lie ahead
		}
		n, err := p.take(b[:n])
		if err != nil {
			return err
		}
		if p.e.cfg.atMostOnce {
			p.registerDone(b[:n], true)
		} else {
			p.send(b[:n], true)
		}
		b = b[n:]
	}
	return nil
}

// take acquires credits for b: all of it when it fits under every high
// mark now; otherwise for its first record alone, waiting (and pausing the
// claim) as long as needed, with the oversized-record rule of Credits. It
// returns how many records it took credits for.
func (p *partition) take(b []*Record) (int, error) {
	if p.e.prio != nil {
		return p.takeLeveled(b)
	}
	n := int64(len(b))
	var size int64
	for _, r := range b {
		size += r.Size()
	}
	steps := [...]struct {
		c *backpressure.Credits
		n int64
	}{{p.window, n}, {p.records, n}, {p.bytes, size}, {p.e.records, n}, {p.e.bytes, size}}
	for i, s := range steps {
		if !s.c.TryAcquireWithin(s.n) {
			for _, done := range steps[:i] {
				done.c.Release(done.n)
			}
			if err := p.takeOne(b[0].Size()); err != nil {
				return 0, err
			}
			return 1, nil
		}
	}
	return len(b), nil
}

// takeOne takes one record's credits, waiting for each as needed and
// giving back what it took if the claim ends meanwhile.
func (p *partition) takeOne(size int64) error {
	steps := [...]struct {
		c *backpressure.Credits
		n int64
		r backpressure.Reason
	}{
		{p.window, 1, backpressure.ReasonUncommitted},
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
	p.valve.Flush() // paused before we wait: the source stops fetching now
	err := c.Acquire(p.readCtx, n)
	if !c.Tripped() {
		// The low mark was reached before we paused: nobody else will
		// lift this reason.
		p.valve.Set(reason, false)
	}
	return err
}

// sendChunk is the most records send queues under one hold of the
// group's lock.
const sendChunk = 16

// send hands b, whose credits are taken, to its key actors: keys and hooks
// first (user code, no lock held), then registration (unless at-most-once
// registered them already) and queueing, sendChunk records per hold of
// the group's lock.
func (p *partition) send(b []*Record, register bool) {
	e := p.e
	var now time.Time
	if e.timed {
		now = time.Now()
	}
	born := dispatchStamp(now) // one clock reading per batch, for Inspect's ages
	msgs := p.msgs[:0]
	for _, r := range b {
		m := actors.Message[task]{Msg: task{rec: r, offset: r.Offset, size: r.Size(), dispatched: now, born: born}}
		m.Weight = m.Msg.size
		e.route(r, &m)
		if e.prio != nil {
			m.Level = p.prio.nextLevel()
			m.Msg.level, m.Msg.runLevel = m.Level, m.Level
		}
		msgs = append(msgs, m)
		if len(e.cfg.hooks.dispatched) > 0 {
			info := RecordInfo{Group: e.group, Dispatched: now, Priority: int(m.Level), RunPriority: int(m.Level)}
			for _, h := range e.cfg.hooks.dispatched {
				e.guard("HookRecordDispatched", func() { h.OnRecordDispatched(r, info) })
			}
		}
	}
	all := msgs
	outOfOrder := int64(-1)
	var watermark int64
	for len(msgs) > 0 {
		// In chunks, so that workers finishing records never wait long
		// for the lock (a short wait spins; a long one parks).
		chunk := msgs[:min(len(msgs), sendChunk)]
		msgs = msgs[len(chunk):]
		p.group.Lock()
		for i := range chunk {
			if register && !p.offsets.Register(chunk[i].Msg.offset) && outOfOrder < 0 {
				outOfOrder = chunk[i].Msg.offset
			}
			if sp := p.spill; sp != nil && (sp.state.Spilled() > 0 || p.group.OverLocked() > 0) && sp.dropLocked(&chunk[i]) {
				continue // a spilled key's: registered, not held (see spiller)
			}
			if register {
				p.live++
			}
			p.group.SendLocked(&chunk[i])
		}
		if p.spill != nil {
			p.spill.state.Advance(chunk[len(chunk)-1].Msg.offset + 1)
		}
		watermark = p.offsets.Watermark()
		p.group.Unlock()
		if p.spill != nil && len(p.spill.spilled) > 0 {
			p.spill.reportSpills()
		}
	}
	clear(all)
	p.msgs = all[:0]
	if outOfOrder >= 0 {
		p.log.Error("orderly: offset out of order; it will not be committed past", slog.Int64("offset", outOfOrder),
			slog.Int64("watermark", watermark))
	}
}

// registerDone registers b as done: records skipped after a restart, or
// at-most-once dispatch (hold: their commit comes before they run, in
// flushPending, and they wait in pending until then).
func (p *partition) registerDone(b []*Record, hold bool) {
	var passed int64
	p.group.Lock()
	for _, r := range b {
		passed += p.offsets.RegisterDone(r.Offset)
	}
	if p.spill != nil {
		p.spill.state.Advance(b[len(b)-1].Offset + 1)
	}
	if hold {
		p.live += int64(len(b))
	}
	p.group.Unlock()
	p.window.Release(passed)
	p.cp.MarkDirty()
	if !hold {
		return
	}
	p.pending = append(p.pending, b...)
	if len(p.pending) >= 256 {
		p.flushPending()
	}
}

// flushPending commits the at-most-once records registered so far, then
// lets them run. If the commit fails they are dropped unhandled, which is
// what at-most-once allows.
func (p *partition) flushPending() {
	if len(p.pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(p.readCtx, p.e.cfg.commitTimeout)
	err := p.cp.Flush(ctx)
	cancel()
	if err != nil {
		p.log.Warn("orderly: at-most-once commit failed; records dropped unhandled", slog.Int("records", len(p.pending)), slog.Any("error", err))
		p.group.Lock()
		for _, r := range p.pending {
			p.releaseLocked(r.Size())
			if p.e.prio != nil {
				p.e.prio.release(p.prio.nextLevel(), r.Size())
			}
		}
		p.group.Unlock()
	} else {
		p.send(p.pending, false)
	}
	clear(p.pending)
	p.pending = p.pending[:0]
}

// done is the group's Done: it runs under the group's lock when a record's
// journey has ended, before its key moves on. A completed record's offset
// is marked done (abandoned ones are not: the next owner handles them) and
// its credits come back.
func (p *partition) done(t *task) {
	if t.outcome != OutcomeAbandoned && !p.e.cfg.atMostOnce {
		if passed := p.offsets.Complete(t.offset); passed > 0 {
			p.window.Release(passed)
		}
		p.completions++
		if every := p.e.cfg.commitEvery; every > 0 && p.completions >= every {
			p.completions = 0
			p.cp.Poke()
		} else {
			p.cp.MarkDirty()
		}
	}
	switch t.outcome {
	case OutcomeHandled:
		p.counts.handled++
	case OutcomeRecovered:
		p.counts.recovered++
	case OutcomeDeadLettered:
		p.counts.deadLettered++
	case OutcomeFailed:
		p.counts.failed++
	}
	p.releaseLocked(t.size)
	if p.e.prio != nil {
		p.e.prio.release(t.level, t.size)
	}
}

// releaseLocked gives back one record's credits. The group's lock is held.
func (p *partition) releaseLocked(size int64) {
	p.records.Release(1)
	p.bytes.Release(size)
	p.e.records.Release(1)
	p.e.bytes.Release(size)
	p.live--
	if p.live == 0 && p.stopping.Load() && !p.idleClosed {
		p.idleClosed = true
		close(p.idle)
	}
}

// cancelGrace is how long a partition that cancelled its handlers' contexts
// at the revoke (or drain) timeout waits for them to return.
const cancelGrace = time.Second

// stop ends the claim: no new records start, running handlers get the
// revoke (or drain) timeout, then their contexts are cancelled and they get
// cancelGrace more, then the final position is committed (within the
// commit timeout). So a revoke takes at most the revoke timeout plus
// cancelGrace plus the commit timeout, and Run returns within the drain
// timeout plus cancelGrace plus the commit timeout, whatever handlers and
// the broker do.
func (p *partition) stop() {
	p.flushPending()
	p.stopping.Store(true)
	p.cancelRead()
	if p.spill != nil {
		p.spill.stop() // the re-reader hands nothing back from now on
	}
	p.group.WakeAll() // records waiting to retry give up now
	p.group.Lock()
	if p.live == 0 && !p.idleClosed {
		p.idleClosed = true
		close(p.idle)
	}
	p.group.Unlock()
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
		// A handler that honours its context returns now: wait a little
		// for it, so that Run does not return under it. One that ignores
		// its context is left running; its record is not committed and
		// its result is ignored.
		grace := time.NewTimer(cancelGrace)
		select {
		case <-p.idle:
		case <-grace.C:
			p.log.Warn("orderly: handlers ignore their cancelled context; leaving them running",
				slog.Int64("running", p.running.Load()), slog.Duration("grace", cancelGrace))
		}
		grace.Stop()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.e.runCtx), p.e.cfg.commitTimeout)
	defer cancel()
	_ = p.cp.Close(ctx) // a failure is logged by the committer
}

// stats describes the partition for Stats.
func (p *partition) stats() PartitionStats {
	p.group.Lock()
	watermark := p.offsets.Watermark()
	p.group.Unlock()
	ps := PartitionStats{
		Topic:       p.topic,
		Partition:   p.id,
		InFlight:    p.running.Load(),
		HeldRecords: p.records.Held(),
		HeldBytes:   p.bytes.Held(),
		Uncommitted: p.window.Held(),
		Keys:        p.group.Keys(),
		Watermark:   watermark,
		Committed:   p.cp.Committed(),
		Paused:      p.valve.Paused(),
		Parked:      p.parked.Len(time.Now()),
		End:         -1,
		Lag:         -1,
		Retrying:    p.group.Delayed(),
	}
	if eo, ok := p.claim.(EndOffsetter); ok {
		ps.End = eo.EndOffset()
		if ps.End >= 0 && ps.Committed >= 0 {
			ps.Lag = max(ps.End-ps.Committed, 0)
		}
	}
	ps.Reasons = pauseReasonsOf(p.valve.Reasons())
	p.spillStats(&ps)
	return ps
}

func (p *partition) info(t *task) RecordInfo {
	return RecordInfo{Group: p.e.group, Dispatched: t.dispatched, Attempt: t.attempt,
		Priority: int(t.level), RunPriority: int(t.runLevel), Reread: t.reread}
}

// release unparks key on this partition (Engine.ReleaseKey).
func (p *partition) release(key string) bool { return p.parked.Release(key) }
