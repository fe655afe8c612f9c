package actors

import (
	"fmt"
	"sync"
	"time"
)

// Runnable is a unit of ready work: one turn of one actor.
type Runnable interface {
	Run()
}

// PanicHandler is told about a panic that escaped a Runnable. The engine
// recovers user code itself; this is the runtime's last line.
type PanicHandler func(recovered any)

// DefaultIdle is how long a worker with nothing to do stays parked before
// it exits, when NewScheduler is given no other value.
const DefaultIdle = 10 * time.Second

// Scheduler runs Runnables on at most Limit worker goroutines at once.
//
// Submit never blocks: work waits in a FIFO ready queue. Workers stay:
// a worker that finds the queue empty parks, and exits only after it has
// been parked for the idle time, so a steady load reuses warm goroutines
// (and their grown stacks) instead of starting one per burst.
//
// Waking follows the Go runtime's own rule: at most one woken worker is
// on its way to the queue at a time (it is "searching"). When a worker
// takes work and more is queued, and nobody is searching, it wakes (or
// starts) one more. A burst of cheap work is thus drained by the workers
// already awake, with a few wakes per burst, while work that blocks (a
// handler waiting on I/O) fans out to every worker within microseconds:
// each worker that takes an item wakes the next before running it.
//
// The ready queue is one FIFO; a scheduler made by NewLevelScheduler has
// one per priority level instead, with work-in-progress limits,
// reservations and minimum shares (see there).
type Scheduler struct {
	limit   int
	onPanic PanicHandler
	idle    time.Duration

	// mu guards every field below. It is held only to move work and
	// workers between lists: never while running a Runnable, and the only
	// calls under it are channel sends into a worker's one-slot wake
	// channel, which never block, and go statements. Lock order: a
	// Group's lock may be held when taking mu (Group submits under its
	// lock); mu is never held when taking any other lock.
	mu        sync.Mutex
	ready     ring[Runnable] // the FIFO, when levels is nil
	levels    *levels        // nil: one level, the FIFO above; set by NewLevelScheduler before any use
	workers   int            // goroutines started and not exited, ≤ limit
	parked    []*worker      // parked workers, most recently parked last
	searching int            // workers woken or started that have not taken work yet
	closed    bool
}

// worker is one worker goroutine's parking place.
type worker struct {
	wake  chan struct{} // one slot: a wake is never lost, a waker never blocks
	timer *time.Timer   // the idle timer, reused across parks
}

// NewScheduler returns a scheduler that runs at most limit Runnables at
// once; parked workers exit after idle (≤ 0 means DefaultIdle). limit < 1
// is a programmer error and panics. onPanic may be nil, in which case an
// escaped panic is re-raised (crashing the program, as Go does by
// default).
func NewScheduler(limit int, idle time.Duration, onPanic PanicHandler) *Scheduler {
	if limit < 1 {
		panic(fmt.Sprintf("actors: scheduler limit %d < 1", limit))
	}
	if idle <= 0 {
		idle = DefaultIdle
	}
	s := &Scheduler{limit: limit, idle: idle, onPanic: onPanic}
	// The ready queue lives as long as the engine and swings between empty
	// and every record the engine holds: reallocating it on every swing
	// would cost more than its storage (16 bytes a slot).
	s.ready.keep = true
	return s
}

// Limit is the most Runnables that run at once.
func (s *Scheduler) Limit() int { return s.limit }

// Workers is the number of worker goroutines alive (running or parked).
func (s *Scheduler) Workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workers
}

// Busy is the number of workers that are not parked: running work or on
// their way to it.
func (s *Scheduler) Busy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workers - len(s.parked)
}

// Ready is the number of Runnables waiting for a worker.
func (s *Scheduler) Ready() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.levels != nil {
		return s.levels.ready()
	}
	return s.ready.len()
}

// Submit makes r ready. It never blocks and is safe for concurrent use.
func (s *Scheduler) Submit(r Runnable) {
	s.mu.Lock()
	if s.levels != nil {
		s.pushLevelLocked(r, 0)
	} else {
		s.ready.push(r)
	}
	s.wakeLocked()
	s.mu.Unlock()
}

// SubmitAll makes every Runnable of rs ready, in order, under one lock.
func (s *Scheduler) SubmitAll(rs []Runnable) {
	if len(rs) == 0 {
		return
	}
	s.mu.Lock()
	if s.levels != nil {
		for _, r := range rs {
			s.pushLevelLocked(r, 0)
		}
	} else {
		for _, r := range rs {
			s.ready.push(r)
		}
	}
	s.wakeLocked()
	s.mu.Unlock()
}

// Close lets every worker exit once the ready queue is empty; parked
// workers exit at once. Work submitted after Close still runs (a worker is
// started for it), so nothing submitted is ever dropped.
func (s *Scheduler) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for len(s.parked) > 0 {
		w := s.parked[len(s.parked)-1]
		s.parked = s.parked[:len(s.parked)-1]
		s.searching++
		w.wake <- struct{}{}
	}
}

// wakeLocked wakes or starts one worker if work is queued (for a leveled
// scheduler: work that may start now), no worker is already on its way to
// it, and the limit allows. s.mu must be held.
func (s *Scheduler) wakeLocked() {
	if s.searching > 0 {
		return
	}
	if s.levels != nil {
		if s.levels.eligible(s.limit) == 0 {
			return
		}
	} else if s.ready.len() == 0 {
		return
	}
	if n := len(s.parked); n > 0 {
		w := s.parked[n-1]
		s.parked = s.parked[:n-1]
		s.searching++
		w.wake <- struct{}{}
		return
	}
	if s.workers < s.limit {
		s.workers++
		s.searching++
		// Owned by the scheduler: exits after being parked for s.idle, or
		// when the queue is empty after Close.
		go s.work(&worker{wake: make(chan struct{}, 1)})
	}
}

// work is a worker's loop: take ready work while there is some, park when
// there is none, exit after parking for s.idle or once closed.
func (s *Scheduler) work(w *worker) {
	searching := true // the waker counted this worker as searching
	s.mu.Lock()
	for {
		if s.levels != nil {
			if r, lvl := s.levels.pick(s.limit); r != nil {
				if searching {
					searching = false
					s.searching--
				}
				s.wakeLocked()
				s.mu.Unlock()
				s.run(r)
				s.mu.Lock()
				s.levels.finished(lvl)
				continue
			}
		} else if r, ok := s.ready.pop(); ok {
			if searching {
				searching = false
				s.searching--
			}
			s.wakeLocked() // more queued: the next worker is on its way
			s.mu.Unlock()
			s.run(r)
			s.mu.Lock()
			continue
		}
		if searching {
			searching = false
			s.searching--
		}
		if s.closed {
			s.workers--
			s.mu.Unlock()
			return
		}
		s.parked = append(s.parked, w)
		s.mu.Unlock()
		if !s.park(w) {
			return
		}
		searching = true
		s.mu.Lock()
	}
}

// park waits for a wake. It returns false when the worker timed out and
// left: then it is no longer counted. A waker that popped w just as the
// timer fired has sent (or will send) a wake, which park then takes.
func (s *Scheduler) park(w *worker) bool {
	if w.timer == nil {
		w.timer = time.NewTimer(s.idle)
	} else {
		w.timer.Reset(s.idle)
	}
	select {
	case <-w.wake:
		w.timer.Stop()
		return true
	case <-w.timer.C:
	}
	s.mu.Lock()
	for i, p := range s.parked {
		if p == w {
			s.parked = append(s.parked[:i], s.parked[i+1:]...)
			s.workers--
			s.mu.Unlock()
			return false
		}
	}
	s.mu.Unlock()
	<-w.wake // popped by a waker: its wake is on the way
	return true
}

func (s *Scheduler) run(r Runnable) {
	if s.onPanic != nil {
		defer func() {
			if v := recover(); v != nil {
				s.onPanic(v)
			}
		}()
	}
	r.Run()
}
