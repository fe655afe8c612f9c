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
	"github.com/orderly-go/orderly/internal/parking"
	"github.com/orderly-go/orderly/mailbox"
	"golang.org/x/time/rate"
)

// partition is one claim, from grant to final commit: its dispatcher and
// the state the dispatcher owns. Its work is split by responsibility:
//
//   - dispatch.go: reading the claim's batches, taking their credits,
//     routing each record to its key actor (or spilling it);
//   - completion.go: collecting what the workers finished, giving credits
//     back, telling the committer;
//   - lifecycle.go: the dispatcher's event loop, revoke, drain and the
//     final commit;
//   - spill.go: spilled keys and their re-reader.
//
// Goroutines: run (the dispatcher) is the serve goroutine the source
// started; it alone reads the claim, owns the fields marked "dispatcher"
// below, sends to the key group and collects from it. The key actors' turns
// run on the engine's scheduler and touch only their records' tasks; they
// hand finished turns back to the group in batches. The re-reader (spill.go)
// is a goroutine started and joined by run, and talks to run by messages.
// The committer actor owns the partition's offsets; run tells it what was
// dispatched and completed, one message per batch (committer.Partition).
//
// Locks: none of the partition's own guards dispatch. The group's lock
// (package actors) guards the key actors for readers (Inspect, Stats);
// viewMu guards the tasks' views, written by workers on their slow paths
// and read by Inspect, and is a leaf.
type partition struct {
	e     *Engine
	num   int64 // unique in the engine, > 0: what a worker's slot says while calling the handler for it
	claim Claim
	topic string
	id    int32
	log   *slog.Logger

	group   *actors.Group[*task]
	valve   *backpressure.Valve
	records *backpressure.Pool // partition record credits
	bytes   *backpressure.Pool // partition byte credits
	window  *backpressure.Pool // uncommitted window, given back by the committer as the watermark passes
	cp      *committer.Partition
	limiter *rate.Limiter // per-partition rate limit; nil if none

	readCtx        context.Context // done on revoke or shutdown: stop dispatching
	cancelRead     context.CancelFunc
	handlerCtx     context.Context // handlers' parent; cancelled after the revoke/drain timeout
	cancelHandlers context.CancelFunc

	stopping atomic.Bool // set on revoke: records not yet started are abandoned

	parked parking.Table // keys parked after a dead letter (WithKeyParking); its own lock
	viewMu sync.Mutex    // guards every task's view; a leaf

	spill *spiller // nil when keys over their buffer pause the partition (see KeyOverflow)

	// Counters for Stats: written by the dispatcher once per collected
	// batch, read by anyone.
	counts atomicCounts

	// Owned by the dispatcher.
	d dispatcher
}

// dispatcher is the state the partition's dispatcher goroutine owns.
type dispatcher struct {
	skip      *committer.Skipper // offsets done before a restart; nil if none
	msgs      []actors.Message[*task]
	held      []*Record // read from the claim, waiting for credit
	wait      *backpressure.Waiter
	waitFor   backpressure.Credit // what wait waits for
	granted   backpressure.Credit // credits a granted waiter holds, until the next take counts them
	taken     []backpressure.Credit
	sizes     []int64   // the sizes of the records takeRecords took credits for
	quiet     []uint64  // observe's answer for the batch being sent
	keep      []bool    // a filter's answer (observe)
	pending   []*Record // at-most-once: registered as done, waiting for their commit
	live      int64     // records queued in the group and not collected
	tasks     []*task   // tasks of collected records, for reuse
	collected []*task   // tasks of the records being collected
	keysOut   bool      // (pause mode) some key is over its buffer: the valve holds ReasonKey
	prio      partitionPriority
}

// counts are a partition's record counters, as Stats sums them.
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

// atomicCounts are counts with one writer (the dispatcher) and many
// readers.
type atomicCounts struct {
	handled, recovered, deadLettered, failed, reread atomic.Uint64
}

func (a *atomicCounts) add(c counts) {
	if c.handled > 0 {
		a.handled.Add(c.handled)
	}
	if c.recovered > 0 {
		a.recovered.Add(c.recovered)
	}
	if c.deadLettered > 0 {
		a.deadLettered.Add(c.deadLettered)
	}
	if c.failed > 0 {
		a.failed.Add(c.failed)
	}
	if c.reread > 0 {
		a.reread.Add(c.reread)
	}
}

func (a *atomicCounts) load() counts {
	return counts{handled: a.handled.Load(), recovered: a.recovered.Load(), deadLettered: a.deadLettered.Load(),
		failed: a.failed.Load(), reread: a.reread.Load()}
}

func newPartition(e *Engine, c Claim) *partition {
	p := &partition{
		e: e, num: e.nums.Add(1), claim: c, topic: c.Topic(), id: c.Partition(),
		log: e.log.With(slog.String("topic", c.Topic()), slog.Int("partition", int(c.Partition()))),
	}
	cfg := &e.cfg
	p.valve = backpressure.NewValve(p.pause, p.resume)
	p.records = backpressure.NewPool(int64(cfg.partition.records), lowMark(int64(cfg.partition.records), cfg.lowMark),
		func() { p.valve.Set(backpressure.ReasonPartitionRecords, false) })
	p.bytes = backpressure.NewPool(cfg.partition.bytes, lowMark(cfg.partition.bytes, cfg.lowMark),
		func() { p.valve.Set(backpressure.ReasonPartitionBytes, false) })
	p.window = backpressure.NewPool(int64(cfg.maxUncommitted), lowMark(int64(cfg.maxUncommitted), cfg.lowMark),
		func() { p.valve.Set(backpressure.ReasonUncommitted, false) })
	rereader, spills := e.spillable(c)
	key := cfg.keyLimits(spills)
	mb := mailbox.Config{High: mailbox.Limits{Messages: key.records, Bytes: key.bytes},
		Low: mailbox.Limits{Messages: int(lowMark(int64(key.records), cfg.lowMark)), Bytes: lowMark(key.bytes, cfg.lowMark)}}
	p.group = actors.NewGroup(e.sched, actors.GroupConfig[*task]{
		Receive: func(t **task, w *actors.Worker) (time.Duration, bool) { return e.chain.step(p, *t, w) },
		Mailbox: mb,
		Hold:    !spills, // a partition that cannot spill keeps a full key's records and pauses
	})
	if spills {
		p.spill = newSpiller(p, rereader)
	}
	if cfg.partitionRate != nil {
		p.limiter = rate.NewLimiter(cfg.partitionRate.limit, cfg.partitionRate.burst)
	}

	start := c.Start()
	cp, done, err := e.committer.Open(committer.Opening{Target: c, Start: start.Offset, Metadata: start.Metadata,
		OnPassed: func(n int64) { p.window.Release(n) }, Logger: p.log})
	if err != nil {
		p.log.Warn("orderly: ignoring commit metadata; records after the committed offset will be processed again",
			slog.Int64("committed", start.Offset), slog.Any("error", err))
	}
	p.cp = cp
	if len(done) > 0 {
		p.d.skip = committer.NewSkipper(done)
	}
	p.readCtx, p.cancelRead = context.WithCancel(e.runCtx)
	p.handlerCtx, p.cancelHandlers = context.WithCancel(context.WithoutCancel(e.runCtx))
	return p
}

// pause and resume are the valve's: its applier calls them with no lock
// held, one at a time, until the partition closes its valve.
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

func (p *partition) info(t *task) RecordInfo {
	return RecordInfo{Group: p.e.group, Dispatched: t.dispatched, Attempt: t.attempt,
		Priority: int(t.level), RunPriority: int(t.runLevel), Reread: t.reread}
}

// release unparks key on this partition (Engine.ReleaseKey).
func (p *partition) release(key string) bool { return p.parked.Release(key) }

// newTask returns a task for r: a collected record's, reused, or a new
// one. Dispatcher only.
func (p *partition) newTask(r *Record, size int64, dispatched time.Time, born int64) *task {
	d := &p.d
	var t *task
	if n := len(d.tasks); n > 0 {
		t = d.tasks[n-1]
		d.tasks[n-1] = nil
		d.tasks = d.tasks[:n-1]
	} else {
		t = new(task)
	}
	*t = task{rec: r, offset: r.Offset, size: size, dispatched: dispatched, born: born}
	return t
}

// freeTask keeps t for reuse, once its record was collected (the group
// lets go of it in the same Collect, before the dispatcher sends again).
func (p *partition) freeTask(t *task) {
	if len(p.d.tasks) < maxFreeTasks {
		*t = task{}
		p.d.tasks = append(p.d.tasks, t)
	}
}

// maxFreeTasks bounds a partition's spare tasks.
const maxFreeTasks = 4096
