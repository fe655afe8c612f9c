package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
)

// tracker times one run: the start of the first handler call and the
// return of the last. Times are monotonic durations since t0, taken just
// before Engine.Run is called.
type tracker struct {
	t0    time.Time
	n     int64
	first atomic.Int64 // ns since t0 at the first handler start; 0 until then
	count atomic.Int64 // handler calls returned
	last  atomic.Int64 // ns since t0 when count reached n
	done  chan struct{}
}

func newTracker(n int) *tracker {
	return &tracker{n: int64(n), done: make(chan struct{})}
}

// begin marks a handler call's start. Only the first call reads the clock
// and writes: the common path is one atomic load.
func (t *tracker) begin() {
	if t.first.Load() == 0 {
		t.first.CompareAndSwap(0, max(int64(time.Since(t.t0)), 1))
	}
}

// end marks a handler call's return.
func (t *tracker) end() {
	if t.count.Add(1) == t.n {
		t.last.Store(int64(time.Since(t.t0)))
		close(t.done)
	}
}

// seconds is the first start to the last return.
func (t *tracker) seconds() float64 {
	return time.Duration(t.last.Load() - t.first.Load()).Seconds()
}

// startup is Engine.Run called to the first handler start.
func (t *tracker) startup() float64 { return time.Duration(t.first.Load()).Seconds() }

var errStalled = errors.New("run stalled")

// runEngine runs an engine over src until the tracker has seen every
// record, then cancels Run's context and waits for Run to return (drain
// and final commit are not timed). around, if not nil, is called just
// before Run starts and right after the last record is done, before the
// shutdown (for allocation counts).
func runEngine(src orderly.Source, h orderly.Handler, tr *tracker, timeout time.Duration, around func(), opts ...orderly.Option) error {
	return runEngineWith(src, h, tr, timeout, around, nil, nil, opts...)
}

// engineWatch samples an engine's Stats while it runs (every
// watchInterval) and keeps the peaks, and its Stats once Run returned.
type engineWatch struct {
	peakRecords, peakBytes int64
	final                  orderly.Stats
}

const watchInterval = 200 * time.Microsecond

// runEngineWatched is runEngine that fills w, if not nil.
func runEngineWatched(src orderly.Source, h orderly.Handler, tr *tracker, timeout time.Duration, around func(), w *engineWatch, opts ...orderly.Option) error {
	return runEngineWith(src, h, tr, timeout, around, nil, w, opts...)
}

// runEngineWith is runEngine with started, if not nil, called with the
// engine before Run starts (the function it returns is called once Run
// has returned), and w, if not nil, filled as runEngineWatched says.
func runEngineWith(src orderly.Source, h orderly.Handler, tr *tracker, timeout time.Duration, around func(),
	started func(*orderly.Engine) (func(), error), w *engineWatch, opts ...orderly.Option) error {
	opts = append([]orderly.Option{orderly.WithLogger(quietLogger)}, opts...)
	eng, err := orderly.New(src, h, opts...)
	if err != nil {
		return err
	}
	if started != nil {
		done, err := started(eng)
		if err != nil {
			return err
		}
		defer done()
	}
	if w != nil {
		stop, sampled := make(chan struct{}), make(chan struct{})
		// Owned by this call: stopped and waited for before it returns.
		go func() {
			defer close(sampled)
			t := time.NewTicker(watchInterval)
			defer t.Stop()
			for {
				s := eng.Stats()
				w.peakRecords, w.peakBytes = max(w.peakRecords, s.HeldRecords), max(w.peakBytes, s.HeldBytes)
				select {
				case <-t.C:
				case <-stop:
					return
				}
			}
		}()
		defer func() {
			close(stop)
			<-sampled
			w.final = eng.Stats()
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	if around != nil {
		around()
	}
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
	if around != nil {
		around()
	}
	cancel()
	return <-ran
}

// quietLogger keeps the engine's warnings and errors, not its chatter.
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// index values: a record's Value is its index in the workload, 4 bytes.
func indexValue(i int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(i)) }

func valueIndex(r *orderly.Record) int { return int(binary.LittleEndian.Uint32(r.Value)) }
