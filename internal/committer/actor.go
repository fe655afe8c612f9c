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
	Interval    time.Duration // commit changed partitions this often; must be > 0
	Timeout     time.Duration // the deadline of each interval commit; must be > 0
	MaxMetadata int           // metadata size limit; ≤ 0 means MaxMetadataBytes
	Logger      *slog.Logger  // nil means slog.Default()
	// OnCommit, if set, is called after every commit attempt, on the
	// goroutine that made it, with no lock held.
	OnCommit func(p *Partition, c Commit)
	// Batch, if set, stores several partitions' positions at once and
	// returns one error per request (a source's BatchCommitter). The actor
	// then commits all the partitions that moved since the last tick with
	// one call; without it, it commits them one by one.
	Batch func(ctx context.Context, reqs []Request) []error
}

// commitLock is a lock made of a one-slot channel.
type commitLock struct{ ch chan struct{} }

func (l *commitLock) Lock()   { l.ch <- struct{}{} }
func (l *commitLock) Unlock() { <-l.ch }

// ErrClosed is returned by Flush and Close on a partition already closed.
var ErrClosed = errors.New("committer: partition closed")

// Actor is the committer: one goroutine that commits, on every interval
// and whenever a partition asks (Poke), every open partition whose position
// changed. A partition's position is read from its owner (Position
// function) at commit time, so completions cost the committer nothing:
// there is no message per record.
//
// Commits never go backwards: a partition's position is its tracker's,
// which never decreases, and one partition's commits never overlap (each
// holds the partition's commit lock).
type Actor struct {
	cfg  Config
	log  *slog.Logger
	poke chan struct{} // one slot: pokes coalesce
	stop chan struct{}
	done chan struct{} // closed when Run returns

	mu   sync.Mutex // guards open; never held while committing
	open map[*Partition]struct{}

	// Owned by the Run goroutine.
	parts []*Partition
	reqs  []Request
}

// NewActor returns a committer; start it with Run.
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
	return &Actor{cfg: cfg, log: log, poke: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), open: make(map[*Partition]struct{})}
}

// Run commits on the interval and on pokes until Stop. Partitions still
// open when Stop is called get no final commit: close them first.
func (a *Actor) Run() {
	defer close(a.done)
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-tick.C:
		case <-a.poke:
		}
		a.commitChanged()
	}
}

// Stop ends Run and waits for it; a commit in flight finishes first
// (bounded by Config.Timeout).
func (a *Actor) Stop() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

// commitChanged commits every open partition marked dirty whose position
// moved: with one batch call when Config.Batch is set, else one by one.
func (a *Actor) commitChanged() {
	a.mu.Lock()
	a.parts = a.parts[:0]
	for p := range a.open {
		if p.dirty.Load() {
			a.parts = append(a.parts, p)
		}
	}
	a.mu.Unlock()
	if len(a.parts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
	defer cancel()
	if a.cfg.Batch == nil || len(a.parts) == 1 {
		for _, p := range a.parts {
			p.dirty.Store(false)
			_ = p.commit(ctx, false, false)
		}
		clear(a.parts)
		return
	}
	// Batch: hold every partition's commit lock across the one call.
	locked := a.parts[:0]
	a.reqs = a.reqs[:0]
	for _, p := range a.parts {
		p.dirty.Store(false)
		p.mu.Lock()
		if p.closed || !p.prepare() {
			p.mu.Unlock()
			continue
		}
		locked = append(locked, p)
		a.reqs = append(a.reqs, Request{Target: p.target, Next: p.pos.Next, Metadata: p.meta})
	}
	if len(locked) == 0 {
		clear(a.parts)
		return
	}
	began := time.Now()
	errs := a.cfg.Batch(ctx, a.reqs)
	took := time.Since(began)
	infos := make([]Commit, len(locked))
	for i, p := range locked {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = errors.New("committer: batch commit returned too few results")
		}
		infos[i] = p.record(err, false, took)
		p.mu.Unlock()
	}
	for i, p := range locked {
		a.observe(p, infos[i])
	}
	clear(a.parts)
	clear(a.reqs)
}

func (a *Actor) observe(p *Partition, c Commit) {
	if a.cfg.OnCommit != nil {
		a.cfg.OnCommit(p, c)
	}
}

// Partition is one claim's handle on the committer. Poke, MarkDirty and
// Committed never block; Flush and Close commit synchronously. All are
// safe for concurrent use.
type Partition struct {
	a        *Actor
	target   Target
	log      *slog.Logger
	position func(dst []Range) Position // the owner's state, read under its lock

	dirty     atomic.Bool  // the position may have moved since the last commit
	committed atomic.Int64 // last position committed successfully (or the start)

	// mu is the partition's commit lock: held across each of its commits
	// (the owner's position function is called under it) so that commits
	// never overlap and never go backwards. No other lock is taken under
	// it but the owner's, inside position; OnCommit runs after it is
	// released. It is a one-slot channel, not a sync.Mutex, because it is
	// held across a commit's network round trip: waiting for it is then a
	// durable block (testing/synctest advances time past it).
	mu         commitLock
	pos        Position // the position being committed
	meta       string
	ranges     []Range
	lastNext   int64
	lastMeta   string
	lastPassed int64
	closed     bool
}

// Open starts committing a claim whose committed position is (start,
// metadata); start is -1 when the group has none. position returns the
// owner's current Position (see Offsets.Position), called under the
// owner's own lock. Commits happen only once the partition is marked
// dirty (MarkDirty or Poke).
func (a *Actor) Open(t Target, start int64, metadata string, position func(dst []Range) Position, log *slog.Logger) *Partition {
	if log == nil {
		log = a.log
	}
	p := &Partition{a: a, target: t, log: log, position: position, lastNext: start, lastMeta: metadata,
		mu: commitLock{ch: make(chan struct{}, 1)}}
	p.committed.Store(start)
	a.mu.Lock()
	a.open[p] = struct{}{}
	a.mu.Unlock()
	return p
}

// MarkDirty says the position may have moved: the next tick commits it.
func (p *Partition) MarkDirty() {
	if !p.dirty.Load() {
		p.dirty.Store(true)
	}
}

// Poke marks the partition dirty and asks the actor to commit now, not at
// the next tick.
func (p *Partition) Poke() {
	p.dirty.Store(true)
	select {
	case p.a.poke <- struct{}{}:
	default:
	}
}

// Committed is the last position committed successfully (or the start).
func (p *Partition) Committed() int64 { return p.committed.Load() }

// Target is where the partition commits.
func (p *Partition) Target() Target { return p.target }

// Flush commits the partition's position now and returns the commit's
// error (nil when there was nothing new to commit).
func (p *Partition) Flush(ctx context.Context) error { return p.commit(ctx, false, true) }

// Close commits the final position synchronously and ends the partition:
// no commit is made for it afterwards. Observers are told of the final
// commit even when there was nothing new to commit.
func (p *Partition) Close(ctx context.Context) error {
	err := p.commit(ctx, true, true)
	p.a.mu.Lock()
	delete(p.a.open, p)
	p.a.mu.Unlock()
	return err
}

// commit commits p's position if it moved; final closes p.
func (p *Partition) commit(ctx context.Context, final, sync bool) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		if sync {
			return ErrClosed
		}
		return nil
	}
	if final {
		p.closed = true
	}
	if !p.prepare() {
		p.mu.Unlock()
		if final {
			// Observers learn of every claim's end, even with nothing new
			// to commit.
			p.a.observe(p, Commit{From: p.lastNext, To: p.lastNext, Metadata: p.lastMeta, Final: true})
		}
		return nil
	}
	began := time.Now()
	err := p.target.Commit(ctx, p.pos.Next, p.meta)
	info := p.record(err, final, time.Since(began))
	p.mu.Unlock()
	p.a.observe(p, info)
	return err
}

// prepare reads the owner's position and reports whether it differs from
// the last one committed. p.mu must be held.
func (p *Partition) prepare() bool {
	p.pos = p.position(p.ranges[:0])
	p.ranges = p.pos.Ranges
	if p.pos.Next < 0 || p.pos.Next < p.lastNext {
		return false // nothing registered yet and no known start
	}
	p.meta, _ = EncodeMetadata(p.pos.Next, p.pos.Ranges, p.a.cfg.MaxMetadata)
	return p.pos.Next != p.lastNext || p.meta != p.lastMeta
}

// record notes a commit attempt's result and describes it. p.mu must be
// held. A failed interval commit leaves the partition dirty, so the next
// tick tries again.
func (p *Partition) record(err error, final bool, took time.Duration) Commit {
	c := Commit{From: p.lastNext, To: p.pos.Next, Records: p.pos.Passed - p.lastPassed, Metadata: p.meta,
		Final: final, Err: err, Took: took}
	if err != nil {
		if final {
			p.log.Warn("orderly: final commit failed", slog.Int64("next", p.pos.Next), slog.Any("error", err))
		} else {
			p.dirty.Store(true)
			p.log.Warn("orderly: commit failed; will retry", slog.Int64("next", p.pos.Next), slog.Any("error", err))
		}
		return c
	}
	p.lastNext, p.lastMeta, p.lastPassed = p.pos.Next, p.meta, p.pos.Passed
	p.committed.Store(p.pos.Next)
	return c
}
