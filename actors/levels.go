package actors

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/ring"
)

// MaxLevels is the most priority levels a Scheduler has.
const MaxLevels = 8

// LevelConfig is one priority level of a Scheduler made by
// NewLevelScheduler. Level 0 is the highest.
type LevelConfig struct {
	// WIP is the most Runnables of the level running at once (its
	// work-in-progress limit). ≤ 0, or more than the scheduler's limit,
	// means the scheduler's limit.
	WIP int
	// Reserved is how many of the scheduler's slots are kept for the
	// level: a Runnable of another level never takes a slot that the
	// level's unused reservation needs, even when the level is idle.
	// Must not be negative or above WIP; the reservations of all levels
	// must leave at least one slot unreserved when some level has none.
	Reserved int
	// Share is the level's guaranteed minimum share of starts, in (0, 1],
	// or 0 for none. See NewLevelScheduler for the bound it gives.
	Share float64
}

// shareUnit is the fixed-point unit of shares and credits: a share s is
// ⌈s × shareUnit⌉ credits per start. Rounding up keeps the bound stated
// with ⌈1/s⌉ true.
const shareUnit = 1_000_000

// maxCredit caps a level's credit at two starts: a level kept from
// starting for a while (by its own WIP limit, say) catches up one start
// at once, not a burst.
const maxCredit = 2 * shareUnit

// ShareBound is the starvation bound of a level with share s among n
// levels that have a share: while the level is eligible at every start
// (it has ready work, is under its WIP limit, and a slot is free for it),
// at most ShareBound(s, n) starts in a row go to other levels. It is
// ⌈1/s⌉ + n − 2. It returns -1 for s ≤ 0 (no bound).
func ShareBound(s float64, n int) int {
	if !(s > 0) {
		return -1
	}
	q := shareCredits(s)
	return int((shareUnit+q-1)/q) + n - 2
}

func shareCredits(s float64) int64 {
	if !(s > 0) {
		return 0
	}
	return min(int64(math.Ceil(s*shareUnit)), shareUnit)
}

// levels is a leveled scheduler's state; s.mu guards all of it.
type levels struct {
	lv      []level
	running int   // Runnables running, over all levels
	due     []int // levels whose credit reached a start, in the order they got there
	scratch []Runnable
}

type level struct {
	wip, reserved int
	share         int64 // credits earned per start while eligible; 0: no share
	credit        int64
	due           bool
	ready         ring.Ring[entry]
	queued        int // live entries in ready (stale ones are skipped)
	stale         int // stale entries in ready: compacted when they outnumber the live ones
	running       int
	started       uint64
}

// entry is a queued Runnable. A Runnable with a slot (an envelope) may be
// queued again at a higher level while queued (raise); the older entry
// then carries an old stamp and is skipped when popped.
type entry struct {
	r     Runnable
	stamp uint32
}

// slot is what the scheduler keeps on a Runnable that has levels (the
// Group's envelopes). want is written by the owner (under its own lock)
// and read by the scheduler when it queues the Runnable; the other fields
// are guarded by the scheduler's mu. Once popped, at is the level the
// Runnable runs at: the worker that popped it may read it while running
// it (nothing writes at until the Runnable is queued again).
type slot struct {
	want   atomic.Uint32 // the level to queue at
	stamp  uint32        // the live entry's stamp
	queued bool          // in a ready queue now
	at     uint8         // the level queued at, then run at
}

// slotted is a Runnable with a slot.
type slotted interface {
	Runnable
	schedSlot() *slot
}

// NewLevelScheduler returns a scheduler with priority levels: a Runnable
// is queued at a level (its slot's wanted level for the Group's
// envelopes, or the level given to SubmitAt) and workers take ready work
// highest level first, within each level in FIFO order, subject to:
//
//   - each level's WIP limit: at most WIP of its Runnables run at once;
//   - reservations: a level may start a Runnable only if the slots left
//     free afterwards still cover every other level's unused reservation
//     (Reserved minus what it runs), so a level with a reservation is
//     never kept from it by any other level;
//   - minimum shares: each start, every level with a share and ready
//     work earns that share of a start as credit (up to two starts' worth);
//     a level whose credit reaches one start joins a FIFO of due levels,
//     and the first eligible due level (ready work, under its WIP limit,
//     allowed a slot) is started before any other, spending one start of
//     its credit. Starts a level gets by priority (no higher level could
//     start) cost it nothing. A level kept back by its own WIP limit thus
//     catches up when it may start again.
//
// The bound: while a level with share s is eligible at every start, at
// most ⌈1/s⌉ − 1 starts go by before it is due, and at most n − 1 due
// levels are ahead of it in the FIFO (n: levels with a share), so at most
// ShareBound(s, n) = ⌈1/s⌉ + n − 2 starts in a row go to other levels.
//
// A leveled scheduler runs one message per turn of a Group (it does not
// continue a key's next message in the same worker), so that every start
// is a scheduling decision.
//
// levels must have 1 to MaxLevels entries; an invalid configuration is a
// programmer error and panics (the engine validates its options first).
func NewLevelScheduler(limit int, idle time.Duration, onPanic PanicHandler, cfg []LevelConfig) *Scheduler {
	s := NewScheduler(limit, idle, onPanic)
	if len(cfg) < 1 || len(cfg) > MaxLevels {
		panic(fmt.Sprintf("actors: %d levels (1 to %d)", len(cfg), MaxLevels))
	}
	p := &levels{lv: make([]level, len(cfg))}
	reserved, unreserved := 0, false
	for i, c := range cfg {
		wip := c.WIP
		if wip <= 0 || wip > limit {
			wip = limit
		}
		if c.Reserved < 0 || c.Reserved > wip {
			panic(fmt.Sprintf("actors: level %d reserves %d slots (0 to its WIP %d)", i, c.Reserved, wip))
		}
		if !(c.Share >= 0 && c.Share <= 1) {
			panic(fmt.Sprintf("actors: level %d share %v (0 to 1)", i, c.Share))
		}
		reserved += c.Reserved
		unreserved = unreserved || c.Reserved == 0
		p.lv[i] = level{wip: wip, reserved: c.Reserved, share: shareCredits(c.Share)}
		p.lv[i].ready.Keep = true
	}
	if reserved > limit || (unreserved && reserved >= limit) {
		panic(fmt.Sprintf("actors: %d slots reserved of %d", reserved, limit))
	}
	s.levels = p
	return s
}

// LevelStats describes one level of a scheduler.
type LevelStats struct {
	Running int    // Runnables of the level running now
	Ready   int    // queued and waiting for a worker
	Started uint64 // started since the scheduler was made
	WIP     int    // the level's WIP limit in effect
}

// LevelStats returns each level's numbers (one level for a scheduler made
// by NewScheduler, with Started left at zero).
func (s *Scheduler) LevelStats() []LevelStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.levels == nil {
		return []LevelStats{{Running: s.live - len(s.parked) - s.searching, Ready: s.ready.Len(), WIP: s.limit}}
	}
	out := make([]LevelStats, len(s.levels.lv))
	for i := range s.levels.lv {
		l := &s.levels.lv[i]
		out[i] = LevelStats{Running: l.running, Ready: l.queued, Started: l.started, WIP: l.wip}
	}
	return out
}

// SubmitAt makes r ready at level (clamped to the scheduler's levels). A
// Runnable with a slot (a Group's envelope) is queued at its slot's level
// instead. It never blocks and is safe for concurrent use.
func (s *Scheduler) SubmitAt(r Runnable, level int) {
	s.mu.Lock()
	if s.levels == nil {
		s.ready.Push(r)
	} else {
		s.pushLevelLocked(r, level)
	}
	s.wakeLocked()
	s.mu.Unlock()
}

// pushLevelLocked queues r at its level. s.mu is held.
func (s *Scheduler) pushLevelLocked(r Runnable, lvl int) {
	p := s.levels
	var stamp uint32
	if q, ok := r.(slotted); ok {
		sl := q.schedSlot()
		lvl = int(sl.want.Load())
		if sl.queued {
			// Already queued: queued again only if higher (a raise). The
			// old entry is left behind, stale.
			if lvl >= int(sl.at) {
				return
			}
			old := &p.lv[sl.at]
			old.queued--
			old.stale++
			if old.stale > old.queued+staleSlack {
				sl.queued = false // its old entry goes with the other stale ones
				old.compact(int(sl.at))
			}
		}
		lvl = min(lvl, len(p.lv)-1)
		sl.stamp++
		sl.queued, sl.at = true, uint8(lvl)
		stamp = sl.stamp
	}
	lvl = min(max(lvl, 0), len(p.lv)-1)
	p.lv[lvl].ready.Push(entry{r: r, stamp: stamp})
	p.lv[lvl].queued++
}

// raise queues r again at its slot's wanted level if that is above the
// level it is queued at. It does nothing when r is not queued (it is
// running, waiting, or about to be submitted: its slot's level is read
// when it is). The caller may hold a Group's lock.
func (s *Scheduler) raise(r slotted) {
	s.mu.Lock()
	sl := r.schedSlot()
	if s.levels != nil && sl.queued && int(sl.want.Load()) < int(sl.at) {
		s.pushLevelLocked(r, 0)
		s.wakeLocked()
	}
	s.mu.Unlock()
}

// raiseAll queues every queued Runnable for which match is true at level
// 0, wanted level included. The caller holds the lock that guards the
// wanted levels of the Runnables it matches.
func (s *Scheduler) raiseAll(match func(Runnable) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.levels
	if p == nil {
		return
	}
	for i := len(p.lv) - 1; i > 0; i-- {
		l := &p.lv[i]
		p.scratch = p.scratch[:0]
		for j := 0; j < l.ready.Len(); j++ {
			e := l.ready.At(j)
			if q, ok := e.r.(slotted); ok && live(e, i) && match(e.r) {
				q.schedSlot().want.Store(0)
				p.scratch = append(p.scratch, e.r)
			}
		}
		for _, r := range p.scratch {
			s.pushLevelLocked(r, 0)
		}
		clear(p.scratch)
	}
	s.wakeLocked()
}

// live reports whether e, found in level lvl's queue, is the live entry
// of its Runnable.
func live(e entry, lvl int) bool {
	q, ok := e.r.(slotted)
	if !ok {
		return true
	}
	sl := q.schedSlot()
	return sl.queued && int(sl.at) == lvl && sl.stamp == e.stamp
}

// eligibleLocked returns the levels that may start a Runnable now, as a
// bit mask: ready work, under the WIP limit, and a free slot that leaves
// the other levels' unused reservations covered. s.mu is held.
func (p *levels) eligible(limit int) uint32 {
	free := limit - p.running
	if free <= 0 {
		return 0
	}
	unused := 0
	for i := range p.lv {
		unused += max(0, p.lv[i].reserved-p.lv[i].running)
	}
	var mask uint32
	for i := range p.lv {
		l := &p.lv[i]
		if l.queued == 0 || l.running >= l.wip {
			continue
		}
		if free-1 < unused-max(0, l.reserved-l.running) {
			continue
		}
		mask |= 1 << i
	}
	return mask
}

// pick chooses the level to start and takes its next live entry, or
// returns nil when no level is eligible. It counts the start. s.mu is
// held.
func (p *levels) pick(limit int) (Runnable, int) {
	mask := p.eligible(limit)
	if mask == 0 {
		return nil, 0
	}
	for i := range p.lv {
		l := &p.lv[i]
		if l.share == 0 || l.queued == 0 {
			continue
		}
		l.credit = min(l.credit+l.share, maxCredit)
		if l.credit >= shareUnit && !l.due {
			l.due = true
			p.due = append(p.due, i)
		}
	}
	chosen := -1
	for j, i := range p.due {
		if mask&(1<<i) != 0 {
			chosen = i
			p.due = append(p.due[:j], p.due[j+1:]...)
			break
		}
	}
	if chosen < 0 {
		for i := range p.lv {
			if mask&(1<<i) != 0 {
				chosen = i
				break
			}
		}
	}
	l := &p.lv[chosen]
	if l.due {
		// Taken from the due FIFO: it spends a start of credit, and goes
		// to the back if what is left covers another. (A level picked by
		// priority is never due, as a due eligible level comes first; such
		// a start, which no higher level wanted, costs it nothing.)
		l.credit -= shareUnit
		l.due = l.credit >= shareUnit
		if l.due {
			p.due = append(p.due, chosen)
		}
	}
	for {
		e, ok := l.ready.Pop()
		if !ok {
			panic("actors: a level counted ready work it did not have")
		}
		if !live(e, chosen) {
			l.stale--
			continue
		}
		if q, ok := e.r.(slotted); ok {
			sl := q.schedSlot()
			sl.queued = false
		}
		l.queued--
		l.running++
		l.started++
		p.running++
		return e.r, chosen
	}
}

// staleSlack is how many stale entries a level's queue may hold beyond
// its live ones before it is compacted. A level that is never popped (a
// lower level starved by strict priority) while its heads keep being
// raised would otherwise grow without bound.
const staleSlack = 64

// compact drops the stale entries of level lvl's queue, keeping the live
// ones in order. s.mu is held.
func (l *level) compact(lvl int) {
	n := l.ready.Len()
	for range n {
		e, _ := l.ready.Pop()
		if live(e, lvl) {
			l.ready.Push(e)
		}
	}
	l.stale = 0
}

// finished counts the end of a Runnable started at lvl. s.mu is held.
func (p *levels) finished(lvl int) {
	p.lv[lvl].running--
	p.running--
}

func (p *levels) ready() int {
	n := 0
	for i := range p.lv {
		n += p.lv[i].queued
	}
	return n
}
