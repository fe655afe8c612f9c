package orderly

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/actors"
	"github.com/orderly-go/orderly/internal/backpressure"
	"github.com/orderly-go/orderly/internal/committer"
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
	records   *backpressure.Credits // engine-wide record credits
	bytes     *backpressure.Credits // engine-wide byte credits
	committer *committer.Actor

	ran    atomic.Bool
	runCtx context.Context // Run's context; set before any claim is served

	mu    sync.Mutex // guards parts
	parts map[*partition]struct{}

	group     string        // the consumer group, if the source names it
	timed     bool          // some hook needs dispatch and start times
	breaker   *breaker      // nil without WithCircuitBreaker
	limiter   *rate.Limiter // engine-wide rate limit; nil if none
	dlBackoff RetryPolicy   // for failed dead-letter writes

	inFlight     atomic.Int64  // handler calls running
	handled      atomic.Uint64 // handler calls that returned nil
	failed       atomic.Uint64 // handler calls that returned an error or panicked
	retried      atomic.Uint64 // failed attempts that were retried
	recovered    atomic.Uint64 // records the recovery function declared done
	deadLettered atomic.Uint64 // records written to the dead-letter sink
	stuck        atomic.Int64  // handler calls running past twice their deadline
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
	if !cfg.keySet {
		cfg.key = cfg.partition
	}
	if cfg.parking && cfg.deadLetter == nil {
		return nil, invalid("WithKeyParking needs WithDeadLetter: parked records go to the dead-letter sink")
	}
	for i := len(cfg.middleware) - 1; i >= 0; i-- {
		h = cfg.middleware[i](h)
	}
	e := &Engine{
		src: src, handler: h, cfg: cfg, log: cfg.logger,
		parts: make(map[*partition]struct{}),
	}
	if g, ok := src.(GroupNamer); ok {
		e.group = g.GroupName()
	}
	h0 := &cfg.hooks
	e.timed = len(h0.dispatched)+len(h0.started)+len(h0.finished)+len(h0.retried)+len(h0.dead)+len(h0.done) > 0
	if cfg.breaker != nil {
		e.breaker = newBreaker(e, *cfg.breaker)
	}
	if cfg.rateLimit != nil {
		e.limiter = rate.NewLimiter(cfg.rateLimit.limit, cfg.rateLimit.burst)
	}
	// Dead-letter writes are retried with the handler's backoff (or a default
	// one), without limit: a record is never dropped silently.
	e.dlBackoff = RetryPolicy{InitialDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Multiplier: 2, Jitter: 0.2}
	if cfg.retry != nil {
		e.dlBackoff = *cfg.retry
	}
	e.sched = actors.NewScheduler(cfg.concurrency, e.escapedPanic)
	e.records = backpressure.NewCredits(int64(cfg.engine.records), lowMark(int64(cfg.engine.records), cfg.lowMark),
		func() { e.resumeAll(backpressure.ReasonEngineRecords) })
	e.bytes = backpressure.NewCredits(cfg.engine.bytes, lowMark(cfg.engine.bytes, cfg.lowMark),
		func() { e.resumeAll(backpressure.ReasonEngineBytes) })
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
func (e *Engine) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	e.runCtx = ctx
	e.committer = committer.NewActor(committer.Config{
		Interval: e.cfg.commitInterval,
		Every:    e.cfg.commitEvery,
		Mailbox:  2*e.cfg.engine.records + 1024,
		Logger:   e.log,
		OnCommit: e.onCommit,
	})
	// Owned by Run, which stops it (after every claim is closed) and waits.
	go e.committer.Run()
	err := e.src.Consume(ctx, e.serve)
	e.committer.Stop()
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// serve runs one claim from grant to final commit; the source calls it in a
// goroutine of its own.
func (e *Engine) serve(c Claim) {
	p := newPartition(e, c)
	e.mu.Lock()
	e.parts[p] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.parts, p)
		e.mu.Unlock()
	}()
	p.run()
}

// resumeAll lifts an engine-level pause reason from every partition.
func (e *Engine) resumeAll(r backpressure.Reason) { e.setAll(r, false) }

// setAll sets or lifts a pause reason on every partition.
func (e *Engine) setAll(r backpressure.Reason, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range e.parts {
		p.valve.Set(r, on)
	}
}

// onCommit reports a commit to the hooks; it runs on the committer.
func (e *Engine) onCommit(cp *committer.Partition, c committer.Commit) {
	if len(e.cfg.hooks.commit) == 0 {
		return
	}
	t, ok := cp.Target().(Claim)
	if !ok {
		return
	}
	info := CommitInfo{Topic: t.Topic(), Partition: t.Partition(), Group: e.group,
		From: c.From, To: c.To, Records: c.Records, Final: c.Final, Err: c.Err, Took: c.Took}
	for _, h := range e.cfg.hooks.commit {
		h.OnCommit(info)
	}
}

// ReleaseKey releases a key parked on a partition (see WithKeyParking): its
// next records are handled again. It reports whether the key was parked on
// a partition this engine holds. Safe to call from any goroutine.
func (e *Engine) ReleaseKey(topic string, partition int32, key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range e.parts {
		if p.topic == topic && p.id == partition {
			return p.release(key)
		}
	}
	return false
}

// call runs the handler, turning a panic into a *PanicError.
func (e *Engine) call(ctx context.Context, r *Record) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return e.handler.Handle(ctx, r)
}

// escapedPanic is the scheduler's last line: a panic outside the handler
// (in a failure handler, say). The record still counts as received.
func (e *Engine) escapedPanic(v any) {
	e.log.Error("orderly: panic outside the handler recovered", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
}
