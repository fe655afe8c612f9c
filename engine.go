package orderly

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/backpressure"
	"github.com/orderly-go/orderly/committer"
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

	inFlight atomic.Int64  // handler calls running
	handled  atomic.Uint64 // handler calls that returned nil
	failed   atomic.Uint64 // handler calls that returned an error or panicked
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
	if cfg.onFailure == nil {
		cfg.onFailure = LogFailures(cfg.logger)
	}
	for i := len(cfg.middleware) - 1; i >= 0; i-- {
		h = cfg.middleware[i](h)
	}
	e := &Engine{
		src: src, handler: h, cfg: cfg, log: cfg.logger,
		parts: make(map[*partition]struct{}),
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
func (e *Engine) resumeAll(r backpressure.Reason) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range e.parts {
		p.valve.Set(r, false)
	}
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
