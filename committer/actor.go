package committer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Target is where a partition's position is committed: orderly.Claim
// satisfies it.
type Target interface {
	Commit(ctx context.Context, next int64, metadata string) error
}

// Request is one partition's commit in a batch.
type Request struct {
	Target   Target
	Next     int64
	Metadata string
}

// Commit describes one commit attempt, for observers.
type Commit struct {
	From, To int64 // committed next offset before and after
	Records  int64 // records the watermark passed since the previous commit
	Metadata string
	Final    bool // the synchronous commit of a revoke or shutdown
	Err      error
	Took     time.Duration
}

// Config configures an Actor.
type Config struct {
	Interval time.Duration // commit the partitions that moved this often; must be > 0
	Timeout  time.Duration // the deadline of each interval commit; must be > 0
	// Every, if > 0, commits a partition as soon as this many of its
	// offsets were completed since its last commit, without waiting for
	// the interval.
	Every       int
	MaxMetadata int          // metadata size limit; ≤ 0 means MaxMetadataBytes
	Logger      *slog.Logger // nil means slog.Default()
	// OnCommit, if set, is called after every commit attempt (and after a
	// partition's final commit even when there was nothing new to commit),
	// on the commit goroutine that made it, with no lock held. It must not
	// block for long: interval commits wait for it.
	OnCommit func(t Target, c Commit)
	// Batch, if set, stores several partitions' positions at once and
	// returns one error per request (a source's BatchCommitter). The actor
	// then commits all the partitions that moved with one call per interval
	// instead of one Commit each.
	Batch func(ctx context.Context, reqs []Request) []error
}

// ErrClosed is returned by Close and Flush on a partition already closed,
// and to requests still waiting when the actor stops.
var ErrClosed = errors.New("committer: partition closed")

// Actor is the committer: one goroutine, the actor's loop, owns the
// offsets of every open partition (a Tracker of what was dispatched and
// completed, and the ranges its start metadata said were done) and their
// commit state, and advances each partition's watermark from the notices
// its owner sends (Partition.Register, Complete, Send). Notices travel in
// batches, one message per Send, never one per offset.
//
// Commits never block the loop: interval commits run on the actor's commit
// goroutine (all partitions that moved, in one Config.Batch call when set),
// and the synchronous commits of Flush and Close each on a goroutine of
// their own; results come back to the loop as messages. A partition never
// has two commits in flight, and its commits never go backwards: each
// commits its tracker's watermark, which never decreases. Every goroutine
// the actor starts is joined by Stop.
//
// Goroutines: the loop (started by Start, stopped by Stop), the commit
// goroutine (started by Start; exits when the loop does, after its batch),
// and one per synchronous commit (exits when its commit returns). Stop
// waits for all of them.
type Actor struct {
	cfg Config
	log *slog.Logger

	// inMu guards inbox and spare; workers of the owner side take it once
	// per Send, the loop once per round. No other lock is taken under it.
	inMu    sync.Mutex
	inbox   []message
	stopped bool           // the loop has stopped: syncs are answered ErrClosed at once
	spare   [][]uint64     // emptied op slices, for the owners' next notices
	wake    chan struct{}  // one slot: a message was posted
	jobs    chan *batchJob // to the commit goroutine
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup // the loop, the commit goroutine, synchronous commits

	// Owned by the loop.
	parts   map[*Partition]struct{}
	due     bool // commit every partition that moved, when the commit goroutine is free
	busy    bool // the commit goroutine has a batch
	work    []message
	reqs    []Request
	started bool
}

type messageKind uint8

const (
	msgOpen messageKind = iota
	msgNotice
	msgSync   // Flush or Close
	msgResult // a commit's result
)

type message struct {
	kind  messageKind
	p     *Partition
	ops   []uint64 // msgNotice
	final bool     // msgSync: Close, not Flush
	ctx   context.Context
	reply chan error // msgSync; buffered
	res   []jobResult
	batch bool // msgResult: from the commit goroutine
}

// An op is one notice about one offset: offset<<2 | kind.
const (
	opRegister uint64 = iota
	opRegisterDone
	opComplete
)

// batchJob is a batch of commits for the commit goroutine.
type batchJob struct {
	items []jobItem
}

type jobItem struct {
	p         *Partition
	next      int64
	meta      string
	passed    int64 // the tracker's Passed at the job's creation
	completed int   // completions counted when the job was made
	c         Commit
}

type jobResult struct {
	p         *Partition
	next      int64
	meta      string
	passed    int64
	completed int
	err       error
}

// NewActor returns a committer; start it with Start. It panics if Interval
// or Timeout is not positive (the engine validates its options first).
func NewActor(cfg Config) *Actor {
	if cfg.Interval <= 0 || cfg.Timeout <= 0 {
		panic("committer: Config.Interval and Config.Timeout must be > 0")
	}
	if cfg.MaxMetadata <= 0 {
		cfg.MaxMetadata = MaxMetadataBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Actor{cfg: cfg, log: log, wake: make(chan struct{}, 1), jobs: make(chan *batchJob, 1),
		stop: make(chan struct{}), parts: make(map[*Partition]struct{})}
}

// Start starts the actor's loop and its commit goroutine. Call it once.
func (a *Actor) Start() {
	if a.started {
		panic("committer: Actor started twice")
	}
	a.started = true
	a.wg.Add(2)
	// Owned by the actor: the loop; exits on Stop.
	go func() { defer a.wg.Done(); a.loop() }()
	// Owned by the actor: runs interval batches; exits when the loop
	// closes jobs.
	go func() { defer a.wg.Done(); a.committing() }()
}

// Stop ends the actor and waits for every goroutine it started: a batch in
// flight finishes first (bounded by Config.Timeout), and synchronous
// commits by their callers' contexts. Partitions still open get no final
// commit: close them first. Requests still queued get ErrClosed.
func (a *Actor) Stop() {
	a.once.Do(func() { close(a.stop) })
	a.wg.Wait()
}

// post hands m to the loop.
func (a *Actor) post(m message) {
	a.inMu.Lock()
	if a.stopped {
		a.inMu.Unlock()
		if m.kind == msgSync {
			m.reply <- ErrClosed
		}
		return
	}
	a.inbox = append(a.inbox, m)
	a.inMu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Actor) loop() {
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	defer close(a.jobs)
	for {
		select {
		case <-a.stop:
			a.inMu.Lock()
			a.stopped = true
			a.inMu.Unlock()
			a.drain()
			for p := range a.parts {
				for _, m := range p.syncs {
					m.reply <- ErrClosed
				}
				p.syncs = nil
			}
			return
		case <-tick.C:
			a.due = true
			for p := range a.parts {
				p.failed = false
			}
		case <-a.wake:
		}
		a.drain()
		a.commitDue()
	}
}

// drain applies every message posted since the last round, in order.
func (a *Actor) drain() {
	a.inMu.Lock()
	a.work, a.inbox = a.inbox, a.work[:0]
	a.inMu.Unlock()
	var spare [][]uint64
	for i := range a.work {
		m := &a.work[i]
		switch m.kind {
		case msgOpen:
			a.parts[m.p] = struct{}{}
		case msgNotice:
			a.apply(m.p, m.ops)
			spare = append(spare, m.ops[:0])
		case msgSync:
			a.sync(m)
		case msgResult:
			a.result(m)
		}
	}
	if len(spare) > 0 {
		a.inMu.Lock()
		a.spare = append(a.spare, spare...)
		a.inMu.Unlock()
	}
	if a.cfg.Every > 0 && !a.due {
		for p := range a.parts {
			if p.completed >= a.cfg.Every && !p.failed {
				a.due = true
				break
			}
		}
	}
	// Keep the storage; drop the references.
	clear(a.work)
}

// apply applies one notice to p's offsets and publishes the result.
func (a *Actor) apply(p *Partition, ops []uint64) {
	if p.closed {
		return // a notice after Close belongs to an ended claim: ignored
	}
	var passed int64
	for _, op := range ops {
		off := int64(op >> 2)
		switch op & 3 {
		case opRegister:
			if !p.offsets.Register(off) {
				p.misordered(off)
			}
		case opRegisterDone:
			passed += p.offsets.RegisterDone(off)
		case opComplete:
			passed += p.offsets.Complete(off)
			p.completed++
		}
	}
	p.dirty = true
	p.publish()
	if passed > 0 && p.onPassed != nil {
		p.onPassed(passed)
	}
}

// commitDue starts an interval batch when one is due and the commit
// goroutine is free: every open partition that moved since its last
// commit and has no commit in flight.
func (a *Actor) commitDue() {
	if !a.due || a.busy {
		return
	}
	a.due = false
	job := &batchJob{}
	for p := range a.parts {
		if !p.dirty || p.inFlight || len(p.syncs) > 0 {
			continue
		}
		p.dirty = false
		next, meta, ok := p.prepare(a.cfg.MaxMetadata)
		if !ok {
			continue
		}
		p.inFlight = true
		job.items = append(job.items, jobItem{p: p, next: next, meta: meta, passed: p.offsets.Passed(), completed: p.completed,
			c: Commit{From: p.lastNext, To: next, Records: p.offsets.Passed() - p.lastPassed, Metadata: meta}})
	}
	if len(job.items) == 0 {
		return
	}
	a.busy = true
	a.jobs <- job // never blocks: the goroutine is free and the channel holds one
}

// committing is the commit goroutine: it runs each batch, tells the
// observers, and hands the results back to the loop.
func (a *Actor) committing() {
	var reqs []Request
	for job := range a.jobs {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
		began := time.Now()
		if a.cfg.Batch != nil && len(job.items) > 1 {
			reqs = reqs[:0]
			for _, it := range job.items {
				reqs = append(reqs, Request{Target: it.p.target, Next: it.next, Metadata: it.meta})
			}
			errs := a.cfg.Batch(ctx, reqs)
			took := time.Since(began)
			for i := range job.items {
				err := errors.New("committer: batch commit returned too few results")
				if i < len(errs) {
					err = errs[i]
				}
				job.items[i].c.Err, job.items[i].c.Took = err, took
			}
			clear(reqs)
		} else {
			for i := range job.items {
				it := &job.items[i]
				t0 := time.Now()
				it.c.Err = it.p.target.Commit(ctx, it.next, it.meta)
				it.c.Took = time.Since(t0)
			}
		}
		cancel()
		for _, it := range job.items {
			if it.c.Err == nil {
				// Readers see it at once, not once the loop has the result
				// (a partition has one commit in flight: no race backwards).
				it.p.committed.Store(it.next)
			}
		}
		res := make([]jobResult, len(job.items))
		for i, it := range job.items {
			it.p.report(it.c, false)
			a.observe(it.p, it.c)
			res[i] = jobResult{p: it.p, next: it.next, meta: it.meta, passed: it.passed, completed: it.completed, err: it.c.Err}
		}
		a.post(message{kind: msgResult, res: res, batch: true})
	}
}

func (a *Actor) observe(p *Partition, c Commit) {
	if a.cfg.OnCommit != nil {
		a.cfg.OnCommit(p.target, c)
	}
}

// result records the results of commits that came back.
func (a *Actor) result(m *message) {
	if m.batch {
		a.busy = false
	}
	for _, r := range m.res {
		p := r.p
		p.inFlight = false
		if r.err == nil {
			p.lastNext, p.lastMeta, p.lastPassed = r.next, r.meta, r.passed
			p.committed.Store(r.next)
			p.completed -= r.completed
		} else if !p.closed {
			p.dirty = true // the next tick tries again
			p.failed = true
		}
		if len(p.syncs) > 0 {
			a.startSync(p)
		}
	}
	if m.batch && a.cfg.Every > 0 {
		for p := range a.parts {
			if p.completed >= a.cfg.Every && !p.failed {
				a.due = true
			}
		}
	}
}

// sync handles a Flush or Close: it starts the partition's synchronous
// commit now, or once its commit in flight is back.
func (a *Actor) sync(m *message) {
	p := m.p
	if p.closed {
		m.reply <- ErrClosed
		return
	}
	mc := *m // m lives in the round's work list, cleared after the round
	p.syncs = append(p.syncs, &mc)
	if !p.inFlight {
		a.startSync(p)
	}
}

// startSync runs p's next synchronous commit on a goroutine of its own;
// p has no commit in flight. Flushes with nothing new to commit are
// answered at once.
func (a *Actor) startSync(p *Partition) {
	var (
		m              *message
		next           int64
		meta           string
		changed, final bool
	)
	for len(p.syncs) > 0 {
		if p.closed {
			for _, m := range p.syncs {
				m.reply <- ErrClosed
			}
			p.syncs = nil
			return
		}
		m = p.syncs[0]
		p.syncs = p.syncs[1:]
		final = m.final
		next, meta, changed = p.prepare(a.cfg.MaxMetadata)
		if changed || final {
			break
		}
		p.dirty = false
		m.reply <- nil
		m = nil
	}
	if m == nil {
		return
	}
	if final {
		p.closed = true
		delete(a.parts, p)
		for _, later := range p.syncs {
			later.reply <- ErrClosed
		}
		p.syncs = nil
	}
	p.inFlight = true
	c := Commit{From: p.lastNext, To: p.lastNext, Metadata: p.lastMeta, Final: final}
	if changed {
		c.To, c.Records, c.Metadata = next, p.offsets.Passed()-p.lastPassed, meta
	}
	passed, completed := p.offsets.Passed(), p.completed
	ctx := m.ctx
	a.wg.Add(1)
	// Owned by the actor: one synchronous commit; bounded by the
	// caller's context.
	go func() {
		defer a.wg.Done()
		if changed {
			t0 := time.Now()
			c.Err = p.target.Commit(ctx, next, meta)
			c.Took = time.Since(t0)
			if c.Err == nil {
				p.committed.Store(next)
			}
			p.report(c, final)
		}
		a.observe(p, c)
		m.reply <- c.Err
		if changed {
			a.post(message{kind: msgResult, res: []jobResult{{p: p, next: next, meta: meta, passed: passed, completed: completed, err: c.Err}}})
		}
	}()
	if !changed {
		p.inFlight = false
	}
}

// Partition is one claim's handle on the committer.
//
// Its owner (one goroutine: orderly's partition dispatcher) calls
// Register, RegisterDone, Complete and Send; Flush and Close may be called
// from any goroutine; the readers (Watermark, Committed, Pending, InFlight)
// never block and are safe for concurrent use.
type Partition struct {
	a        *Actor
	target   Target
	log      *slog.Logger
	onPassed func(n int64) // called on the loop when the watermark passes registered offsets

	// Owned by the owner.
	ops []uint64

	// Owned by the actor's loop.
	offsets    *Offsets
	ranges     []Range
	lastNext   int64
	lastMeta   string
	lastPassed int64
	completed  int  // completions since the last successful commit
	dirty      bool // the position may have moved since the last commit
	failed     bool // its last commit failed: Every waits for the next tick
	inFlight   bool
	syncs      []*message // Flushes and Closes waiting for their turn, in order
	closed     bool
	warned     bool // an out-of-order offset was logged

	// Published by the loop (and the commit goroutines) for readers.
	watermark atomic.Int64
	committed atomic.Int64
	pending   atomic.Int64
	inflight  atomic.Int64
}

// Opening describes a partition to Open.
type Opening struct {
	Target Target
	// Start is the committed position when the claim was granted (-1 when
	// the group has none) and Metadata the metadata stored with it.
	Start    int64
	Metadata string
	// OnPassed, if set, is called on the actor's loop, with no lock held,
	// whenever the watermark passes registered offsets, with how many (an
	// uncommitted window's credits come back there). It must not block.
	OnPassed func(n int64)
	Logger   *slog.Logger // nil: the actor's
}

// Open starts committing a claim and returns its handle with the ranges
// its start metadata says are done above the start (for a Skipper). When
// the metadata is not ours, corrupt, or stale, Open returns the error from
// DecodeMetadata with no ranges: nothing is skipped, which is always safe.
// Commits happen once the position moves past the start.
func (a *Actor) Open(o Opening) (*Partition, []Range, error) {
	log := o.Logger
	if log == nil {
		log = a.log
	}
	var (
		done []Range
		err  error
	)
	if o.Start >= 0 {
		done, err = DecodeMetadata(o.Start, o.Metadata)
		if err != nil {
			done = nil
		}
	}
	p := &Partition{a: a, target: o.Target, log: log, onPassed: o.OnPassed,
		offsets: NewOffsets(o.Start, done), lastNext: o.Start, lastMeta: o.Metadata}
	p.committed.Store(o.Start)
	p.publish()
	a.post(message{kind: msgOpen, p: p})
	return p, done, err
}

// Register notes that the record at offset was dispatched. Offsets must
// increase across Register and RegisterDone calls; one that does not is
// logged and never committed past.
func (p *Partition) Register(offset int64) { p.ops = append(p.ops, uint64(offset)<<2|opRegister) }

// RegisterDone notes a record dispatched as done already: skipped after a
// restart, or committed at dispatch (at-most-once).
func (p *Partition) RegisterDone(offset int64) {
	p.ops = append(p.ops, uint64(offset)<<2|opRegisterDone)
}

// Complete notes that the record at offset, registered earlier, is done.
func (p *Partition) Complete(offset int64) { p.ops = append(p.ops, uint64(offset)<<2|opComplete) }

// Send hands the notices noted since the last Send to the actor, as one
// message. It never blocks.
func (p *Partition) Send() {
	if len(p.ops) == 0 {
		return
	}
	a := p.a
	m := message{kind: msgNotice, p: p, ops: p.ops}
	a.inMu.Lock()
	a.inbox = append(a.inbox, m)
	if n := len(a.spare); n > 0 {
		p.ops = a.spare[n-1]
		a.spare[n-1] = nil
		a.spare = a.spare[:n-1]
	} else {
		p.ops = nil
	}
	a.inMu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Flush commits the partition's position now, after the notices sent so
// far, and returns the commit's error (nil when there was nothing new to
// commit). It waits for a commit of the partition in flight first.
func (p *Partition) Flush(ctx context.Context) error { return p.syncCommit(ctx, false) }

// Close commits the final position, after the notices sent so far, and
// ends the partition: no commit is made for it afterwards, and notices
// sent later are ignored. Observers are told of the final commit even when
// there was nothing new to commit. Close returns the commit's error, or
// ctx's error if ctx is done first.
func (p *Partition) Close(ctx context.Context) error { return p.syncCommit(ctx, true) }

func (p *Partition) syncCommit(ctx context.Context, final bool) error {
	p.Send()
	reply := make(chan error, 1)
	p.a.post(message{kind: msgSync, p: p, final: final, ctx: ctx, reply: reply})
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Watermark is the next offset to commit as of the notices applied so far:
// the lowest registered offset not completed (see Tracker.Watermark); -1
// when unknown.
func (p *Partition) Watermark() int64 { return p.watermark.Load() }

// Committed is the last position committed successfully (or the start).
func (p *Partition) Committed() int64 { return p.committed.Load() }

// Pending is the uncommitted window as of the notices applied so far:
// registered offsets the watermark has not passed.
func (p *Partition) Pending() int64 { return p.pending.Load() }

// InFlight is the number of registered offsets not completed, as of the
// notices applied so far.
func (p *Partition) InFlight() int64 { return p.inflight.Load() }

// Target is where the partition commits.
func (p *Partition) Target() Target { return p.target }

// publish stores the readers' figures; on the loop.
func (p *Partition) publish() {
	p.watermark.Store(p.offsets.Watermark())
	p.pending.Store(int64(p.offsets.Pending()))
	p.inflight.Store(int64(p.offsets.InFlight()))
}

// prepare computes the position to commit and reports whether it differs
// from the last one committed; on the loop.
func (p *Partition) prepare(limit int) (next int64, meta string, changed bool) {
	pos := p.offsets.Position(p.ranges[:0])
	p.ranges = pos.Ranges
	if pos.Next < 0 || pos.Next < p.lastNext {
		return 0, "", false // nothing registered yet and no known start
	}
	meta, _ = EncodeMetadata(pos.Next, pos.Ranges, limit)
	return pos.Next, meta, pos.Next != p.lastNext || meta != p.lastMeta
}

// report logs a failed commit; on the goroutine that made it.
func (p *Partition) report(c Commit, final bool) {
	if c.Err == nil {
		return
	}
	if final {
		p.log.Warn("orderly: final commit failed", slog.Int64("next", c.To), slog.Any("error", c.Err))
		return
	}
	p.log.Warn("orderly: commit failed; will retry", slog.Int64("next", c.To), slog.Any("error", c.Err))
}

// misordered logs an offset registered out of order, once per partition.
func (p *Partition) misordered(offset int64) {
	if p.warned {
		return
	}
	p.warned = true
	p.log.Error("orderly: offset out of order; it will not be committed past", slog.Int64("offset", offset),
		slog.Int64("watermark", p.offsets.Watermark()))
}
