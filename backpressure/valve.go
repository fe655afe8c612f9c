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
// A reason may be held several times, by several holders; each
// [Valve.Hold] needs a matching [Valve.Release]. A reason with a single
// holder (orderly's reasons all have one) uses the idempotent [Valve.Set]
// instead.
//
// # Who calls pause and resume
//
// Changing the holds never calls pause or resume on the caller's goroutine:
// Hold, Release, Set and SetIfNewer only update the state, under the valve's
// own lock, and hand a needed transition to the valve's applier, a goroutine
// started for it that calls pause or resume with no lock held and exits
// when the state it applied is the state wanted. So they may be called
// under any lock: a caller holding its own locks never runs the source's
// Pause or a user's hook under them. One applier runs at a time, so the
// calls are never concurrent and always alternate; a pause followed at once
// by a resume may collapse into no call at all. [Valve.Flush] applies a
// pending transition on the caller's goroutine instead (for a caller that
// holds no lock and wants the pause in effect before it waits).
//
// # Stopping
//
// [Valve.Close] stops the valve and waits for a running applier: once it
// returns, pause and resume are never called again, and holds change only
// the valve's own state. An owner closes its valve before it lets go of
// what pause and resume touch (a Kafka claim, a hook).
//
// All methods are safe for concurrent use and never block, except Flush and
// Close.
type Valve struct {
	pause  func([]Reason) // immutable; called by the applier with no lock held
	resume func()         // immutable; likewise

	// mu guards every field below. No callback runs under it and no
	// other lock is taken under it.
	mu       sync.Mutex
	holds    map[Reason]int    // reason -> number of holds; no zero entries
	seqs     map[Reason]uint64 // the last seq applied by SetIfNewer, per reason
	total    int               // sum of holds; > 0 exactly when pausing is wanted
	applied  bool              // the state pause/resume last reported: true after a pause
	applying bool              // an applier is running
	closed   bool              // Close was called: no applier starts
	settled  *sync.Cond        // broadcast when an applier stops
}

// NewValve returns an open (unpaused) valve. pause is told every reason
// in force when the pause is applied. Neither may be nil.
func NewValve(pause func([]Reason), resume func()) *Valve {
	if pause == nil || resume == nil {
		panic("backpressure: NewValve with nil pause or resume")
	}
	v := &Valve{pause: pause, resume: resume, holds: make(map[Reason]int)}
	v.settled = sync.NewCond(&v.mu)
	return v
}

// Hold adds one hold for r; the valve pauses if it was open.
func (v *Valve) Hold(r Reason) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.addLocked(r, 1)
}

// Release removes one hold for r; the valve resumes if that was the last
// hold of any reason. Releasing a reason that has no holds panics.
func (v *Valve) Release(r Reason) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.holds[r] == 0 {
		panic(fmt.Sprintf("backpressure: Valve.Release of reason %v, which has no holds", r))
	}
	v.addLocked(r, -1)
}

// Set ensures that r has exactly one hold (on) or none (off). It reports
// whether it changed the number of holds for r. It is meant for reasons
// with a single owner, which can then call it on every state change
// without counting.
func (v *Valve) Set(r Reason, on bool) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.setLocked(r, on)
}

// SetIfNewer is Set for a reason whose state is reported with a sequence
// number that grows with every change, from goroutines that may deliver
// their reports out of order: a report whose seq is not above the last one
// applied for r is stale and ignored.
func (v *Valve) SetIfNewer(r Reason, on bool, seq uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seqs == nil {
		v.seqs = make(map[Reason]uint64)
	}
	if seq <= v.seqs[r] {
		return false
	}
	v.seqs[r] = seq
	return v.setLocked(r, on)
}

func (v *Valve) setLocked(r Reason, on bool) bool {
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

// addLocked changes the holds of r by delta and starts an applier if the
// wanted state now differs from the applied one. v.mu must be held.
func (v *Valve) addLocked(r Reason, delta int) {
	v.total += delta
	if n := v.holds[r] + delta; n == 0 {
		delete(v.holds, r)
	} else {
		v.holds[r] = n
	}
	if !v.applying && !v.closed && (v.total > 0) != v.applied {
		v.applying = true
		// Owned by the valve: applies transitions until the applied state
		// is the wanted one, then exits. Flush waits for it.
		go v.apply()
	}
}

// Flush applies a pending transition on the calling goroutine, or waits
// for the running applier to finish: when it returns, pause or resume has
// been called for the state the valve was in when Flush was called (or a
// later one). The caller must hold no lock that pause or resume may take.
func (v *Valve) Flush() {
	v.mu.Lock()
	for v.applying {
		v.settled.Wait()
	}
	if v.closed || (v.total > 0) == v.applied {
		v.mu.Unlock()
		return
	}
	v.applying = true
	v.mu.Unlock()
	v.apply()
}

// Close stops the valve: it waits for a running applier to finish (a pause
// or resume in progress completes), and from then on pause and resume are
// never called. Holds may still change; Paused and Reasons still report
// them. Close is idempotent. The caller must hold no lock that pause or
// resume may take.
func (v *Valve) Close() {
	v.mu.Lock()
	v.closed = true
	for v.applying {
		v.settled.Wait()
	}
	v.mu.Unlock()
}

// apply calls pause or resume until the applied state is the wanted one.
// Exactly one apply runs at a time (v.applying).
func (v *Valve) apply() {
	v.mu.Lock()
	for {
		want := v.total > 0
		if want == v.applied || v.closed {
			v.applying = false
			v.settled.Broadcast()
			v.mu.Unlock()
			return
		}
		v.applied = want
		reasons := v.reasonsLocked()
		v.mu.Unlock()
		if want {
			v.pause(reasons)
		} else {
			v.resume()
		}
		v.mu.Lock()
	}
}

// Paused reports whether any reason holds the valve (whether or not the
// applier has called pause yet).
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
	return v.reasonsLocked()
}

func (v *Valve) reasonsLocked() []Reason {
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
