package backpressure

import (
	"container/list"
	"context"
	"fmt"
	"sync"
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

	// mu guards held, tripped and waiters. It is never held while calling
	// onLow or while blocked in Acquire. No other lock is taken under it.
	mu      sync.Mutex
	held    int64
	tripped bool
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
func (c *Credits) Held() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// Tripped reports whether the credits have been exhausted (a TryAcquire failed
// or an Acquire had to wait) since Held() last fell to Low() or below.
func (c *Credits) Tripped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tripped
}

// fits reports whether n more credits may be taken now, ignoring waiters.
// c.mu must be held.
func (c *Credits) fits(n int64) bool {
	return c.held == 0 || c.held+n <= c.high
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiters.Len() == 0 && c.fits(n) {
		c.held += n
		return true
	}
	c.tripped = true
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

	c.mu.Lock()
	if c.waiters.Len() == 0 && c.fits(n) {
		c.held += n
		c.mu.Unlock()
		return nil
	}
	c.tripped = true
	ready := make(chan struct{})
	elem := c.waiters.PushBack(creditWaiter{n: n, ready: ready})
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
		fire := c.releaseLocked(n)
		c.mu.Unlock()
		c.callOnLow(fire)
	default:
		// Still queued. If we were the head, the next waiters may have been
		// waiting only behind us (the head blocks everyone behind it even
		// when their smaller amounts fit), so let them proceed now instead of
		// at the next Release.
		isFront := c.waiters.Front() == elem
		c.waiters.Remove(elem)
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
	c.mu.Lock()
	if n > c.held {
		c.mu.Unlock()
		panic("backpressure: released more credits than held")
	}
	fire := c.releaseLocked(n)
	c.mu.Unlock()
	c.callOnLow(fire)
}

// releaseLocked returns n credits, grants waiters and reports whether onLow
// must be called once c.mu is released. Held() is judged after granting, so
// onLow means "the credits are low now", not "were low for an instant".
// c.mu must be held.
func (c *Credits) releaseLocked(n int64) (fireOnLow bool) {
	c.held -= n
	c.grantLocked()
	if c.tripped && c.held <= c.low {
		c.tripped = false
		return true
	}
	return false
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
		if !c.fits(w.n) {
			return
		}
		c.held += w.n
		c.waiters.Remove(front)
		close(w.ready)
	}
}

func (c *Credits) callOnLow(fire bool) {
	if fire && c.onLow != nil {
		c.onLow()
	}
}

func checkAmount(method string, n int64) {
	if n < 0 {
		panic(fmt.Sprintf("backpressure: Credits.%s with negative amount %d", method, n))
	}
}
