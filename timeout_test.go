package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

// waitCommittedToEnd waits until group g's commits on topic t reach the
// end of every partition.
func waitCommittedToEnd(t *testing.T, log *memory.Log, partitions int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for p := range int32(partitions) {
			end, _ := log.EndOffset("t", p)
			if pos, _ := log.Committed("g", "t", p); pos.Offset != end {
				return false
			}
		}
		return true
	}, 20*time.Second, time.Millisecond)
}

// Every attempt, retries included, runs under its own deadline of the
// attempt timeout, not what is left of an earlier attempt's.
func TestAttemptTimeoutIsTheHandlerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout, records = 200 * time.Millisecond, 20
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", 1))
		for i := range records {
			_, err := log.ProduceTo("t", 0, fmt.Appendf(nil, "k%d", i%4), nil)
			require.NoError(t, err)
		}
		var mu sync.Mutex
		attempts := map[int64]int{}
		var remaining []time.Duration
		var missing int
		eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			now := time.Now()
			dl, ok := ctx.Deadline()
			mu.Lock()
			if !ok {
				missing++
			}
			remaining = append(remaining, dl.Sub(now))
			attempts[r.Offset]++
			first := attempts[r.Offset] == 1
			mu.Unlock()
			if first {
				time.Sleep(timeout / 4) // use part of the first deadline, then fail
				return errors.New("first attempt fails")
			}
			return nil
		}), orderly.WithAttemptTimeout(timeout),
			orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond, MaxAttempts: 2}),
			orderly.WithCommitInterval(5*time.Millisecond), orderly.WithLogger(quiet))
		require.NoError(t, err)
		stop := running(t, eng)
		waitCommittedToEnd(t, log, 1)
		require.NoError(t, stop())

		mu.Lock()
		defer mu.Unlock()
		require.Zero(t, missing, "every handler context has a deadline")
		require.Len(t, remaining, 2*records)
		for i, d := range remaining {
			// Set just before the call: at most the timeout, and not much less.
			require.True(t, d > 0 && d <= timeout, "call %d: deadline in %v", i, d)
			require.Greater(t, d, timeout*3/4, "call %d: deadline in %v, want ≈ %v", i, d, timeout)
		}
	})
}

// A handler that ignores its context is reported in Stats.Stuck once it
// runs past twice the attempt timeout (never before), other keys go on
// meanwhile, and Stuck goes back to 0 when it returns.
func TestHandlerPastTwiceItsTimeoutIsReportedStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout, others = 30 * time.Millisecond, 20
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", 1))
		produce(t, log, "t", 0, "stuck")
		for i := range others {
			produce(t, log, "t", 0, fmt.Sprint("k", i%5))
		}

		release := make(chan struct{})
		deadline := make(chan time.Time, 1)
		var stuckCtxErr atomic.Value
		var handledOthers atomic.Int64
		eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if string(r.Key) != "stuck" {
				handledOthers.Add(1)
				return nil
			}
			dl, _ := ctx.Deadline()
			deadline <- dl
			<-release // ignores ctx
			stuckCtxErr.Store(fmt.Sprint(ctx.Err()))
			return nil
		}), orderly.WithAttemptTimeout(timeout), orderly.WithCommitInterval(5*time.Millisecond), orderly.WithLogger(quiet))
		require.NoError(t, err)

		// Poll Stats for the first moment Stuck shows.
		firstStuck := make(chan time.Time, 1)
		stopPoll := make(chan struct{})
		pollDone := make(chan struct{})
		go func() {
			defer close(pollDone)
			for {
				if eng.Stats().Stuck > 0 {
					firstStuck <- time.Now()
					return
				}
				select {
				case <-stopPoll:
					return
				case <-time.After(100 * time.Microsecond):
				}
			}
		}()
		stop := running(t, eng)
		dl := <-deadline
		require.Eventually(t, func() bool { return handledOthers.Load() == others }, 10*time.Second, time.Millisecond,
			"a stuck handler holds up only its own key")

		var seen time.Time
		select {
		case seen = <-firstStuck:
		case <-time.After(10 * time.Second):
			t.Fatalf("Stats.Stuck never rose: %+v", eng.Stats())
		}
		close(stopPoll)
		<-pollDone
		// The stuck timer starts after the context's deadline is set, so it
		// fires no earlier than deadline + timeout (= start + 2×timeout).
		require.False(t, seen.Before(dl.Add(timeout)), "Stuck reported %v after the deadline, before another %v", seen.Sub(dl), timeout)
		require.Equal(t, int64(1), eng.Stats().Stuck)

		close(release)
		require.Eventually(t, func() bool { return eng.Stats().Stuck == 0 }, 10*time.Second, time.Millisecond)
		waitCommittedToEnd(t, log, 1)
		require.NoError(t, stop())
		require.Equal(t, context.DeadlineExceeded.Error(), stuckCtxErr.Load(), "its context was done long before it returned")
		require.Equal(t, uint64(others+1), eng.Stats().RecordsHandled)
	})
}
