package backpressure

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Pool is a pool of credits (records, bytes, offsets: whatever its owner
// counts) with a high and a low water mark. Its API follows
// golang.org/x/sync/semaphore.Weighted; the differences are the
// oversized-acquisition rule, the low-water callback and the asynchronous
// Wait, which lets an event loop wait for credit in a select.
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
// Waiters ([Pool.Acquire], [Pool.Wait]) are served in FIFO order. A waiter at
// the head is never overtaken: while anyone waits, [Pool.TryAcquire] fails and
// later waiters queue behind, even if their smaller amount would fit.
//
// # Hysteresis
//
// The pool is "tripped" when a TryAcquire fails or a waiter has to wait. The
// [Pool.Release] that then brings Held() to Low() or below clears the trip
// and calls onLow, once per trip. A typical owner pauses its source when
// TryAcquire fails and resumes it from onLow, so it does not flap around the
// high mark.
//
// All methods are safe for concurrent use. Releasing more than is held, or a
// negative amount, is a programmer error and panics with a message that says
// so.
type Pool struct {
	high, low int64  // immutable after NewPool
	onLow     func() // immutable; may be nil; called without mu held

	// held, tripped and nwait are atomics so that the common cases,
	// TryAcquire that fits and Release with nobody waiting and nothing
	// tripped, take no lock. Every change of held is an atomic add or
	// compare-and-swap, also under mu, so the fit rule holds however the
	// fast and slow paths interleave.
	held    atomic.Int64
	tripped atomic.Bool
	nwait   atomic.Int32 // waiters.Len(), readable without mu

	// mu guards waiters and serializes the slow paths (queueing, granting,
	// clearing a trip). It is never held while calling onLow. No other lock
	// is taken under it.
	mu      sync.Mutex
	waiters list.List // of *Waiter, FIFO; head is served first
}

// Waiter is one queued acquisition of a Pool (see Pool.Wait).
type Waiter struct {
	p     *Pool
	n     int64
	ready chan struct{} // closed, under p.mu, when the credits are granted
	elem  *list.Element // in p.waiters while queued; guarded by p.mu
}

// NewPool returns a pool with the given water marks. onLow may be nil;
// otherwise it is called, outside any lock, by the Release that brings
// Held() to Low() or below after the pool was exhausted (once per trip).
// onLow must not block for long: it runs on the releasing goroutine.
//
// NewPool panics if high < 1, low < 0 or low >= high: such values are
// programmer errors, since user configuration is validated elsewhere.
func NewPool(high, low int64, onLow func()) *Pool {
	switch {
	case high < 1:
		panic(fmt.Sprintf("backpressure: NewPool high mark %d is less than 1", high))
	case low < 0:
		panic(fmt.Sprintf("backpressure: NewPool low mark %d is negative", low))
	case low >= high:
		panic(fmt.Sprintf("backpressure: NewPool low mark %d is not below high mark %d", low, high))
	}
	return &Pool{high: high, low: low, onLow: onLow}
}

// High returns the high water mark.
func (c *Pool) High() int64 { return c.high }

// Low returns the low water mark.
func (c *Pool) Low() int64 { return c.low }

// Held returns the number of credits currently held. It never blocks.
func (c *Pool) Held() int64 { return c.held.Load() }

// Tripped reports whether the pool has been exhausted (a TryAcquire failed
// or a waiter had to wait) since Held() last fell to Low() or below.
func (c *Pool) Tripped() bool { return c.tripped.Load() }

// Waiting is the number of queued waiters.
func (c *Pool) Waiting() int { return int(c.nwait.Load()) }

// take adds n to held if it fits now (the fit rule, ignoring waiters).
func (c *Pool) take(n int64) bool { return c.takeIf(n, true) }

// takeIf adds n to held if held+n ≤ high, or, when oversize is allowed, if
// nothing is held.
func (c *Pool) takeIf(n int64, oversize bool) bool {
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

// TryAcquire takes n credits if they fit now and nobody is waiting; it never
// blocks. A single acquisition larger than High() succeeds when nothing is
// held. On failure it takes nothing and marks the pool tripped. n == 0 always
// succeeds; a negative n panics.
func (c *Pool) TryAcquire(n int64) bool { return c.tryAcquire("TryAcquire", n, true) }

// TryAcquireWithin is TryAcquire without the oversized-acquisition clause:
// it takes n credits only if Held()+n ≤ High() and nobody is waiting. It is
// for taking several items' credits at once (a batch), which must not pass
// the high mark together the way one oversized item may. On failure it
// takes nothing and marks the pool tripped, as TryAcquire does.
func (c *Pool) TryAcquireWithin(n int64) bool { return c.tryAcquire("TryAcquireWithin", n, false) }

func (c *Pool) tryAcquire(method string, n int64, oversize bool) bool {
	checkAmount(method, n)
	if n == 0 {
		return true
	}
	if c.nwait.Load() == 0 && c.takeIf(n, oversize) {
		return true
	}
	// A Release racing with this store may judge the trip before it is
	// visible; the trip is then cleared by the next Release, which always
	// comes while anything is held.
	c.tripped.Store(true)
	return false
}

// Wait queues an acquisition of n credits and returns at once. The
// credits are granted in FIFO order behind earlier waiters, as soon as they
// fit (see the fit rule): then they are held on the waiter's behalf and
// its Ready channel is closed. A waiter that is granted at once (nothing
// queued, and n fits) comes back with Ready already closed; otherwise the
// pool is marked tripped. The caller must end every waiter it gets:
// either it is granted (the caller owns the credits and releases them
// when done) or it is cancelled (Cancel reports whether it was granted
// meanwhile). n must be > 0; otherwise Wait panics.
func (c *Pool) Wait(n int64) *Waiter {
	checkAmount("Wait", n)
	if n == 0 {
		panic("backpressure: Pool.Wait of 0 credits")
	}
	w := &Waiter{p: c, n: n, ready: make(chan struct{})}
	if c.nwait.Load() == 0 && c.take(n) {
		close(w.ready)
		return w
	}
	c.mu.Lock()
	if c.waiters.Len() == 0 && c.take(n) {
		c.mu.Unlock()
		close(w.ready)
		return w
	}
	c.tripped.Store(true)
	w.elem = c.waiters.PushBack(w)
	c.nwait.Add(1)
	// A Release that ran before nwait became visible took no lock and
	// granted nothing: grant now whatever fits.
	c.grantLocked()
	c.mu.Unlock()
	return w
}

// Ready is closed once the waiter's credits are granted.
func (w *Waiter) Ready() <-chan struct{} { return w.ready }

// Granted reports whether the waiter's credits were granted.
func (w *Waiter) Granted() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// Cancel takes the waiter out of the queue. It reports whether the credits
// had been granted already: then the caller holds them (and may Release
// them, or keep them). Waiters queued behind a cancelled head are served
// at once if they now fit. Cancel is idempotent.
func (w *Waiter) Cancel() (granted bool) {
	c := w.p
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.elem == nil {
		return w.Granted()
	}
	isFront := c.waiters.Front() == w.elem
	c.waiters.Remove(w.elem)
	w.elem = nil
	c.nwait.Add(-1)
	if isFront {
		// The head blocks everyone behind it even when their smaller
		// amounts fit: let them proceed now instead of at the next
		// Release.
		c.grantLocked()
	}
	return false
}

// Acquire takes n credits, blocking until they fit (see the fit rule) in
// FIFO order behind earlier waiters. If it has to wait it marks the pool
// tripped. If ctx is done first, it returns ctx.Err() having taken
// nothing, and waiters queued behind it are not held up. If ctx is already
// done on entry it returns ctx.Err() without acquiring, even if the credits
// would fit. n == 0 returns nil at once; a negative n panics.
func (c *Pool) Acquire(ctx context.Context, n int64) error {
	checkAmount("Acquire", n)
	if n == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w := c.Wait(n)
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	if w.Cancel() {
		// Granted between ctx being done and the cancel: give the credits
		// back so that a cancelled Acquire never holds anything.
		c.Release(n)
	}
	return ctx.Err()
}

// Release gives back n credits, grants the waiters that now fit in FIFO
// order and, if the pool was tripped and Held() is then at most Low(),
// clears the trip and calls onLow after unlocking. It never blocks (apart
// from onLow). Releasing more than is held panics; so does a negative n.
// n == 0 is a no-op.
func (c *Pool) Release(n int64) {
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

// settle grants waiters that fit and, if the pool is tripped and low,
// clears the trip and calls onLow. Held() is judged after granting, so
// onLow means "the pool is low now", not "was low for an instant".
func (c *Pool) settle() {
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
func (c *Pool) grantLocked() {
	for {
		front := c.waiters.Front()
		if front == nil {
			return
		}
		w := front.Value.(*Waiter)
		if !c.take(w.n) {
			return
		}
		c.waiters.Remove(front)
		w.elem = nil
		c.nwait.Add(-1)
		close(w.ready)
	}
}

func checkAmount(method string, n int64) {
	if n < 0 {
		panic(fmt.Sprintf("backpressure: Pool.%s with negative amount %d", method, n))
	}
}
