package backpressure

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Credits is a counting semaphore with a high and a low water mark. Its API
// follows golang.org/x/sync/semaphore.Weighted; the differences are the
// oversized-acquisition rule and the low-water callback.
//
// # Fit rule
//
// An acquisition of n credits fits when Held()+n <= High(), or when nothing is
// held at all. The second clause lets a single acquisition larger than High()
// through on its own: an oversized record would otherwise wait forever. While
// it is held, Held() exceeds High() and every other acquisition waits or fails
// until it is released.
//
// # Fairness
//
// Blocked [Credits.Acquire] callers are served in FIFO order. A waiter at the
// head is never overtaken: while anyone waits, [Credits.TryAcquire] fails and
// later Acquire calls queue behind, even if their smaller amount would fit.
//
// # Hysteresis
//
// The credits are "tripped" when a TryAcquire fails or an Acquire has to wait.
// The [Credits.Release] that then brings Held() to Low() or below clears the
// trip and calls onLow, once per trip. A typical owner pauses its source when
// TryAcquire fails and resumes it from onLow, so it does not flap around the
// high mark.
//
// All methods are safe for concurrent use.
type Credits struct {
	high, low int64  // immutable after NewCredits
	onLow     func() // immutable; may be nil; called without mu held

	// held, tripped and nwait are atomics so that the common cases,
	// TryAcquire that fits and Release with nobody waiting and nothing
	// tripped, take no lock: they run once or twice per record on the
	// engine's hot path. Every change of held is an atomic add or
	// compare-and-swap, also under mu, so the fit rule holds however the
	// fast and slow paths interleave.
	held    atomic.Int64
	tripped atomic.Bool
	nwait   atomic.Int32 // waiters.Len(), readable without mu

	// mu guards waiters and serializes the slow paths (queueing, granting,
	// clearing a trip). It is never held while calling onLow or while
	// blocked in Acquire. No other lock is taken under it.
	mu      sync.Mutex
	waiters list.List // of creditWaiter, FIFO; head is served first
}

// creditWaiter is one blocked Acquire. ready is closed, under mu, by whoever
// grants the credits (held already includes n by then).
type creditWaiter struct {
	n     int64
	ready chan struct{}
}

// NewCredits returns credits with the given water marks. onLow may be nil;
// otherwise it is called, outside any lock, by the Release that brings Held()
// to Low() or below after the credits were exhausted (once per trip). onLow
// must not block for long: it runs on the releasing goroutine.
//
// NewCredits panics if high < 1, low < 0 or low >= high: such values are
// programmer errors, since user configuration is validated elsewhere.
func NewCredits(high, low int64, onLow func()) *Credits {
	switch {
	case high < 1:
		panic(fmt.Sprintf("backpressure: NewCredits high mark %d is less than 1", high))
	case low < 0:
		panic(fmt.Sprintf("backpressure: NewCredits low mark %d is negative", low))
	case low >= high:
		panic(fmt.Sprintf("backpressure: NewCredits low mark %d is not below high mark %d", low, high))
	}
	return &Credits{high: high, low: low, onLow: onLow}
}

// High returns the high water mark.
func (c *Credits) High() int64 { return c.high }

// Low returns the low water mark.
func (c *Credits) Low() int64 { return c.low }

// Held returns the number of credits currently held. It never blocks.
func (c *Credits) Held() int64 { return c.held.Load() }

// Tripped reports whether the credits have been exhausted (a TryAcquire failed
// or an Acquire had to wait) since Held() last fell to Low() or below.
func (c *Credits) Tripped() bool { return c.tripped.Load() }

// take adds n to held if it fits now (the fit rule, ignoring waiters).
func (c *Credits) take(n int64) bool { return c.takeIf(n, true) }

// takeIf adds n to held if held+n ≤ high, or, when oversize is allowed, if
// nothing is held.
func (c *Credits) takeIf(n int64, oversize bool) bool {
	for {
		h := c.held.Load()
		if h+n > c.high && (h != 0 || !oversize) {
			return false
		}
		if c.held.CompareAndSwap(h, h+n) {
			return true
		}
	}
}

// TryAcquire takes n credits if they fit now and nobody is waiting in
// [Credits.Acquire]; it never blocks. A single acquisition larger than High()
// succeeds when nothing is held. On failure it takes nothing and marks the
// credits tripped. n == 0 always succeeds; a negative n panics.
func (c *Credits) TryAcquire(n int64) bool {
	checkAmount("TryAcquire", n)
	if n == 0 {
		return true
	}
	if c.nwait.Load() == 0 && c.take(n) {
		return true
	}
	// A Release racing with this store may judge the trip before it is
	// visible; the trip is then cleared by the next Release, which always
	// comes while anything is held.
	c.tripped.Store(true)
	return false
}

// TryAcquireWithin is TryAcquire without the oversized-acquisition clause:
// it takes n credits only if Held()+n ≤ High() and nobody is waiting. It is
// for taking several items' credits at once (a batch), which must not pass
// the high mark together the way one oversized item may. On failure it
// takes nothing and marks the credits tripped, as TryAcquire does.
func (c *Credits) TryAcquireWithin(n int64) bool {
	checkAmount("TryAcquireWithin", n)
	if n == 0 {
		return true
	}
	if c.nwait.Load() == 0 && c.takeIf(n, false) {
		return true
	}
	c.tripped.Store(true)
	return false
}

// Acquire takes n credits, blocking until they fit (see the fit rule on
// [Credits]) in FIFO order behind earlier waiters. If it has to wait it marks
// the credits tripped. If ctx is done first, it returns ctx.Err() having
// taken nothing, and waiters queued behind it are not held up. If ctx is
// already done on entry it returns ctx.Err() without acquiring, even if the
// credits would fit. n == 0 returns nil at once; a negative n panics.
func (c *Credits) Acquire(ctx context.Context, n int64) error {
	checkAmount("Acquire", n)
	if n == 0 {
		return nil
	}
	done := ctx.Done()
	select {
	case <-done:
		return ctx.Err()
	default:
	}
	if c.nwait.Load() == 0 && c.take(n) {
		return nil
	}

	c.mu.Lock()
	if c.waiters.Len() == 0 && c.take(n) {
		c.mu.Unlock()
		return nil
	}
	c.tripped.Store(true)
	ready := make(chan struct{})
	elem := c.waiters.PushBack(creditWaiter{n: n, ready: ready})
	c.nwait.Add(1)
	// A Release that ran before nwait became visible took no lock and
	// granted nothing: grant now whatever fits.
	c.grantLocked()
	c.mu.Unlock()

	select {
	case <-ready:
		return nil
	case <-done:
	}

	c.mu.Lock()
	select {
	case <-ready:
		// Granted between ctx being done and us taking the lock. Give the
		// credits back so that a cancelled Acquire never holds anything.
		c.mu.Unlock()
		c.Release(n)
	default:
		// Still queued. If we were the head, the next waiters may have been
		// waiting only behind us (the head blocks everyone behind it even
		// when their smaller amounts fit), so let them proceed now instead of
		// at the next Release.
		isFront := c.waiters.Front() == elem
		c.waiters.Remove(elem)
		c.nwait.Add(-1)
		if isFront {
			c.grantLocked()
		}
		c.mu.Unlock()
	}
	return ctx.Err()
}

// Release gives back n credits, wakes the waiters that now fit in FIFO order
// and, if the credits were tripped and Held() is then at most Low(), clears the
// trip and calls onLow after unlocking. It never blocks (apart from onLow).
// Releasing more than is held panics; so does a negative n. n == 0 is a no-op.
func (c *Credits) Release(n int64) {
	checkAmount("Release", n)
	if n == 0 {
		return
	}
	if c.held.Add(-n) < 0 {
		c.held.Add(n)
		panic("backpressure: released more credits than held")
	}
	if c.nwait.Load() == 0 && !c.tripped.Load() {
		return
	}
	c.settle()
}

// settle grants waiters that fit and, if the credits are tripped and low,
// clears the trip and calls onLow. Held() is judged after granting, so
// onLow means "the credits are low now", not "were low for an instant".
func (c *Credits) settle() {
	c.mu.Lock()
	c.grantLocked()
	fire := c.tripped.Load() && c.held.Load() <= c.low
	if fire {
		c.tripped.Store(false)
	}
	c.mu.Unlock()
	if fire && c.onLow != nil {
		c.onLow()
	}
}

// grantLocked hands credits to waiters from the head while they fit. It stops
// at the first that does not fit, so a large head waiter is not starved by
// smaller ones behind it. c.mu must be held.
func (c *Credits) grantLocked() {
	for {
		front := c.waiters.Front()
		if front == nil {
			return
		}
		w := front.Value.(creditWaiter)
		if !c.take(w.n) {
			return
		}
		c.waiters.Remove(front)
		c.nwait.Add(-1)
		close(w.ready)
	}
}

func checkAmount(method string, n int64) {
	if n < 0 {
		panic(fmt.Sprintf("backpressure: Credits.%s with negative amount %d", method, n))
	}
}
