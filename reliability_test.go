package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

// doneCounter is a HookRecordDone that counts outcomes.
type doneCounter struct {
	mu       sync.Mutex
	outcomes map[orderly.Outcome]int
}

func (d *doneCounter) OnRecordDone(_ *orderly.Record, _ orderly.RecordInfo, o orderly.Outcome, _ error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.outcomes == nil {
		d.outcomes = map[orderly.Outcome]int{}
	}
	d.outcomes[o]++
}

func (d *doneCounter) get(o orderly.Outcome) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.outcomes[o]
}

// panickyHooks panics in every hook it implements.
type panickyHooks struct{}

func (panickyHooks) OnRecordDispatched(*orderly.Record, orderly.RecordInfo) { panic("dispatched") }
func (panickyHooks) OnAttemptStarted(context.Context, *orderly.Record, orderly.RecordInfo) context.Context {
	panic("started")
}
func (panickyHooks) OnAttemptFinished(context.Context, *orderly.Record, orderly.RecordInfo, error) {
	panic("finished")
}
func (panickyHooks) OnRetryScheduled(context.Context, *orderly.Record, orderly.RecordInfo, error, time.Duration) {
	panic("retried")
}
func (panickyHooks) OnDeadLetterStart(context.Context, *orderly.Record, orderly.RecordInfo, error) context.Context {
	panic("dead-letter start")
}
func (panickyHooks) OnDeadLetterEnd(context.Context, *orderly.Record, error) {
	panic("dead-letter end")
}
func (panickyHooks) OnRecordDone(*orderly.Record, orderly.RecordInfo, orderly.Outcome, error) {
	panic("done")
}
func (panickyHooks) OnPartitionPaused(string, int32, []orderly.PauseReason) { panic("paused") }
func (panickyHooks) OnPartitionResumed(string, int32)                       { panic("resumed") }
func (panickyHooks) OnCommit(orderly.CommitInfo)                            { panic("commit") }

// Every piece of user code the engine calls is guarded: a panic takes the
// documented next step and every record still ends (the partition is
// committed to its end), with its credits returned.
func TestPanickingCallbacksNeverWedgeThePartition(t *testing.T) {
	failing := orderly.HandlerFunc(func(_ context.Context, r *orderly.Record) error {
		if strings.HasPrefix(string(r.Value), "bad") {
			return orderly.Permanent(errors.New("bad record"))
		}
		return nil
	})
	var sinkCalls atomic.Int32
	flakySink := orderly.DeadLetterFunc(func(context.Context, *orderly.Record, orderly.DeadLetter) error {
		if sinkCalls.Add(1)%2 == 1 {
			panic("sink down")
		}
		return nil
	})
	okSink := orderly.DeadLetterFunc(func(context.Context, *orderly.Record, orderly.DeadLetter) error { return nil })
	panicFallback := orderly.WithFallback(func(context.Context, *orderly.Record, error) error { panic("fallback") })
	retryFast := orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond, MaxAttempts: 2})

	cases := map[string]struct {
		opts []orderly.Option
		want orderly.Outcome // of the bad records
	}{
		"fallback panics, no sink":             {[]orderly.Option{panicFallback}, orderly.OutcomeFailed},
		"fallback panics, then sink":           {[]orderly.Option{panicFallback, orderly.WithDeadLetter(okSink)}, orderly.OutcomeDeadLettered},
		"sink panics, retried until it writes": {[]orderly.Option{orderly.WithDeadLetter(flakySink), retryFast}, orderly.OutcomeDeadLettered},
		"every hook panics": {[]orderly.Option{orderly.WithHooks(panickyHooks{}), orderly.WithDeadLetter(okSink), retryFast,
			orderly.WithPartitionBuffer(2, 0)}, orderly.OutcomeDeadLettered},
		"key function panics": {[]orderly.Option{orderly.WithOrdering(orderly.ByKeyFunc(func(r *orderly.Record) (string, bool) {
			if strings.HasPrefix(string(r.Value), "bad") {
				panic("key function")
			}
			return string(r.Key), true
		})), orderly.WithDeadLetter(okSink)}, orderly.OutcomeDeadLettered},
		"keys function panics": {[]orderly.Option{orderly.WithOrdering(orderly.ByKeys(func(r *orderly.Record) []string {
			if strings.HasPrefix(string(r.Value), "bad") {
				panic("keys function")
			}
			return []string{string(r.Key)}
		}))}, orderly.OutcomeFailed},
		"middleware panics at run time": {[]orderly.Option{orderly.WithMiddleware(func(next orderly.Handler) orderly.Handler {
			return orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				if strings.HasPrefix(string(r.Value), "bad") {
					panic("middleware")
				}
				return next.Handle(ctx, r)
			})
		}), orderly.WithDeadLetter(okSink)}, orderly.OutcomeDeadLettered},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			log := memory.NewLog()
			require.NoError(t, log.CreateTopic("t", 2))
			const perPartition = 20
			bad := 0
			for p := range int32(2) {
				for i := range perPartition {
					v := fmt.Sprint("ok-", i)
					if i%5 == 2 {
						v, bad = fmt.Sprint("bad-", i), bad+1
					}
					_, err := log.ProduceTo("t", p, []byte(fmt.Sprint("k", i%3)), []byte(v))
					require.NoError(t, err)
				}
			}
			counter := &doneCounter{}
			opts := append([]orderly.Option{orderly.WithLogger(quiet), orderly.WithHooks(counter),
				orderly.WithCommitInterval(5 * time.Millisecond)}, tc.opts...)
			eng, err := orderly.New(log.Member("g", []string{"t"}), failing, opts...)
			require.NoError(t, err)
			stop := running(t, eng)
			waitCommittedToEnd(t, log, 2)
			require.Eventually(t, func() bool { return counter.get(tc.want) == bad }, 10*time.Second, time.Millisecond,
				"every bad record ends as %v", tc.want)
			s := eng.Stats()
			require.Zero(t, s.HeldRecords, "credits came back")
			require.NoError(t, stop())
		})
	}
}

// A middleware whose constructor panics or returns nil fails New.
func TestBrokenMiddlewareFailsNew(t *testing.T) {
	src := memory.NewLog().Member("g", []string{"t"})
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil })
	_, err := orderly.New(src, h, orderly.WithMiddleware(func(orderly.Handler) orderly.Handler { panic("boom") }))
	require.ErrorIs(t, err, orderly.ErrInvalidOption)
	_, err = orderly.New(src, h, orderly.WithMiddleware(func(orderly.Handler) orderly.Handler { return nil }))
	require.ErrorIs(t, err, orderly.ErrInvalidOption)
}

// engineReader is a set of hooks that read the engine, as a dashboard does.
type engineReader struct {
	eng   atomic.Pointer[orderly.Engine]
	calls atomic.Int64
}

func (h *engineReader) read() {
	if eng := h.eng.Load(); eng != nil {
		_ = eng.Stats()
		eng.ReleaseKey("t", 0, "nobody")
		h.calls.Add(1)
	}
}
func (h *engineReader) OnPartitionPaused(string, int32, []orderly.PauseReason) { h.read() }
func (h *engineReader) OnPartitionResumed(string, int32)                       { h.read() }
func (h *engineReader) OnCommit(orderly.CommitInfo)                            { h.read() }
func (h *engineReader) OnRecordDone(*orderly.Record, orderly.RecordInfo, orderly.Outcome, error) {
	h.read()
}

// A hook may call any Engine method: no hook runs under an engine lock.
// Tiny buffers make the partitions pause and resume all the time.
func TestHooksMayCallTheEngine(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 3))
	for i := range 600 {
		_, err := log.ProduceTo("t", int32(i%3), []byte(fmt.Sprint("k", i%7)), []byte("v"))
		require.NoError(t, err)
	}
	hooks := &engineReader{}
	eng, err := orderly.New(log.Member("g", []string{"t"}, memory.WithFetchBuffer(4)),
		orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }),
		orderly.WithHooks(hooks), orderly.WithLogger(quiet),
		orderly.WithPartitionBuffer(3, 0), orderly.WithEngineBuffer(5, 0), orderly.WithMaxUncommitted(8),
		orderly.WithCommitInterval(time.Millisecond), orderly.WithCommitEvery(10))
	require.NoError(t, err)
	hooks.eng.Store(eng)
	stop := running(t, eng)
	waitCommittedToEnd(t, log, 3)
	require.NoError(t, stop())
	require.Positive(t, hooks.calls.Load())
}

// hangingCommits is a Source whose claims' commits, once armed, never
// return on their own: only their context ends them.
type hangingCommits struct {
	orderly.Source
	armed atomic.Bool
}

func (s *hangingCommits) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) { serve(hangingClaim{c, s}) })
}

type hangingClaim struct {
	orderly.Claim
	s *hangingCommits
}

func (c hangingClaim) Commit(ctx context.Context, next int64, metadata string) error {
	if c.s.armed.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return c.Claim.Commit(ctx, next, metadata)
}

// Every commit has a deadline: with a coordinator that never answers, Run
// still returns within the drain timeout plus the commit timeout (plus the
// cancel grace), and the interval commits never pile up.
func TestRunReturnsWhenCommitsHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", 2))
		produce(t, log, "t", 0, "a", "b", "c")
		produce(t, log, "t", 1, "a", "b", "c")
		src := &hangingCommits{Source: log.Member("g", []string{"t"})}
		var handled atomic.Int32
		eng, err := orderly.New(src, orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
			handled.Add(1)
			return nil
		}), orderly.WithLogger(quiet), orderly.WithCommitInterval(10*time.Millisecond),
			orderly.WithCommitTimeout(time.Second), orderly.WithDrainTimeout(2*time.Second))
		require.NoError(t, err)
		src.armed.Store(true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		synctest.Wait()
		require.Equal(t, int32(6), handled.Load())
		time.Sleep(5 * time.Second) // interval commits time out, one after another
		began := time.Now()
		cancel()
		require.NoError(t, <-done)
		// Fake time: exactly what the engine waited for. Nothing was
		// running, so no drain wait; each final commit waits its timeout.
		require.LessOrEqual(t, time.Since(began), time.Second+time.Second+2*time.Second,
			"commit timeout + one interval commit in flight + slack")
	})
}

// After the drain timeout, handlers that honour their cancelled context
// are waited for before Run returns; one that ignores it is left running
// after a bounded grace, and its record is not committed.
func TestRunWaitsBoundedForCancelledHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", 2))
		produce(t, log, "t", 0, "polite")
		produce(t, log, "t", 1, "rude")
		var politeReturned atomic.Bool
		rudeRelease := make(chan struct{})
		defer close(rudeRelease)
		started := make(chan struct{}, 2)
		eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			started <- struct{}{}
			if string(r.Key) == "polite" {
				<-ctx.Done()
				time.Sleep(100 * time.Millisecond) // cleans up after the cancel
				politeReturned.Store(true)
				return ctx.Err()
			}
			<-rudeRelease // ignores its context
			return nil
		}), orderly.WithLogger(quiet), orderly.WithDrainTimeout(time.Second))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		<-started
		<-started
		began := time.Now()
		cancel()
		require.NoError(t, <-done)
		require.True(t, politeReturned.Load(), "Run waited for the handler that honours its context")
		took := time.Since(began)
		require.GreaterOrEqual(t, took, time.Second, "the drain timeout is given in full")
		require.LessOrEqual(t, took, time.Second+2*time.Second, "the rude handler is waited for a bounded grace only")
		for p := range int32(2) {
			pos, _ := log.Committed("g", "t", p)
			require.Equal(t, int64(0), pos.Offset, "a cancelled record is not committed")
		}
	})
}

// A stuck record shows in Stats with where it is and how long it has run.
func TestStuckRecordsAreNamedInStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", 1))
		produce(t, log, "t", 0, "fine", "stuck")
		release := make(chan struct{})
		eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if string(r.Key) == "stuck" {
				<-release // ignores its deadline
			}
			return nil
		}), orderly.WithLogger(quiet), orderly.WithAttemptTimeout(time.Second))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		synctest.Wait()
		require.Empty(t, eng.Stats().StuckRecords, "not past twice its timeout yet")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		s := eng.Stats()
		require.Equal(t, int64(1), s.Stuck)
		require.Len(t, s.StuckRecords, 1)
		st := s.StuckRecords[0]
		require.Equal(t, "t", st.Topic)
		require.Equal(t, int32(0), st.Partition)
		require.Equal(t, int64(1), st.Offset)
		require.Equal(t, "stuck", string(st.Key))
		require.Equal(t, 1, st.Attempt)
		require.Equal(t, 3*time.Second, st.Running)
		close(release)
		synctest.Wait()
		require.Empty(t, eng.Stats().StuckRecords, "it returned")
		cancel()
		require.NoError(t, <-done)
	})
}
