package actors

import (
	"fmt"
	"sync"
)

// Runnable is a unit of ready work: one message of one actor.
type Runnable interface {
	Run()
}

// PanicHandler is told about a panic that escaped a receive function. The
// engine recovers handler panics itself; this is the runtime's last line.
type PanicHandler func(recovered any)

// Scheduler runs Runnables on at most Limit goroutines at once.
//
// Submit never blocks: work beyond the limit waits in a FIFO ready queue.
// A goroutine is started for submitted work only while fewer than Limit are
// running; each goroutine takes ready work until the queue is empty and then
// exits, so an idle scheduler holds no goroutine.
//
// The ready queue is a slice of levels so that priority levels (highest
// first, each with its own work-in-progress limit) can be added without
// changing callers; today there is one level.
type Scheduler struct {
	limit   int
	onPanic PanicHandler

	mu      sync.Mutex // guards running and ready
	running int        // goroutines started and not yet exited, ≤ limit
	ready   ring[Runnable]
}

// NewScheduler returns a scheduler that runs at most limit Runnables at
// once. limit < 1 is a programmer error and panics. onPanic may be nil, in
// which case an escaped panic is re-raised (crashing the program, as Go
// does by default).
func NewScheduler(limit int, onPanic PanicHandler) *Scheduler {
	if limit < 1 {
		panic(fmt.Sprintf("actors: scheduler limit %d < 1", limit))
	}
	return &Scheduler{limit: limit, onPanic: onPanic}
}

// Limit is the most Runnables that run at once.
func (s *Scheduler) Limit() int { return s.limit }

// Running is the number of goroutines currently running work.
func (s *Scheduler) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Ready is the number of Runnables waiting for a goroutine.
func (s *Scheduler) Ready() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready.len()
}

// Submit makes r ready. It never blocks and is safe for concurrent use.
func (s *Scheduler) Submit(r Runnable) {
	s.mu.Lock()
	if s.running < s.limit {
		s.running++
		s.mu.Unlock()
		// Owned by the scheduler; exits when the ready queue is empty.
		go s.work(r)
		return
	}
	s.ready.push(r)
	s.mu.Unlock()
}

func (s *Scheduler) work(r Runnable) {
	for {
		s.run(r)
		s.mu.Lock()
		next, ok := s.ready.pop()
		if !ok {
			s.running--
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		r = next
	}
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
