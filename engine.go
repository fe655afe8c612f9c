package orderly

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/backpressure"
	"github.com/orderly-go/orderly/committer"
	"golang.org/x/time/rate"
)

// Engine consumes a Source with per-key ordering, bounded concurrency,
// credit-based backpressure and watermark commits. Make one with New and
// call Run once.
type Engine struct {
	src     Source
	handler Handler // with middleware applied
	cfg     config
	log     *slog.Logger

	sched     *actors.Scheduler
	records   *backpressure.Pool // engine-wide record credits
	bytes     *backpressure.Pool // engine-wide byte credits
	committer *committer.Actor   // started and stopped by Run

	// slots are the workers' handler calls, by worker ID: each worker
	// stores the partition whose handler it is calling, and nil after,
	// on a cache line of its own. Stats and Inspect count them: no counter
	// is shared by the workers.
	slots []workerSlot

	ran    atomic.Bool
	nums   atomic.Int64    // numbers the partitions (partition.num)
	runCtx context.Context // Run's context; set before any claim is served
	seed   maphash.Seed    // hashes record keys for the key actors

	// parts is the claims being served, copied on write: readers (Stats,
	// ReleaseKey, the engine-wide pause reasons) load it with no lock, so
	// that nothing that reads it can wait on a lock a hook may hold.
	parts atomic.Pointer[[]*partition]
	// mu guards writes of parts and ended. No user code and no adapter
	// call runs under it, and no other lock is taken under it: a
	// partition's counters are atomics, read without a lock.
	mu    sync.Mutex
	ended counts // counters of the partitions that have ended

	group   string   // the consumer group, if the source names it
	timed   bool     // some hook needs dispatch and start times
	breaker *breaker // nil without WithCircuitBreaker
	chain   chain    // the failure chain: the user's policies in order

	prio *priorities // nil without WithPriorities

	failed  atomic.Uint64 // handler calls that returned an error or panicked
	retried atomic.Uint64 // failed attempts that were retried
	stuck   atomic.Int64  // handler calls running past twice their deadline

	stuckCalls stuckSet // those calls, for Stats and Inspect

	beforeJoin func() // tests only: runs between a partition's creation and its joining the list
}

// New returns an engine that consumes src with h. It checks every option
// and returns an error wrapping ErrInvalidOption for each bad one.
func New(src Source, h Handler, opts ...Option) (*Engine, error) {
	cfg := defaultConfig()
	if src == nil {
		cfg.fail(invalid("New: nil Source"))
	}
	if h == nil {
		cfg.fail(invalid("New: nil Handler"))
	}
	for _, o := range opts {
		if o == nil {
			cfg.fail(invalid("New: nil Option"))
			continue
		}
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	if cfg.parking && cfg.deadLetter == nil {
		return nil, invalid("WithKeyParking needs WithDeadLetter: parked records go to the dead-letter sink")
	}
	if cfg.priorities != nil {
		if err := cfg.priorities.check(&cfg); err != nil {
			return nil, err
		}
	}
	for i := len(cfg.middleware) - 1; i >= 0; i-- {
		var wrapped Handler
		if err := protect("middleware", func() error { wrapped = cfg.middleware[i](h); return nil }); err != nil {
			return nil, invalid("WithMiddleware: middleware %d panicked: %v", i, err)
		}
		if wrapped == nil {
			return nil, invalid("WithMiddleware: middleware %d returned a nil Handler", i)
		}
		h = wrapped
	}
	e := &Engine{src: src, handler: h, cfg: cfg, log: cfg.logger, seed: maphash.MakeSeed()}
	e.parts.Store(new([]*partition))
	if g, ok := src.(GroupNamer); ok {
		e.group = g.GroupName()
	}
	h0 := &cfg.hooks
	e.timed = len(h0.dispatched)+len(h0.started)+len(h0.finished)+len(h0.retried)+len(h0.dead)+len(h0.done) > 0
	if cfg.breaker != nil {
		e.breaker = newBreaker(e, *cfg.breaker)
	}
	e.chain = chain{e: e, breaker: e.breaker, timeout: cfg.attemptTimeout, retry: cfg.retry,
		fallback: cfg.fallback, sink: cfg.deadLetter}
	if cfg.rateLimit != nil {
		e.chain.limiter = rate.NewLimiter(cfg.rateLimit.limit, cfg.rateLimit.burst)
	}
	// Dead-letter writes are retried with the handler's backoff (or a default
	// one), without limit: a record is never dropped silently.
	e.chain.sinkRetry = RetryPolicy{InitialDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Multiplier: 2, Jitter: 0.2}
	if cfg.retry != nil {
		e.chain.sinkRetry = *cfg.retry
	}
	if cfg.parking {
		e.chain.parkFor = cfg.parkFor
	}
	e.sched = newScheduler(&cfg, e.escapedPanic)
	e.slots = make([]workerSlot, cfg.concurrency)
	e.records = backpressure.NewPool(int64(cfg.engine.records), lowMark(int64(cfg.engine.records), cfg.lowMark),
		func() { e.resumeAll(backpressure.ReasonEngineRecords) })
	e.bytes = backpressure.NewPool(cfg.engine.bytes, lowMark(cfg.engine.bytes, cfg.lowMark),
		func() { e.resumeAll(backpressure.ReasonEngineBytes) })
	if cfg.priorities != nil {
		e.prio = newPriorities(e, cfg.priorities)
	}
	return e, nil
}

// lowMark is the low water mark for a high mark: below it, and at least
// one below.
func lowMark(high int64, fraction float64) int64 {
	low := int64(math.Floor(float64(high) * fraction))
	return min(low, high-1)
}

// Run consumes until ctx is done or the source fails fatally. When ctx is
// done it stops fetching, lets running handlers finish (bounded by the
// drain timeout), commits every partition and returns nil. It returns
// ErrAlreadyRunning if called twice, and the source's error if the source
// failed.
//
// Run returns within the drain timeout, plus one second for handlers whose
// context it cancelled at the drain timeout to return, plus the commit
// timeout, whatever handlers and the broker do (and whatever time the
// source itself takes to leave its group). A handler that ignores its
// cancelled context may still be running when Run returns: its record is
// not committed, and its result is ignored.
func (e *Engine) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	e.runCtx = ctx
	cc := committer.Config{
		Interval: e.cfg.commitInterval,
		Timeout:  e.cfg.commitTimeout,
		Logger:   e.log,
		OnCommit: e.onCommit,
	}
	if bc, ok := e.src.(BatchCommitter); ok {
		cc.Batch = func(ctx context.Context, reqs []committer.Request) []error {
			commits := make([]ClaimCommit, len(reqs))
			for i, r := range reqs {
				commits[i] = ClaimCommit{Claim: r.Target.(Claim), Next: r.Next, Metadata: r.Metadata}
			}
			return bc.CommitBatch(ctx, commits)
		}
	}
	cc.Every = e.cfg.commitEvery
	e.committer = committer.NewActor(cc)
	// The committer's goroutines are owned by Run, which stops them (after
	// every claim is closed) and waits.
	e.committer.Start()
	err := e.src.Consume(ctx, e.serve)
	e.committer.Stop()
	// Every claim has ended: its handlers returned, or ignored their
	// cancelled context past the grace (then they are left running, and
	// Close gives up on their workers after one more grace).
	closeCtx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	if e.sched.Close(closeCtx) != nil {
		e.log.Warn("orderly: workers still in handlers that ignore their cancelled context; Run returns without them")
	}
	cancel()
	if e.breaker != nil {
		e.breaker.stop()
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// serve runs one claim from grant to final commit; the source calls it in a
// goroutine of its own.
func (e *Engine) serve(c Claim) {
	p := newPartition(e, c)
	if e.beforeJoin != nil {
		e.beforeJoin()
	}
	e.mu.Lock()
	parts := append(slices.Clone(*e.parts.Load()), p)
	e.parts.Store(&parts)
	e.mu.Unlock()
	defer func() {
		final := p.counts.load()
		e.mu.Lock()
		parts := slices.DeleteFunc(slices.Clone(*e.parts.Load()), func(q *partition) bool { return q == p })
		e.parts.Store(&parts)
		e.ended.add(final)
		e.mu.Unlock()
	}()
	p.run()
}

// partitions returns the claims being served now. It takes no lock.
func (e *Engine) partitions() []*partition { return *e.parts.Load() }

// resumeAll lifts an engine-level pause reason from every partition.
func (e *Engine) resumeAll(r backpressure.Reason) { e.setAll(r, false) }

// setAll sets or lifts a pause reason on every partition. It takes no lock
// and calls nothing but the valves, so it may run under any lock.
func (e *Engine) setAll(r backpressure.Reason, on bool) {
	for _, p := range e.partitions() {
		p.valve.Set(r, on)
	}
}

// onCommit reports a commit to the hooks; it runs on the committer's
// commit goroutine that made the commit.
func (e *Engine) onCommit(target committer.Target, c committer.Commit) {
	if len(e.cfg.hooks.commit) == 0 {
		return
	}
	t, ok := target.(Claim)
	if !ok {
		return
	}
	info := CommitInfo{Topic: t.Topic(), Partition: t.Partition(), Group: e.group,
		From: c.From, To: c.To, Records: c.Records, Final: c.Final, Err: c.Err, Took: c.Took}
	for _, h := range e.cfg.hooks.commit {
		e.guard("HookCommit", func() { h.OnCommit(info) })
	}
}

// ReleaseKey releases a key parked on a partition (see WithKeyParking): its
// next records are handled again. It reports whether the key was parked on
// a partition this engine holds. Safe to call from any goroutine, hooks
// included.
func (e *Engine) ReleaseKey(topic string, partition int32, key string) bool {
	for _, p := range e.partitions() {
		if p.topic == topic && p.id == partition {
			return p.release(key)
		}
	}
	return false
}

// workerSlot is one worker's handler call, for Stats: the number of the
// partition it is calling the handler for (partition.num), or 0. Written
// by its worker only; padded to a cache line of its own.
type workerSlot struct {
	running atomic.Int64
	_       [56]byte
}

// running is the number of handler calls running for p now (all
// partitions' when p is nil).
func (e *Engine) running(p *partition) int64 {
	var n int64
	for i := range e.slots {
		if q := e.slots[i].running.Load(); q != 0 && (p == nil || q == p.num) {
			n++
		}
	}
	return n
}

// call runs the handler, turning a panic into a *PanicError.
func (e *Engine) call(ctx context.Context, r *Record) error {
	return protect("handler", func() error { return e.handler.Handle(ctx, r) })
}

// fallbackCall runs the fallback, turning a panic into a *PanicError: the
// record then goes on to the dead-letter sink (or the log), as when the
// fallback declines it.
func (e *Engine) fallbackCall(ctx context.Context, r *Record, cause error) error {
	err := protect("fallback", func() error { return e.cfg.fallback(ctx, r, cause) })
	var pe *PanicError
	if errors.As(err, &pe) {
		e.log.LogAttrs(ctx, slog.LevelError, "orderly: fallback panicked; the record goes on to the dead-letter sink",
			recordAttrs(r, slog.Any("panic", pe.Value))...)
	}
	return err
}

// deadLetterCall calls the sink, turning a panic into an error so that the
// write is retried rather than lost.
func (e *Engine) deadLetterCall(ctx context.Context, r *Record, dl DeadLetter) error {
	return protect("dead-letter sink", func() error { return e.cfg.deadLetter.DeadLetter(ctx, r, dl) })
}

// guard runs a piece of user code that has no error to return (a hook, a
// sink's namer): a panic is logged and swallowed, so that it never wedges
// a record or the engine.
func (e *Engine) guard(what string, f func()) {
	if err := protect(what, func() error { f(); return nil }); err != nil {
		var pe *PanicError
		errors.As(err, &pe)
		e.log.Error("orderly: "+what+" panicked; ignored", slog.Any("panic", pe.Value), slog.String("stack", string(pe.Stack)))
	}
}

// wantsStartTime reports whether an attempt hook that hears of t needs
// RecordInfo.Started for its attempt (see HookStartTime).
func (e *Engine) wantsStartTime(t *task) bool {
	h := &e.cfg.hooks
	if h.startAlways || h.startBits&^t.quiet != 0 {
		return true
	}
	for _, x := range h.startTime {
		if t.quiet&x.bit != 0 {
			continue
		}
		want := true // what a panic leaves
		e.guard("HookStartTime", func() { want = x.h.WantsStartTime(t.rec) })
		if want {
			return true
		}
	}
	return false
}

// observe asks the hooks that filter records (HookRecordFilter) which of
// b they want, and returns each record's quiet mask: the bits of the
// hooks that left it out. It returns nil when no hook filters. Dispatcher
// only (the masks and keep slices are the dispatcher's scratch).
func (p *partition) observe(b []*Record) []uint64 {
	e := p.e
	if len(e.cfg.hooks.filters) == 0 {
		return nil
	}
	d := &p.d
	d.quiet = append(d.quiet[:0], make([]uint64, len(b))...)
	for _, f := range e.cfg.hooks.filters {
		keep := append(d.keep[:0], make([]bool, len(b))...)
		d.keep = keep
		all := true
		e.guard("HookRecordFilter", func() { f.h.ObserveRecords(p.handlerCtx, b, keep); all = false })
		if all {
			continue // it panicked: it keeps every record
		}
		for i, k := range keep {
			if !k {
				d.quiet[i] |= f.bit
			}
		}
	}
	return d.quiet
}

// escapedPanic is the scheduler's last line: a panic that escaped the
// engine's own guards. The record still counts as received.
func (e *Engine) escapedPanic(v any) {
	e.log.Error("orderly: panic outside the handler recovered", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
}
