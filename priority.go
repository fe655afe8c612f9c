package orderly

import (
	"errors"
	"math"
	"sort"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/backpressure"
)

// MaxPriorityLevels is the most levels WithPriorities accepts.
const MaxPriorityLevels = actors.MaxLevels

// UnlimitedWIP as PriorityLevel.WIP lets a level use every slot of the
// engine's concurrency (WithMaxConcurrency).
const UnlimitedWIP = -1

// PriorityLevel configures one priority level (see WithPriorities). Level
// 0 is the highest.
type PriorityLevel struct {
	// WIP is the level's work-in-progress limit: the most calls (handler
	// calls, or a failed record's fallback or dead-letter write) running
	// at this level at once, inherited ones included. Required: ≥ 1, or
	// UnlimitedWIP; a value above the engine's concurrency means the
	// concurrency. Little's law sizes it: a level that must sustain λ
	// records a second with handlers of mean latency W needs WIP ≥ λ × W.
	WIP int

	// Reserved is the share of the engine's concurrency kept for this
	// level, in [0, 1]: ⌈Reserved × concurrency⌉ slots that no other level
	// takes, even while this level is idle, so that its records start at
	// once when they come. The reserved slots must fit in the level's WIP
	// limit, and the reservations together must fit in the concurrency,
	// leaving at least one slot unreserved if some level has none. Default
	// 0: none.
	Reserved float64

	// MinShare is the share of handler starts the level is guaranteed,
	// in [0, 1], while higher levels flood. The bound: a level with
	// MinShare m that has records ready, is under its WIP limit and may
	// take a free slot at every start waits at most ⌈1/m⌉ + s − 2 starts of
	// other levels in a row, where s is the number of levels with a
	// MinShare (see PriorityLevel.StarvationBound). The level earns its
	// share of every start while it has records ready, even while its own
	// WIP limit holds it back, and catches up one start when it may start
	// again. The shares together must not pass 1. Default 0: none (strict
	// priority: the level runs only when no higher level can).
	MinShare float64

	// Buffer is the level's own slice of the engine buffer
	// (WithEngineBuffer), as a share in (0, 1]: the records of this level
	// hold credit from this slice and no other, so a flood of one level
	// never takes the credit another needs. A partition that waits for a
	// full slice is paused (PausePriorityRecords, PausePriorityBytes). The
	// slices together must not pass 1. Default 0: the part of the engine
	// buffer the other levels' Buffer leave, split among the levels left
	// at 0 in proportion to n − level for n levels (the lower the level,
	// the smaller its slice, so under equal load lower levels pause first).
	Buffer float64
}

// StarvationBound is the most handler starts in a row that may go to
// other levels while a level with this MinShare has records ready, is
// under its WIP limit and may take a free slot, when withShare of the
// engine's levels have a MinShare: ⌈1/MinShare⌉ + withShare − 2. It is -1
// when MinShare is 0: no bound.
func (l PriorityLevel) StarvationBound(withShare int) int {
	return actors.ShareBound(l.MinShare, withShare)
}

// PriorityOf says how a record's priority level is found: from its topic
// (PriorityByTopic), from a header (PriorityByHeader) or by a function
// (PriorityFunc). A record whose level cannot be determined runs at the
// lowest level, and its partition logs a warning (at most one every ten
// seconds per partition, with the number of such records in between).
type PriorityOf struct {
	name   string
	topics map[string]int
	header string
	values map[string]int
	fn     func(*Record) (int, bool)
}

// PriorityByTopic gives each topic's records a level: the usual way, with
// one topic per level (reports.paid, reports.free, reports.cron) consumed
// by one engine. Every level in the map must exist (New checks); records
// of a topic not in the map run at the lowest level.
func PriorityByTopic(levels map[string]int) PriorityOf {
	return PriorityOf{name: "PriorityByTopic", topics: levels}
}

// PriorityByHeader gives a record the level its header name's value maps
// to (the last header of that name). Every level in the map must exist
// (New checks); a record without the header, or with a value not in the
// map, runs at the lowest level.
func PriorityByHeader(name string, levels map[string]int) PriorityOf {
	return PriorityOf{name: "PriorityByHeader", header: name, values: levels}
}

// PriorityFunc gives a record the level f returns (a key prefix, a field
// of the value...). ok == false, a level that does not exist, or a panic
// means undetermined: the lowest level. f is called on its partition's
// dispatcher when the record is first read, and again when a record of a
// spilled key is read back from the log (see KeyOverflowSpill); it must be quick, safe for concurrent use
// across partitions, and must not modify the record.
func PriorityFunc(f func(r *Record) (level int, ok bool)) PriorityOf {
	return PriorityOf{name: "PriorityFunc", fn: f}
}

// WithPriorities gives records priority levels, levels[0] the highest,
// found by of. Handler calls are then started highest level first, each
// level within its WIP limit, its reservation and the minimum shares, and
// each level's records hold credit from their own slice of the engine
// buffer (see PriorityLevel). Without it, records run in the order they
// become ready, as one level.
//
// Key order wins over priority: a record never overtakes an earlier record
// of its key (ByKey, ByKeyFunc, ByKeys, Serial). Instead, a record runs at
// the highest level of every record waiting for it on its keys, directly
// or through other records (priority inheritance), so a high-priority
// record is never stuck behind a low-priority head waiting for a
// low-priority slot; the inherited call counts against the higher level's
// WIP limit. Hooks see both levels in RecordInfo (Priority, RunPriority).
//
// A partition still reads its records in log order: a high-priority
// record behind lower ones in the same partition is reached only as the
// partition's buffer lets the dispatcher read that far. Priorities from
// the topic (PriorityByTopic, a topic per level) avoid that; with levels
// mixed in a partition, give it a partition buffer that holds what is
// ahead of the high-priority records.
//
// levels must hold 1 to MaxPriorityLevels levels, each with a WIP limit;
// New checks the levels against the concurrency and the engine buffer and
// returns an error wrapping ErrInvalidOption for any that does not fit.
func WithPriorities(of PriorityOf, levels ...PriorityLevel) Option {
	return func(c *config) {
		c.priorities = &priorityConfig{of: of, levels: append([]PriorityLevel(nil), levels...)}
	}
}

// priorityConfig is WithPriorities' arguments, checked by New.
type priorityConfig struct {
	of     PriorityOf
	levels []PriorityLevel
	// Derived by check:
	sched   []actors.LevelConfig
	records []int64 // each level's slice of the engine buffer
	bytes   []int64
}

// check validates the levels against the final configuration and derives
// the scheduler's levels and the buffer slices.
func (pc *priorityConfig) check(c *config) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, invalid("WithPriorities: "+format, args...))
	}
	n := len(pc.levels)
	if n < 1 || n > MaxPriorityLevels {
		bad("%d levels: give 1 to %d", n, MaxPriorityLevels)
		return errors.Join(errs...)
	}
	exists := func(what string, m map[string]int) {
		names := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if l := m[name]; l < 0 || l >= n {
				bad("%s %q maps to level %d, which does not exist (0 to %d)", what, name, l, n-1)
			}
		}
	}
	switch of := pc.of; {
	case of.topics != nil:
		exists("topic", of.topics)
	case of.values != nil || of.header != "":
		if of.header == "" {
			bad("PriorityByHeader needs a header name")
		}
		exists("header value", of.values)
	case of.fn != nil:
	default:
		bad("no level source: give PriorityByTopic, PriorityByHeader or PriorityFunc with a non-nil map or function")
	}

	conc := c.concurrency
	pc.sched = make([]actors.LevelConfig, n)
	var reserved int
	var shares, buffers float64
	unreserved := false
	for i, l := range pc.levels {
		wip := l.WIP
		switch {
		case wip == UnlimitedWIP:
			wip = conc
		case wip == 0:
			bad("level %d has no WIP limit: give 1 or more, or UnlimitedWIP", i)
		case wip < 0:
			bad("level %d WIP %d: give 1 or more, or UnlimitedWIP", i, wip)
		}
		wip = min(wip, conc)
		slots := 0
		switch r := l.Reserved; {
		case !(r >= 0 && r <= 1):
			bad("level %d Reserved %v: must be in [0, 1]", i, r)
		case r > 0:
			slots = int(math.Ceil(r*float64(conc) - 1e-9))
			if wip > 0 && slots > wip {
				bad("level %d reserves %d slots (%v of concurrency %d), more than its WIP limit %d", i, slots, r, conc, wip)
			}
		}
		if !(l.MinShare >= 0 && l.MinShare <= 1) {
			bad("level %d MinShare %v: must be in [0, 1]", i, l.MinShare)
		}
		if !(l.Buffer >= 0 && l.Buffer <= 1) {
			bad("level %d Buffer %v: must be in [0, 1]", i, l.Buffer)
		}
		reserved += slots
		unreserved = unreserved || slots == 0
		shares += l.MinShare
		buffers += l.Buffer
		pc.sched[i] = actors.LevelConfig{WIP: max(wip, 1), Reserved: min(slots, max(wip, 1)), Share: l.MinShare}
	}
	const eps = 1e-9
	if reserved > conc {
		bad("the levels reserve %d slots, more than the concurrency %d", reserved, conc)
	} else if unreserved && reserved >= conc {
		bad("the levels reserve all %d slots: a level without a reservation could never run", conc)
	}
	if shares > 1+eps {
		bad("the MinShares add up to %v, over 1", shares)
	}
	if buffers > 1+eps {
		bad("the Buffer shares add up to %v, over 1", buffers)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Buffer slices: explicit shares first, then the rest by weight.
	share := make([]float64, n)
	weights := 0
	for i, l := range pc.levels {
		share[i] = l.Buffer
		if l.Buffer == 0 {
			weights += n - i
		}
	}
	rest := max(0, 1-buffers)
	pc.records, pc.bytes = make([]int64, n), make([]int64, n)
	for i, l := range pc.levels {
		if l.Buffer == 0 {
			if rest <= eps {
				bad("level %d has no Buffer and the others' take the whole engine buffer", i)
				continue
			}
			share[i] = rest * float64(n-i) / float64(weights)
		}
		pc.records[i] = max(1, int64(share[i]*float64(c.engine.records)))
		pc.bytes[i] = max(1, int64(share[i]*float64(c.engine.bytes)))
	}
	return errors.Join(errs...)
}

// priorities is an engine's priority state: the source of levels and
// each level's slice of the engine buffer. Immutable after New, apart from
// the credits.
type priorities struct {
	of      PriorityOf
	n       int
	records []*backpressure.Pool
	bytes   []*backpressure.Pool
}

func newPriorities(e *Engine, pc *priorityConfig) *priorities {
	pr := &priorities{of: pc.of, n: len(pc.levels)}
	for i := range pc.levels {
		rr, rb := backpressure.ReasonLevelRecords(i), backpressure.ReasonLevelBytes(i)
		pr.records = append(pr.records, backpressure.NewPool(pc.records[i], lowMark(pc.records[i], e.cfg.lowMark),
			func() { e.resumeAll(rr) }))
		pr.bytes = append(pr.bytes, backpressure.NewPool(pc.bytes[i], lowMark(pc.bytes[i], e.cfg.lowMark),
			func() { e.resumeAll(rb) }))
	}
	return pr
}

// newScheduler makes the engine's scheduler: with a level per priority
// level when WithPriorities is given.
func newScheduler(cfg *config, onPanic actors.PanicHandler) *actors.Scheduler {
	if cfg.priorities == nil {
		return actors.NewScheduler(cfg.concurrency, 0, onPanic)
	}
	return actors.NewLevelScheduler(cfg.concurrency, 0, onPanic, cfg.priorities.sched)
}

// release gives back a finished record's level credits.
func (pr *priorities) release(level uint8, size int64) {
	pr.records[level].Release(1)
	pr.bytes[level].Release(size)
}

// LevelStats describes one priority level (WithPriorities).
type LevelStats struct {
	Level int
	// InFlight is the calls running at this level now: handler calls
	// (and a failed record's fallback or dead-letter write), inherited
	// ones included.
	InFlight int
	// Ready is the records ready to run at this level and waiting for a
	// slot (a WIP limit, a reservation, or no free slot).
	Ready int
	// HeldRecords and HeldBytes are what the level's records hold of its
	// slice of the engine buffer: dispatched and not finished.
	HeldRecords int64
	HeldBytes   int64
	// Started counts the calls started at this level since New.
	Started uint64
	// WIP is the level's WIP limit in effect, and Buffer its slice of the
	// engine buffer.
	WIP    int
	Buffer Limits
}

// levelStats reports each level; nil without priorities.
func (e *Engine) levelStats() []LevelStats {
	if e.prio == nil {
		return nil
	}
	sched := e.sched.LevelStats()
	out := make([]LevelStats, e.prio.n)
	for i := range out {
		out[i] = LevelStats{
			Level: i, InFlight: sched[i].Running, Ready: sched[i].Ready, Started: sched[i].Started, WIP: sched[i].WIP,
			HeldRecords: e.prio.records[i].Held(), HeldBytes: e.prio.bytes[i].Held(),
			Buffer: Limits{Records: e.prio.records[i].High(), Bytes: e.prio.bytes[i].High()},
		}
	}
	return out
}

// undeterminedEvery is how often a partition logs records whose level
// could not be determined.
const undeterminedEvery = 10 * time.Second
