package actors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/ring"
)

// Runnable is a unit of ready work: one turn of one actor. Run is called
// on a worker goroutine, which it may use for per-worker state (see
// Worker).
type Runnable interface {
	Run(w *Worker)
}

// PanicHandler is told about a panic that escaped a Runnable. The engine
// recovers user code itself; this is the runtime's last line.
type PanicHandler func(recovered any)

// DefaultIdle is how long a worker with nothing to do stays parked before
// it exits, when the scheduler is given no other value.
const DefaultIdle = 10 * time.Second

// Flusher is something a Runnable left for its worker to finish later
// (see Worker.Defer): a batch of results to hand over once, rather than
// one per Runnable.
type Flusher interface {
	Flush(w *Worker)
}

// Worker is one worker goroutine of a Scheduler, as the Runnables it runs
// see it. A Runnable may keep per-worker state indexed by ID, which no
// other goroutine touches while the worker runs, and hand it over in
// batches through Defer.
type Worker struct {
	s  *Scheduler
	id int

	// Owned by the worker goroutine.
	deferred []Flusher
	units    int  // units of work the Runnables of the batch reported (Did)
	level    int  // the level of the Runnable running (a scheduler with levels)
	ranLevel bool // a leveled Runnable ran and is not yet counted finished
	searched bool // counted in s.searching

	// mu guards local: the worker pops from it, idle workers steal from it.
	// A leaf lock.
	mu     sync.Mutex
	local  ring.Ring[Runnable]
	nlocal atomic.Int32 // local.Len(), readable without mu

	wake  chan struct{} // one slot: a wake is never lost, a waker never blocks
	timer *time.Timer   // the idle timer, reused across parks

	// runs counts twice the Runnables the worker started: once as one
	// starts, once as it ends, so that it is odd while the worker is in
	// one. The monitor reads it to tell a worker stuck in a Runnable.
	// Written only by the worker.
	runs atomic.Uint64
	seen uint64 // runs at the monitor's last look; guarded by s.mu
}

// ID is the worker's number, in [0, Scheduler.Limit()): no two live
// workers share one, and a worker that exits gives its number to the next
// one started.
func (w *Worker) ID() int { return w.id }

// Level is the priority level the running Runnable was started at (0 on a
// scheduler without levels).
func (w *Worker) Level() int { return w.level }

// Did tells the worker that the Runnable running did n units of work (a
// turn: the messages it received). The scheduler estimates the cost of a
// unit from it (see UnitCost); a Runnable that reports nothing counts as
// one unit.
func (w *Worker) Did(n int) { w.units += n }

// Defer asks the worker to call f.Flush(w) once, on its goroutine, before
// it looks for work beyond the batch it took, parks or exits. A Runnable
// that has results to hand to another goroutine gathers them per worker
// and defers the hand-over, so that a batch of cheap Runnables costs one
// hand-over, not one each. Defer the same f again only after its Flush
// ran.
func (w *Worker) Defer(f Flusher) { w.deferred = append(w.deferred, f) }

func (w *Worker) flush() {
	for i := 0; i < len(w.deferred); i++ { // a Flush may Defer again
		w.deferred[i].Flush(w)
		w.deferred[i] = nil
	}
	w.deferred = w.deferred[:0]
}

// Scheduler runs Runnables on at most Limit worker goroutines at once.
//
// Submit never blocks: work waits in a FIFO ready queue. A worker takes
// ready work in batches when the work is cheap: a share of the queue moves
// to its own local queue and runs back to back, so that cheap work costs
// one trip to the shared queue per batch rather than per Runnable, and
// results are handed over per batch (Worker.Defer). Idle workers steal
// half of a busy worker's local queue, so a Runnable that blocks does not
// keep the rest of its batch from running while a worker is free. How much
// a worker takes follows a running estimate of what a Runnable costs:
// cheap work (microseconds) is taken in batches of up to 64, work that
// blocks (a handler waiting on I/O) one at a time. A sudden slow Runnable
// in a batch of cheap ones can hold back the rest of its batch until an
// idle worker steals them or it returns.
//
// A monitor watches for workers stuck in a Runnable while work waits (in
// their batch, or in the ready queue with every awake worker stuck): every
// millisecond while work is queued, it wakes a parked worker (or starts
// one) for each worker that has started nothing since its last look, so
// that work that blocks unexpectedly fans out within a few milliseconds,
// and raises the cost estimate. It sleeps while nothing is queued.
//
// Workers stay: a worker that finds nothing to do parks, and exits only
// after it has been parked for the idle time, so a steady load reuses warm
// goroutines (and their grown stacks) instead of starting one per burst.
// A parked worker is woken when ready work is queued and the estimate says
// the workers awake cannot run it soon: at once for work that blocks, only
// for a backlog of cheap work.
//
// A scheduler made by NewLevelScheduler has one ready queue per priority
// level instead, with work-in-progress limits, reservations and minimum
// shares (see there); its workers take one Runnable at a time, as every
// start is a scheduling decision.
//
// Close waits for every worker to exit.
type Scheduler struct {
	limit   int
	onPanic PanicHandler
	idle    time.Duration

	// cost is a running estimate of a Runnable's run time, in ns, and
	// unitCost of a unit of work (see Worker.Did): written by workers once
	// per batch, read when deciding batch sizes, wakes and turn lengths.
	cost     atomic.Int64
	unitCost atomic.Int64

	// mu guards every field below. It is held only to move work and
	// workers between lists: never while running a Runnable, and the only
	// calls under it are channel sends into a worker's one-slot wake
	// channel, which never block, go statements, and a worker's own lock
	// (to fill its local queue or steal from it). Lock order: a Group's
	// lock may be held when taking mu (a Group submits under its lock); mu
	// before a worker's mu.
	mu        sync.Mutex
	ready     ring.Ring[Runnable] // the FIFO, when levels is nil
	levels    *levels             // nil: one level, the FIFO above; set by NewLevelScheduler before any use
	workers   []*Worker           // by ID; nil where no worker lives
	live      int                 // workers started and not exited, ≤ limit
	parked    []*Worker           // parked workers, most recently parked last
	searching int                 // workers woken or started that have not found work yet
	closed    bool
	exited    chan struct{} // closed when live reaches 0 after Close

	monStarted bool          // the monitor runs
	monIdle    bool          // the monitor sleeps until work is queued
	monWake    chan struct{} // one slot: wakes the sleeping monitor
	monStop    chan struct{} // closed by Close
	monDone    chan struct{} // closed when the monitor exits
}

// The batch sizes and the wake rule.
const (
	maxBatch = 64
	// batchSpan is about how long a batch should take: a worker takes at
	// most batchSpan / cost Runnables at once.
	batchSpan = 200 * time.Microsecond
	// wakeSpan is how much queued work one awake worker is left with
	// before another is woken.
	wakeSpan = 20 * time.Microsecond
	// costStart is the estimate before any work ran: as if work blocked,
	// so that the first bursts fan out.
	costStart = int64(time.Millisecond)
)

// monitorEvery is how often the monitor looks for stuck workers while
// work is queued.
const monitorEvery = time.Millisecond

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
	s := &Scheduler{limit: limit, idle: idle, onPanic: onPanic, workers: make([]*Worker, limit),
		monWake: make(chan struct{}, 1), monStop: make(chan struct{}), monDone: make(chan struct{})}
	s.cost.Store(costStart)
	s.unitCost.Store(costStart)
	// The ready queue lives as long as the engine and swings between empty
	// and every record the engine holds: reallocating it on every swing
	// would cost more than its storage (16 bytes a slot).
	s.ready.Keep = true
	return s
}

// Limit is the most Runnables that run at once.
func (s *Scheduler) Limit() int { return s.limit }

// Workers is the number of worker goroutines alive (running or parked).
func (s *Scheduler) Workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// Busy is the number of workers that are not parked: running work or on
// their way to it.
func (s *Scheduler) Busy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live - len(s.parked)
}

// Ready is the number of Runnables waiting for a worker: in the ready
// queue, or in a worker's batch and not yet started.
func (s *Scheduler) Ready() int {
	s.mu.Lock()
	n := 0
	if s.levels != nil {
		n = s.levels.ready()
	} else {
		n = s.ready.Len()
	}
	for _, w := range s.workers {
		if w != nil {
			n += int(w.nlocal.Load())
		}
	}
	s.mu.Unlock()
	return n
}

// Submit makes r ready. It never blocks and is safe for concurrent use.
// Submitting after Close is a programmer error and panics.
func (s *Scheduler) Submit(r Runnable) {
	s.mu.Lock()
	s.checkOpen()
	if s.levels != nil {
		s.pushLevelLocked(r, 0)
	} else {
		s.ready.Push(r)
	}
	s.wakeLocked()
	s.watchLocked()
	s.mu.Unlock()
}

// SubmitAll makes every Runnable of rs ready, in order, under one lock.
func (s *Scheduler) SubmitAll(rs []Runnable) {
	if len(rs) == 0 {
		return
	}
	s.mu.Lock()
	s.checkOpen()
	if s.levels != nil {
		for _, r := range rs {
			s.pushLevelLocked(r, 0)
		}
	} else {
		for _, r := range rs {
			s.ready.Push(r)
		}
	}
	s.wakeLocked()
	s.watchLocked()
	s.mu.Unlock()
}

// watchLocked starts the monitor, or wakes it if it sleeps: work was just
// queued. s.mu is held.
func (s *Scheduler) watchLocked() {
	if s.levels != nil {
		return // leveled workers take one Runnable at a time and wake eagerly
	}
	if !s.monStarted {
		s.monStarted = true
		// Owned by the scheduler: exits on Close, which waits for it.
		go s.monitor()
		return
	}
	if s.monIdle {
		s.monIdle = false
		select {
		case s.monWake <- struct{}{}:
		default:
		}
	}
}

// monitor is the scheduler's watchdog; see Scheduler.
func (s *Scheduler) monitor() {
	defer close(s.monDone)
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	for {
		select {
		case <-s.monStop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if !s.lookLocked() {
			s.monIdle = true
			s.mu.Unlock()
			t.Stop()
			select {
			case <-s.monStop:
				return
			case <-s.monWake:
			}
			t.Reset(monitorEvery)
			continue
		}
		s.mu.Unlock()
	}
}

// lookLocked wakes a worker for each awake worker stuck in a Runnable
// while work waits, and reports whether any work is queued. s.mu is held.
func (s *Scheduler) lookLocked() (queued bool) {
	waiting := s.ready.Len()
	stuck := 0
	for _, w := range s.workers {
		if w == nil {
			continue
		}
		runs := w.runs.Load()
		local := int(w.nlocal.Load())
		waiting += local
		if runs%2 == 1 && runs == w.seen {
			stuck++
		}
		w.seen = runs
	}
	if waiting == 0 {
		return false
	}
	if stuck > 0 {
		// Work blocks: make the estimate say so, so that batches shrink
		// and wakes fan out.
		if c := int64(monitorEvery); s.cost.Load() < c {
			s.cost.Store(c)
		}
		if c := int64(monitorEvery); s.unitCost.Load() < c {
			s.unitCost.Store(c)
		}
		for range min(stuck, waiting) {
			if !s.wakeOneLocked() {
				break
			}
		}
	}
	return true
}

func (s *Scheduler) checkOpen() {
	if s.closed {
		s.mu.Unlock()
		panic("actors: Submit after Close")
	}
}

// Close lets every worker exit once no work is left, and waits for them
// until ctx is done: it returns nil once every worker has exited, or
// ctx.Err() if some are still running then (a Runnable that does not
// return). Work already submitted still runs. Close is idempotent.
func (s *Scheduler) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.exited = make(chan struct{})
		if s.live == 0 {
			close(s.exited)
		}
		for len(s.parked) > 0 {
			w := s.parked[len(s.parked)-1]
			s.parked = s.parked[:len(s.parked)-1]
			s.searching++
			w.searched = true
			w.wake <- struct{}{}
		}
	}
	exited, started := s.exited, s.monStarted
	if started {
		select {
		case <-s.monStop:
		default:
			close(s.monStop)
		}
	}
	s.mu.Unlock()
	if started {
		<-s.monDone
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queuedLocked is the work that may start now: ready Runnables (for a
// leveled scheduler, of levels that may start one). s.mu is held.
func (s *Scheduler) queuedLocked() int {
	if s.levels != nil {
		if s.levels.eligible(s.limit) == 0 {
			return 0
		}
		return s.levels.ready()
	}
	return s.ready.Len()
}

// wakeLocked wakes or starts one worker if work is queued that the workers
// awake will not get to soon, no worker is already on its way to it, and
// the limit allows. s.mu must be held.
func (s *Scheduler) wakeLocked() {
	if s.searching > 0 {
		return
	}
	n := s.queuedLocked()
	if n == 0 {
		return
	}
	if awake := s.live - len(s.parked); awake > 0 && s.levels == nil &&
		int64(n)*s.cost.Load() < int64(wakeSpan)*int64(awake) {
		return // the awake workers will have it done within wakeSpan
	}
	s.wakeOneLocked()
}

// wakeOneLocked wakes a parked worker, or starts one if the limit allows,
// as a searcher; it reports whether it did. s.mu is held.
func (s *Scheduler) wakeOneLocked() bool {
	if k := len(s.parked); k > 0 {
		w := s.parked[k-1]
		s.parked = s.parked[:k-1]
		s.searching++
		w.searched = true
		w.wake <- struct{}{}
		return true
	}
	if s.live < s.limit && !s.closed {
		id := 0
		for s.workers[id] != nil {
			id++
		}
		w := &Worker{s: s, id: id, wake: make(chan struct{}, 1), searched: true}
		s.workers[id] = w
		s.live++
		s.searching++
		// Owned by the scheduler: exits after being parked for s.idle, or
		// when no work is left after Close; Close waits for it.
		go s.work(w)
		return true
	}
	return false
}

// work is a worker's loop: run its batch, take more (from the ready
// queue, or stolen), park when there is none, exit after parking for
// s.idle or once closed.
func (s *Scheduler) work(w *Worker) {
	var (
		began time.Time
		ran   int
	)
	for {
		r := w.pop()
		if r == nil {
			if ran > 0 {
				s.learn(time.Since(began), ran, max(w.units, ran))
				ran, w.units = 0, 0
			}
			w.flush()
			r = s.take(w)
			if r == nil {
				return // exited
			}
			began = time.Now()
		}
		s.run(w, r)
		ran++
	}
}

// learn folds a batch's run time per Runnable, and per unit of work, into
// the cost estimates.
func (s *Scheduler) learn(d time.Duration, runnables, units int) {
	fold(&s.cost, int64(d)/int64(runnables))
	fold(&s.unitCost, int64(d)/int64(units))
}

// fold moves an estimate towards a sample: quickly upwards (work started
// to block), slowly downwards.
func fold(est *atomic.Int64, sample int64) {
	old := est.Load()
	var v int64
	if sample > old {
		v = (old + 3*sample) / 4
	} else {
		v = old - (old-sample)/16
	}
	est.Store(max(v, 1))
}

// UnitCost is the scheduler's running estimate of what a unit of work
// costs (see Worker.Did).
func (s *Scheduler) UnitCost() time.Duration { return time.Duration(s.unitCost.Load()) }

// pop takes the next Runnable of w's own batch.
func (w *Worker) pop() Runnable {
	if w.nlocal.Load() == 0 {
		return nil
	}
	w.mu.Lock()
	r, ok := w.local.Pop()
	if ok {
		w.nlocal.Add(-1)
	}
	w.mu.Unlock()
	if !ok {
		return nil
	}
	return r
}

// take finds w's next work: from the ready queue (a batch of it, when work
// is cheap), else stolen from a busy worker, else it parks. It returns nil
// when the worker has exited.
func (s *Scheduler) take(w *Worker) Runnable {
	s.mu.Lock()
	for {
		if s.levels != nil && w.ranLevel {
			s.levels.finished(w.level)
			w.ranLevel = false
		}
		if r := s.takeLocked(w); r != nil {
			s.found(w)
			s.wakeLocked()
			s.mu.Unlock()
			return r
		}
		if s.levels == nil {
			if r := s.stealLocked(w); r != nil {
				s.found(w)
				s.wakeLocked()
				s.mu.Unlock()
				return r
			}
		}
		s.found(w)
		if s.closed {
			s.exitLocked(w)
			s.mu.Unlock()
			return nil
		}
		s.parked = append(s.parked, w)
		s.mu.Unlock()
		if !s.park(w) {
			return nil
		}
		s.mu.Lock()
	}
}

// found ends w's search. s.mu is held.
func (s *Scheduler) found(w *Worker) {
	if w.searched {
		w.searched = false
		s.searching--
	}
}

// exitLocked removes w. s.mu is held.
func (s *Scheduler) exitLocked(w *Worker) {
	s.workers[w.id] = nil
	s.live--
	if s.closed && s.live == 0 {
		close(s.exited)
	}
}

// takeLocked takes ready work for w: on a scheduler with levels, the next
// Runnable its rules pick; otherwise the head of the queue, and, when work
// is cheap, a batch behind it into w's local queue. s.mu is held.
func (s *Scheduler) takeLocked(w *Worker) Runnable {
	if s.levels != nil {
		r, lvl := s.levels.pick(s.limit)
		if r != nil {
			w.level, w.ranLevel = lvl, true
		}
		return r
	}
	n := s.ready.Len()
	if n == 0 {
		return nil
	}
	r, _ := s.ready.Pop()
	batch := 1
	if cost := s.cost.Load(); cost < int64(batchSpan) {
		awake := max(s.live-len(s.parked), 1)
		batch = min(n/awake+1, maxBatch, int(int64(batchSpan)/cost))
	}
	if batch > 1 {
		w.mu.Lock()
		for range batch - 1 {
			x, ok := s.ready.Pop()
			if !ok {
				break
			}
			w.local.Push(x)
			w.nlocal.Add(1)
		}
		w.mu.Unlock()
	}
	return r
}

// stealLocked takes half of another worker's local queue for w (at least
// one Runnable). s.mu is held.
func (s *Scheduler) stealLocked(w *Worker) Runnable {
	n := len(s.workers)
	start := rand.IntN(n)
	for i := range n {
		v := s.workers[(start+i)%n]
		if v == nil || v == w || v.nlocal.Load() == 0 {
			continue
		}
		v.mu.Lock()
		k := (v.local.Len() + 1) / 2
		var first Runnable
		if k > 0 {
			w.mu.Lock()
			for j := range k {
				// Steal from the tail: the victim keeps the work it would
				// run next.
				x, _ := v.local.PopBack()
				v.nlocal.Add(-1)
				if j == k-1 {
					first = x
				} else {
					w.local.Push(x)
					w.nlocal.Add(1)
				}
			}
			w.mu.Unlock()
		}
		v.mu.Unlock()
		if first != nil {
			return first
		}
	}
	return nil
}

// park waits for a wake. It returns false when the worker timed out and
// left: then it is no longer counted. A waker that popped w just as the
// timer fired has sent (or will send) a wake, which park then takes.
func (s *Scheduler) park(w *Worker) bool {
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
			s.exitLocked(w)
			s.mu.Unlock()
			return false
		}
	}
	s.mu.Unlock()
	<-w.wake // popped by a waker: its wake is on the way
	return true
}

func (s *Scheduler) run(w *Worker, r Runnable) {
	w.runs.Add(1)
	defer func() {
		w.runs.Add(1)
		if s.onPanic != nil {
			if v := recover(); v != nil {
				s.onPanic(v)
			}
		}
	}()
	r.Run(w)
}
