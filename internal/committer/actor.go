package committer

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/mailbox"
)

// Target is where a partition's position is committed: orderly.Claim
// satisfies it.
type Target interface {
	Commit(ctx context.Context, next int64, metadata string) error
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
	Interval    time.Duration // commit changed partitions this often; must be > 0
	Every       int           // also commit a partition after this many completions; 0: interval only
	MaxMetadata int           // metadata size limit; ≤ 0 means MaxMetadataBytes
	Mailbox     int           // notice mailbox capacity; ≤ 0 means 65536
	Logger      *slog.Logger  // nil means slog.Default()
	// OnCommit, if set, is called on the actor's goroutine after every
	// commit attempt. It must not block.
	OnCommit func(p *Partition, c Commit)
}

// ErrStopped is returned to notices sent after the actor stopped.
var ErrStopped = errors.New("committer: stopped")

// Actor is the committer: one goroutine that owns every open partition's
// Tracker, applies their dispatch and completion notices in the order each
// sender sent them, and commits watermarks in batches.
//
// Notices travel through one bounded mailbox. A sender blocks only when the
// mailbox is full, which the engine's credits make rare: every notice
// stands for a record the engine holds.
type Actor struct {
	cfg  Config
	log  *slog.Logger
	mb   *mailbox.Mailbox[notice]
	done chan struct{} // closed when Run returns

	// Owned by the Run goroutine.
	open  map[*Partition]struct{}
	dirty []*Partition
}

type noticeKind uint8

const (
	kindOpen noticeKind = iota + 1
	kindRegister
	kindSkip // registered and already done
	kindComplete
	kindFlush
	kindClose
)

type notice struct {
	p      *Partition
	kind   noticeKind
	offset int64
	req    *request // flush and close only
}

type request struct {
	ctx   context.Context
	reply chan error
}

// NewActor returns a committer; start it with Run.
func NewActor(cfg Config) *Actor {
	if cfg.Interval <= 0 {
		panic("committer: Config.Interval must be > 0")
	}
	if cfg.MaxMetadata <= 0 {
		cfg.MaxMetadata = MaxMetadataBytes
	}
	if cfg.Mailbox <= 0 {
		cfg.Mailbox = 1 << 16
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Actor{
		cfg: cfg, log: log,
		mb:   mailbox.New[notice](cfg.Mailbox),
		done: make(chan struct{}),
		open: make(map[*Partition]struct{}),
	}
}

// Run processes notices and commits on the interval until Stop. Partitions
// still open when Stop is called get no final commit: close them first.
func (a *Actor) Run() {
	defer close(a.done)
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	batch := make([]notice, 0, 1024)
	for {
		select {
		case <-a.mb.Signal():
			for {
				batch = a.mb.Drain(batch[:0], cap(batch))
				if len(batch) == 0 {
					break
				}
				a.apply(batch)
				clear(batch) // drop references for the GC
			}
			if a.mb.Closed() && a.mb.Len() == 0 {
				return
			}
		case <-tick.C:
			for p := range a.open {
				if p.changed() {
					a.commit(context.Background(), p, false)
				}
			}
		}
	}
}

// Stop ends Run after it has applied every notice already sent, and waits
// for it. Notices sent afterwards are refused.
func (a *Actor) Stop() {
	a.mb.Close()
	<-a.done
}

func (a *Actor) apply(batch []notice) {
	for _, n := range batch {
		p := n.p
		if p.closed {
			if n.req != nil {
				n.req.reply <- ErrClosed
			}
			continue // a notice from an ended claim: fenced
		}
		switch n.kind {
		case kindOpen:
			a.open[p] = struct{}{}
		case kindRegister:
			p.lastRegistered = max(p.lastRegistered, n.offset)
			if !p.tracker.Register(n.offset) {
				p.log.Error("orderly: offset out of order; it will not be committed past", slog.Int64("offset", n.offset),
					slog.Int64("watermark", p.tracker.Watermark()))
			}
		case kindSkip:
			p.lastRegistered = max(p.lastRegistered, n.offset)
			if p.tracker.Register(n.offset) {
				p.tracker.Complete(n.offset)
			}
			a.touch(p)
		case kindComplete:
			if p.tracker.Complete(n.offset) {
				p.completions++
			}
			a.touch(p)
		case kindFlush:
			a.advance(p)
			n.req.reply <- a.commit(n.req.ctx, p, false)
		case kindClose:
			a.advance(p)
			err := a.commit(n.req.ctx, p, true)
			p.closed = true
			delete(a.open, p)
			n.req.reply <- err
		}
	}
	for _, p := range a.dirty {
		p.queued = false
		if p.closed {
			continue
		}
		a.advance(p)
		if a.cfg.Every > 0 && p.completions >= a.cfg.Every {
			a.commit(context.Background(), p, false)
		}
	}
	clear(a.dirty)
	a.dirty = a.dirty[:0]
}

func (a *Actor) touch(p *Partition) {
	if !p.queued {
		p.queued = true
		a.dirty = append(a.dirty, p)
	}
}

// advance publishes the watermark and tells the partition's owner how many
// entries it passed.
func (a *Actor) advance(p *Partition) {
	p.watermark.Store(p.tracker.Watermark())
	p.pending.Store(int64(p.tracker.Pending()))
	if passed := p.tracker.Passed(); passed > p.reported {
		n := passed - p.reported
		p.reported = passed
		if p.onPassed != nil {
			p.onPassed(n)
		}
	}
}

// commit commits p's watermark and metadata if they changed. Commits never
// go backwards: the tracker's watermark never decreases.
func (a *Actor) commit(ctx context.Context, p *Partition, final bool) error {
	next := p.tracker.Watermark()
	p.ranges = p.tracker.CompletedAbove(p.ranges[:0])
	if len(p.inherited) > 0 {
		next, p.ranges = p.carryInherited(next, p.ranges)
	}
	if next < 0 || next < p.lastNext {
		return nil // nothing registered yet and no known start
	}
	meta, _ := EncodeMetadata(next, p.ranges, a.cfg.MaxMetadata)
	if next == p.lastNext && meta == p.lastMeta {
		p.completions = 0
		if final && a.cfg.OnCommit != nil {
			// Observers learn of every claim's end, even with nothing new
			// to commit.
			a.cfg.OnCommit(p, Commit{From: next, To: next, Metadata: meta, Final: true})
		}
		return nil
	}
	began := time.Now()
	err := p.target.Commit(ctx, next, meta)
	c := Commit{From: p.lastNext, To: next, Records: p.tracker.Passed() - p.committedPassed, Metadata: meta, Final: final, Err: err,
		Took: time.Since(began)}
	if err != nil {
		p.log.Warn("orderly: commit failed; will retry", slog.Int64("next", next), slog.Any("error", err))
	} else {
		p.lastNext, p.lastMeta = next, meta
		p.committedPassed = p.tracker.Passed()
		p.completions = 0
		p.committed.Store(next)
	}
	if a.cfg.OnCommit != nil {
		a.cfg.OnCommit(p, c)
	}
	return err
}

// ErrClosed is returned by Flush and Close on a partition already closed.
var ErrClosed = errors.New("committer: partition closed")

// Partition is one claim's handle on the committer. Register, Skip and
// Complete send notices and may block only while the actor's mailbox is
// full; Flush and Close wait for the actor. All are safe for concurrent use,
// but each sender's notices are applied in the order it sent them, so one
// goroutine (the dispatcher) must register offsets in ascending order and
// before the records' completions can be sent.
type Partition struct {
	a        *Actor
	target   Target
	log      *slog.Logger
	onPassed func(n int64)

	watermark atomic.Int64 // published by the actor
	committed atomic.Int64 // published by the actor
	pending   atomic.Int64 // published by the actor

	// Owned by the actor's goroutine.
	tracker         *Tracker
	ranges          []Range
	lastNext        int64
	lastMeta        string
	completions     int
	reported        int64 // tracker.Passed() last told to onPassed
	committedPassed int64 // tracker.Passed() at the last successful commit
	closed          bool
	queued          bool    // in the actor's dirty list
	inherited       []Range // done ranges from the start metadata not yet passed by the dispatcher
	lastRegistered  int64   // highest offset registered or skipped; start-1 before any
}

// carryInherited adds to a commit the ranges the start metadata said were
// done and that the dispatcher has not reached yet: without them, a commit
// made before the dispatcher passes them would forget them, and the next
// owner would handle those records again. Ranges the dispatcher has passed
// are in the tracker (as skipped offsets) and are dropped from inherited.
// When nothing is pending and the watermark reaches an inherited range, the
// watermark moves past it: those records are done.
func (p *Partition) carryInherited(next int64, ranges []Range) (int64, []Range) {
	keep := p.inherited[:0]
	for _, r := range p.inherited {
		if r.Last <= p.lastRegistered {
			continue // passed: the tracker has it
		}
		keep = append(keep, r)
	}
	p.inherited = keep
	for _, r := range keep {
		r.First = max(r.First, p.lastRegistered+1)
		if p.tracker.InFlight() == 0 && r.First <= next {
			next = max(next, r.Last+1)
			continue
		}
		ranges = append(ranges, r)
	}
	return next, ranges
}

// Open starts tracking a claim whose committed position is (start,
// metadata); start is -1 when the group has none. It returns the ranges of
// offsets above start that the metadata says are already done: the caller
// skips those records (and reports them with Skip). Metadata that is not
// orderly's, is corrupt, or was written for another offset is logged and
// ignored: nothing is skipped, so those records are processed again.
//
// onPassed, if set, is called on the actor's goroutine with the number of
// registered offsets each advance of the watermark passed; it must not
// block.
func (a *Actor) Open(t Target, start int64, metadata string, onPassed func(n int64), log *slog.Logger) (*Partition, []Range) {
	if log == nil {
		log = a.log
	}
	p := &Partition{a: a, target: t, log: log, onPassed: onPassed, tracker: NewTracker(start),
		lastNext: start, lastMeta: metadata, lastRegistered: start - 1}
	p.watermark.Store(start)
	p.committed.Store(start)
	var skip []Range
	if start >= 0 {
		var err error
		skip, err = DecodeMetadata(start, metadata)
		if err != nil {
			log.Warn("orderly: ignoring commit metadata; records after the committed offset will be processed again",
				slog.Int64("committed", start), slog.Any("error", err))
			skip = nil
		}
		p.inherited = append([]Range(nil), skip...)
	}
	_ = a.mb.Push(context.Background(), notice{p: p, kind: kindOpen})
	return p, skip
}

// Register tells the committer that the record at offset was dispatched.
func (p *Partition) Register(offset int64) error {
	return p.send(notice{p: p, kind: kindRegister, offset: offset})
}

// Skip registers offset as already done (skipped after a restart, or
// committed at dispatch under at-most-once).
func (p *Partition) Skip(offset int64) error {
	return p.send(notice{p: p, kind: kindSkip, offset: offset})
}

// Complete tells the committer that the record at offset is done. After
// Close it is ignored: a completion from an ended claim is never committed.
func (p *Partition) Complete(offset int64) error {
	return p.send(notice{p: p, kind: kindComplete, offset: offset})
}

func (p *Partition) send(n notice) error {
	if err := p.a.mb.Push(context.Background(), n); err != nil {
		return ErrStopped
	}
	return nil
}

// Flush commits the partition's position now, after every notice sent
// before it, and returns the commit's error.
func (p *Partition) Flush(ctx context.Context) error { return p.request(ctx, kindFlush) }

// Close applies every notice sent before it, commits the final position
// synchronously, and ends the partition: later notices are dropped.
func (p *Partition) Close(ctx context.Context) error { return p.request(ctx, kindClose) }

func (p *Partition) request(ctx context.Context, kind noticeKind) error {
	req := &request{ctx: ctx, reply: make(chan error, 1)}
	if err := p.a.mb.Push(ctx, notice{p: p, kind: kind, req: req}); err != nil {
		if errors.Is(err, mailbox.ErrClosed) {
			return ErrStopped
		}
		return err
	}
	select {
	case err := <-req.reply:
		return err
	case <-p.a.done:
		return ErrStopped
	}
}

// Target is where the partition commits.
func (p *Partition) Target() Target { return p.target }

// Watermark is the partition's current watermark (next offset to commit),
// or -1 when unknown.
func (p *Partition) Watermark() int64 { return p.watermark.Load() }

// Committed is the last position committed successfully (or the start).
func (p *Partition) Committed() int64 { return p.committed.Load() }

// Pending is the partition's uncommitted window: registered records the
// watermark has not passed.
func (p *Partition) Pending() int64 { return p.pending.Load() }

func (p *Partition) changed() bool {
	return p.completions > 0 || p.tracker.Watermark() != p.lastNext
}
