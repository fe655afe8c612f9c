package main

import (
	"context"
	"sync"
)

// wip is the orchestrator's work-in-progress limits: per plan, at most
// limit reports hold a slot at once. A report takes its slot when the
// orchestrator starts it and gives it back when its outcome (ReportSent or
// ReportFailed) comes back, however many asynchronous steps lie between.
//
// Slots are held by report id, so taking and giving back are idempotent:
// a redelivered ReportQueued does not take a second slot, and a
// redelivered ReportSent does not free someone else's. Waiters are served
// in arrival order. Safe for concurrent use.
type wip struct {
	mu      sync.Mutex // guards classes and everything in them
	classes map[plan]*wipClass
}

type wipClass struct {
	limit   int
	holders map[string]struct{}
	waiters []*wipWaiter // FIFO
}

type wipWaiter struct {
	id      string
	granted chan struct{} // closed when the slot is the waiter's
}

// newWIP returns limits of limits[p] slots for each plan p (each ≥ 1).
func newWIP(limits map[plan]int) *wip {
	w := &wip{classes: make(map[plan]*wipClass)}
	for _, p := range plans {
		w.classes[p] = &wipClass{limit: limits[p], holders: make(map[string]struct{})}
	}
	return w
}

// acquire takes a slot of plan p for report id, blocking until one is free,
// ctx is done or stop is closed (then it returns an error and holds
// nothing). If id already holds a slot it returns at once.
func (w *wip) acquire(ctx context.Context, stop <-chan struct{}, p plan, id string) error {
	w.mu.Lock()
	c := w.classes[p]
	if _, ok := c.holders[id]; ok {
		w.mu.Unlock()
		return nil
	}
	if len(c.holders) < c.limit && len(c.waiters) == 0 {
		c.holders[id] = struct{}{}
		w.mu.Unlock()
		return nil
	}
	wt := &wipWaiter{id: id, granted: make(chan struct{})}
	c.waiters = append(c.waiters, wt)
	w.mu.Unlock()

	var err error
	select {
	case <-wt.granted:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = errStopping
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-wt.granted: // granted meanwhile: hand it on
		delete(c.holders, id)
		c.grant()
	default:
		for i, x := range c.waiters {
			if x == wt {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
	}
	return err
}

// hold records that report id holds a slot of plan p, without waiting and
// even beyond the limit: a restarted orchestrator counts the reports that
// were in progress when it stopped.
func (w *wip) hold(p plan, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.classes[p].holders[id] = struct{}{}
}

// release gives back report id's slot of plan p, if it holds one, and
// reports whether it did.
func (w *wip) release(p plan, id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.classes[p]
	if _, ok := c.holders[id]; !ok {
		return false
	}
	delete(c.holders, id)
	c.grant()
	return true
}

// grant gives free slots to the first waiters. Called with w.mu held.
func (c *wipClass) grant() {
	for len(c.holders) < c.limit && len(c.waiters) > 0 {
		wt := c.waiters[0]
		c.waiters = c.waiters[1:]
		c.holders[wt.id] = struct{}{} // a second waiter of the same id shares the slot
		close(wt.granted)
	}
}

// wipUsage is one plan's slots now.
type wipUsage struct {
	InUse   int `json:"in_use"`
	Limit   int `json:"limit"`
	Waiting int `json:"waiting"` // orchestrator calls waiting for a slot
}

// usage returns every plan's slots now.
func (w *wip) usage() map[plan]wipUsage {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[plan]wipUsage, len(w.classes))
	for p, c := range w.classes {
		out[p] = wipUsage{InUse: len(c.holders), Limit: c.limit, Waiting: len(c.waiters)}
	}
	return out
}
