package backpressure

import (
	"fmt"
	"slices"
	"sync"
)

// Valve combines several reasons for holding one partition back into a single
// pause/resume decision: the partition is paused while at least one hold of
// any [Reason] exists, and resumed when the last hold goes.
//
// A reason may be held several times (for example once per key whose mailbox
// is over its mark); each [Valve.Hold] needs a matching [Valve.Release].
// Single-holder reasons can use the idempotent [Valve.Set] instead.
//
// All methods are safe for concurrent use and never block apart from the
// pause and resume callbacks.
type Valve struct {
	pause  func(Reason) // immutable; called with mu held
	resume func()       // immutable; called with mu held

	// mu guards holds and total, and is held while calling pause and resume
	// so that those calls happen in the same order as the transitions that
	// caused them. Lock order: mu is taken before whatever pause and resume
	// lock; they must not call back into the Valve.
	mu    sync.Mutex
	holds map[Reason]int // reason -> number of holds; no zero entries
	total int            // sum of holds; > 0 exactly when paused
}

// NewValve returns an open (unpaused) valve. pause and resume are typically
// the partition claim's Pause and Resume; pause is told the reason whose
// hold paused the valve. They must not block and must not
// call the Valve: they run with the valve's lock held, which keeps every
// pause ordered before the resume that follows it. Neither may be nil.
func NewValve(pause func(Reason), resume func()) *Valve {
	if pause == nil || resume == nil {
		panic("backpressure: NewValve with nil pause or resume")
	}
	return &Valve{pause: pause, resume: resume, holds: make(map[Reason]int)}
}

// Hold adds one hold for r. If the valve had no holds, it calls pause.
func (v *Valve) Hold(r Reason) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.addLocked(r, 1)
}

// Release removes one hold for r. If that was the last hold of any reason, it
// calls resume. Releasing a reason that has no holds panics.
func (v *Valve) Release(r Reason) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.holds[r] == 0 {
		panic(fmt.Sprintf("backpressure: Valve.Release of reason %v, which has no holds", r))
	}
	v.addLocked(r, -1)
}

// Set ensures that r has exactly one hold (on) or none (off), calling pause
// or resume as [Valve.Hold] and [Valve.Release] would. It reports whether it
// changed the number of holds for r. It is meant for reasons with a single
// owner, which can then call it on every state change without counting.
func (v *Valve) Set(r Reason, on bool) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	want := 0
	if on {
		want = 1
	}
	delta := want - v.holds[r]
	if delta == 0 {
		return false
	}
	v.addLocked(r, delta)
	return true
}

// addLocked changes the holds of r by delta and calls pause or resume on the
// transitions between no holds and some. v.mu must be held.
func (v *Valve) addLocked(r Reason, delta int) {
	before := v.total
	v.total += delta
	if n := v.holds[r] + delta; n == 0 {
		delete(v.holds, r)
	} else {
		v.holds[r] = n
	}
	switch {
	case before == 0 && v.total > 0:
		v.pause(r)
	case before > 0 && v.total == 0:
		v.resume()
	}
}

// Paused reports whether any reason holds the valve.
func (v *Valve) Paused() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.total > 0
}

// Reasons returns the reasons that currently hold the valve, ascending,
// without duplicates. It returns nil when the valve is open.
func (v *Valve) Reasons() []Reason {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.holds) == 0 {
		return nil
	}
	rs := make([]Reason, 0, len(v.holds))
	for r := range v.holds {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	return rs
}

// Holds returns the number of holds for r.
func (v *Valve) Holds(r Reason) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.holds[r]
}
