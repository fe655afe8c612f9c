package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bridges/protoactorbridge"
)

// runAll produces the records once and runs every mode on them, round
// after round, each run through a consumer group of its own.
func runAll(o *options) ([]Result, error) {
	log, err := makeLog(o)
	if err != nil {
		return nil, err
	}
	var results []Result
	for round := 1; round <= o.rounds; round++ {
		for _, mode := range o.modes {
			r, err := runMode(o, log, mode, round)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, mode, err)
			}
			results = append(results, r)
		}
	}
	return results, nil
}

// makeLog produces o.records small records on one topic: keys "k<i mod
// keys>" round-robin, each key in one partition (FNV-1a of the key).
func makeLog(o *options) (*memory.Log, error) {
	log := memory.NewLog()
	if err := log.CreateTopic("t", o.partitions); err != nil {
		return nil, err
	}
	keys := make([][]byte, o.keys)
	for k := range keys {
		keys[k] = []byte("k" + strconv.Itoa(k))
	}
	value := []byte("v")
	ts := time.Now()
	for i := range o.records {
		if _, err := log.ProduceRecord(orderly.Record{Topic: "t", Partition: -1, Key: keys[i%o.keys], Value: value, Timestamp: ts}); err != nil {
			return nil, err
		}
	}
	return log, nil
}

// noopActor answers every request at once, or after the latency.
type noopActor struct{ latency time.Duration }

func (a noopActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*protoactorbridge.Request); ok {
		if a.latency > 0 {
			time.Sleep(a.latency)
		}
		ctx.Respond(protoactorbridge.Reply{})
	}
}

// runMode runs one engine over the log with mode's handler.
func runMode(o *options, log *memory.Log, mode string, round int) (Result, error) {
	var h orderly.Handler
	var b *protoactorbridge.Bridge
	var system *actor.ActorSystem
	switch mode {
	case "plain":
		h = orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
			if o.latency > 0 {
				time.Sleep(o.latency)
			}
			return nil
		})
	case "per-key", "target":
		system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quietLogger }))
		props := actor.PropsFromProducer(func() actor.Actor { return noopActor{o.latency} })
		opt := protoactorbridge.WithPerKey(props)
		if mode == "target" {
			opt = protoactorbridge.WithTarget(system.Root.Spawn(props))
		}
		var err error
		if b, err = protoactorbridge.New(system, opt); err != nil {
			return Result{}, err
		}
		h = b
	}

	tr := newTracker(o.records)
	var failed atomic.Int64
	timed := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		tr.begin()
		err := h.Handle(ctx, r)
		if err != nil {
			failed.Add(1)
		}
		tr.end()
		return err
	})
	runtime.GC()
	var ac allocCounter
	err := runEngine(log.Member(fmt.Sprintf("%s-%d", mode, round), []string{"t"}), timed, tr, o.timeout, ac.sample,
		orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(o.concurrency))
	if b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if cerr := b.Close(ctx); cerr != nil && err == nil {
			err = cerr
		}
		cancel()
	}
	if err != nil {
		return Result{}, err
	}
	if n := failed.Load(); n > 0 {
		return Result{}, fmt.Errorf("%d handler calls failed", n)
	}
	secs := tr.seconds()
	allocs, bytes := ac.perRecord(o.records)
	r := Result{
		Scenario: "protoactor", Mode: mode, Round: round, Keys: o.keys, Partitions: o.partitions,
		Records: o.records, Concurrency: o.concurrency, LatencySeconds: o.latency.Seconds(),
		Seconds: secs, RecordsPerSec: float64(o.records) / secs, NsPerRecord: secs * 1e9 / float64(o.records),
		AllocsPerRecord: allocs, BytesPerRecord: bytes,
	}
	if b != nil {
		r.Actors = int(b.Stats().Spawned)
		if mode == "target" {
			r.Actors = 1
		}
	}
	return r, nil
}

// tracker times one run: the start of the first handler call and the
// return of the last (as bench's overhead scenario does).
type tracker struct {
	t0    time.Time
	n     int64
	first atomic.Int64 // ns since t0 at the first handler start; 0 until then
	count atomic.Int64 // handler calls returned
	last  atomic.Int64 // ns since t0 when count reached n
	done  chan struct{}
}

func newTracker(n int) *tracker { return &tracker{n: int64(n), done: make(chan struct{})} }

func (t *tracker) begin() {
	if t.first.Load() == 0 {
		t.first.CompareAndSwap(0, max(int64(time.Since(t.t0)), 1))
	}
}

func (t *tracker) end() {
	if t.count.Add(1) == t.n {
		t.last.Store(int64(time.Since(t.t0)))
		close(t.done)
	}
}

func (t *tracker) seconds() float64 { return time.Duration(t.last.Load() - t.first.Load()).Seconds() }

// allocCounter takes runtime.MemStats before and after a run.
type allocCounter struct {
	n       int
	mallocs [2]uint64
	bytes   [2]uint64
}

func (a *allocCounter) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	a.mallocs[a.n], a.bytes[a.n] = ms.Mallocs, ms.TotalAlloc
	a.n++
}

func (a *allocCounter) perRecord(records int) (allocs, bytes float64) {
	return float64(a.mallocs[1]-a.mallocs[0]) / float64(records), float64(a.bytes[1]-a.bytes[0]) / float64(records)
}

var errStalled = errors.New("run stalled")

// runEngine runs an engine over src until the tracker has seen every
// record, then cancels Run's context and waits for Run to return (drain
// and final commit are not timed). around is called just before Run and
// right after the last record is done (for allocation counts).
func runEngine(src orderly.Source, h orderly.Handler, tr *tracker, timeout time.Duration, around func(), opts ...orderly.Option) error {
	opts = append([]orderly.Option{orderly.WithLogger(quietLogger)}, opts...)
	eng, err := orderly.New(src, h, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	around()
	tr.t0 = time.Now()
	go func() { ran <- eng.Run(ctx) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-tr.done:
	case err := <-ran:
		return fmt.Errorf("Run returned before every record was handled: %v", err)
	case <-timer.C:
		cancel()
		<-ran
		return fmt.Errorf("%w: %d of %d records handled after %v", errStalled, tr.count.Load(), tr.n, timeout)
	}
	around()
	cancel()
	return <-ran
}

// quietLogger keeps warnings and errors, not chatter.
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
