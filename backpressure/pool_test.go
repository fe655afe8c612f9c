package backpressure

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waiting returns the number of blocked Acquire calls.
func (c *Pool) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiters.Len()
}

// waitForWaiters blocks until exactly n Acquire calls are queued.
func waitForWaiters(t *testing.T, c *Pool, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return c.waiting() == n },
		10*time.Second, time.Millisecond, "want %d queued waiters", n)
}

// acquireAsync starts Acquire on its own goroutine; the returned channel
// receives its result. The goroutine exits once Acquire returns.
func acquireAsync(ctx context.Context, c *Pool, n int64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Acquire(ctx, n) }()
	return done
}

func requireBlocked(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Acquire returned %v while it should still be blocked", err)
	default:
	}
}

func requireReturns(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return")
		return nil
	}
}

func TestNewPoolPanicsOnImpossibleMarks(t *testing.T) {
	assert.PanicsWithValue(t, "backpressure: NewPool high mark 0 is less than 1", func() { NewPool(0, 0, nil) })
	assert.PanicsWithValue(t, "backpressure: NewPool low mark -1 is negative", func() { NewPool(5, -1, nil) })
	assert.PanicsWithValue(t, "backpressure: NewPool low mark 5 is not below high mark 5", func() { NewPool(5, 5, nil) })
	c := NewPool(5, 4, nil)
	assert.Equal(t, int64(5), c.High())
	assert.Equal(t, int64(4), c.Low())
}

func TestCreditsTryAcquireUpToHigh(t *testing.T) {
	c := NewPool(10, 2, nil)
	for range 10 {
		require.True(t, c.TryAcquire(1))
	}
	assert.Equal(t, int64(10), c.Held())
	assert.False(t, c.Tripped())
	assert.False(t, c.TryAcquire(1), "held == high")
	assert.True(t, c.Tripped())
	assert.Equal(t, int64(10), c.Held(), "a failed TryAcquire takes nothing")
	assert.True(t, c.TryAcquire(0), "zero is a no-op success")

	c.Release(4)
	assert.False(t, c.TryAcquire(5), "6+5 > high")
	assert.True(t, c.TryAcquire(4))
	assert.Equal(t, int64(10), c.Held())
}

func TestCreditsOversizedPassesOnlyAlone(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.True(t, c.TryAcquire(1))
	assert.False(t, c.TryAcquire(11), "oversized must wait while anything is held")
	c.Release(1)
	require.True(t, c.TryAcquire(11), "oversized passes when nothing is held")
	assert.Equal(t, int64(11), c.Held())
	assert.False(t, c.TryAcquire(1), "nothing else passes beside an oversized acquisition")

	// Acquire follows the same rule: the oversized waiter is let through
	// only once everything else is released.
	c.Release(11)
	require.True(t, c.TryAcquire(3))
	done := acquireAsync(context.Background(), c, 25)
	waitForWaiters(t, c, 1)
	requireBlocked(t, done)
	c.Release(3)
	require.NoError(t, requireReturns(t, done))
	assert.Equal(t, int64(25), c.Held())
}

func TestCreditsAcquireBlocksUntilRelease(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.True(t, c.TryAcquire(10))
	done := acquireAsync(context.Background(), c, 3)
	waitForWaiters(t, c, 1)
	requireBlocked(t, done)
	assert.True(t, c.Tripped(), "an Acquire that waits trips the credits")

	c.Release(2)
	waitForWaiters(t, c, 1)
	requireBlocked(t, done) // 8+3 > 10
	c.Release(1)
	require.NoError(t, requireReturns(t, done))
	assert.Equal(t, int64(10), c.Held())
	assert.Equal(t, 0, c.waiting())
}

func TestCreditsAcquireFastPathDoesNotTrip(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.NoError(t, c.Acquire(context.Background(), 10))
	assert.False(t, c.Tripped())
	require.NoError(t, c.Acquire(context.Background(), 0))
}

func TestCreditsAcquireCancelledTakesNothing(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.True(t, c.TryAcquire(10))
	ctx, cancel := context.WithCancel(context.Background())
	done := acquireAsync(ctx, c, 5)
	waitForWaiters(t, c, 1)
	cancel()
	require.ErrorIs(t, requireReturns(t, done), context.Canceled)
	assert.Equal(t, 0, c.waiting())
	assert.Equal(t, int64(10), c.Held())

	// Already-done context: nothing acquired even though it would fit.
	c.Release(10)
	require.ErrorIs(t, c.Acquire(ctx, 1), context.Canceled)
	assert.Equal(t, int64(0), c.Held())
}

// A cancelled waiter at the head of the queue was blocking smaller waiters
// behind it that already fit. Removing it must let them proceed without
// waiting for the next Release (the subtle case in x/sync/semaphore).
func TestCreditsCancelledHeadUnblocksNextWaiters(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.True(t, c.TryAcquire(5))

	ctx, cancel := context.WithCancel(context.Background())
	big := acquireAsync(ctx, c, 10) // 5+10 > 10: waits
	waitForWaiters(t, c, 1)
	small1 := acquireAsync(context.Background(), c, 2) // fits, but queues behind big
	waitForWaiters(t, c, 2)
	small2 := acquireAsync(context.Background(), c, 3)
	waitForWaiters(t, c, 3)
	requireBlocked(t, small1)
	requireBlocked(t, small2)

	cancel()
	require.ErrorIs(t, requireReturns(t, big), context.Canceled)
	require.NoError(t, requireReturns(t, small1))
	require.NoError(t, requireReturns(t, small2))
	assert.Equal(t, int64(10), c.Held(), "5 + 2 + 3, nothing for the cancelled waiter")
	assert.Equal(t, 0, c.waiting())
}

func TestCreditsCancelledMiddleWaiterKeepsOrder(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.True(t, c.TryAcquire(10))
	first := acquireAsync(context.Background(), c, 4)
	waitForWaiters(t, c, 1)
	ctx, cancel := context.WithCancel(context.Background())
	middle := acquireAsync(ctx, c, 4)
	waitForWaiters(t, c, 2)
	last := acquireAsync(context.Background(), c, 4)
	waitForWaiters(t, c, 3)

	cancel()
	require.ErrorIs(t, requireReturns(t, middle), context.Canceled)
	waitForWaiters(t, c, 2)
	requireBlocked(t, first)
	requireBlocked(t, last)

	c.Release(10)
	require.NoError(t, requireReturns(t, first))
	require.NoError(t, requireReturns(t, last))
	assert.Equal(t, int64(8), c.Held())
}

func TestCreditsFIFOHeadNotOvertaken(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.True(t, c.TryAcquire(5))
	big := acquireAsync(context.Background(), c, 10)
	waitForWaiters(t, c, 1)

	assert.False(t, c.TryAcquire(1), "1 fits, but the big waiter is first")
	small := acquireAsync(context.Background(), c, 1)
	waitForWaiters(t, c, 2)
	requireBlocked(t, small)

	c.Release(5)
	require.NoError(t, requireReturns(t, big))
	requireBlocked(t, small)
	assert.Equal(t, int64(10), c.Held())

	c.Release(10)
	require.NoError(t, requireReturns(t, small))
	assert.Equal(t, int64(1), c.Held())
}

func TestCreditsOnLowOncePerTrip(t *testing.T) {
	var lows atomic.Int64
	c := NewPool(10, 3, func() { lows.Add(1) })

	// Never tripped: falling below low does not call onLow.
	require.True(t, c.TryAcquire(8))
	c.Release(8)
	assert.Zero(t, lows.Load())

	// Trip twice within one exhaustion: still one call.
	require.True(t, c.TryAcquire(10))
	require.False(t, c.TryAcquire(1))
	require.False(t, c.TryAcquire(2))
	c.Release(6) // held 4 > low
	assert.Zero(t, lows.Load())
	assert.True(t, c.Tripped())
	c.Release(1) // held 3 == low
	assert.Equal(t, int64(1), lows.Load())
	assert.False(t, c.Tripped())
	c.Release(3)
	assert.Equal(t, int64(1), lows.Load(), "no new trip, no new call")

	// A second trip, this time by a waiting Acquire.
	require.True(t, c.TryAcquire(9))
	done := acquireAsync(context.Background(), c, 5)
	waitForWaiters(t, c, 1)
	c.Release(9) // waiter takes 5: held 5 > low
	require.NoError(t, requireReturns(t, done))
	assert.Equal(t, int64(1), lows.Load(), "held is judged after waking waiters")
	c.Release(5)
	assert.Equal(t, int64(2), lows.Load())
}

func TestCreditsOnLowCalledWithoutLock(t *testing.T) {
	var c *Pool
	var heldInOnLow int64
	c = NewPool(4, 1, func() { heldInOnLow = c.Held() }) // would deadlock under the lock
	require.True(t, c.TryAcquire(4))
	require.False(t, c.TryAcquire(1))
	c.Release(4)
	assert.Equal(t, int64(0), heldInOnLow)
}

func TestCreditsProgrammerErrorsPanic(t *testing.T) {
	c := NewPool(10, 2, nil)
	require.True(t, c.TryAcquire(3))
	assert.PanicsWithValue(t, "backpressure: released more credits than held", func() { c.Release(4) })
	assert.Equal(t, int64(3), c.Held(), "a panicking Release changes nothing")
	assert.Panics(t, func() { c.Release(-1) })
	assert.Panics(t, func() { c.TryAcquire(-1) })
	assert.Panics(t, func() { _ = c.Acquire(context.Background(), -1) })
	c.Release(0)
	c.Release(3)
	assert.Equal(t, int64(0), c.Held())
	// The lock was released by the panicking call.
	assert.True(t, c.TryAcquire(1))
}
