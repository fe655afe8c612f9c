package committer

import "slices"

// entry is one registered offset and whether its record is done.
type entry struct {
	offset int64
	done   bool
}

const (
	// compactMin is the smallest dead prefix worth copying the live entries
	// down for; below it compaction would cost more than it saves.
	compactMin = 64
	// shrinkMin is the capacity under which storage is never reallocated
	// smaller, so that a workload whose window swings between empty and a
	// few thousand entries (a partition buffer's worth) keeps its storage
	// instead of growing it again after every drain. 16,384 entries are
	// 256 KiB.
	shrinkMin = 16384
)

// Tracker tracks the offsets of one partition from dispatch to completion
// and computes the watermark, the next offset to commit.
//
// A Tracker is not safe for concurrent use: it is owned by one goroutine (the
// partition's committer actor), which calls every method. No method blocks.
//
// Register and Watermark are O(1), Complete is O(log n) plus amortized O(1)
// for advancing the watermark, where n is Pending. Memory is proportional to
// the largest recent Pending, not to the number of offsets ever registered:
// storage of entries the watermark passed is reused.
type Tracker struct {
	// entries[head:] are the pending entries in registration order, so with
	// ascending offsets; entries[head] is never done (the watermark stops
	// there). entries[:head] are dead and reclaimed by compaction.
	entries []entry
	head    int

	start      int64 // the start offset given to NewTracker
	last       int64 // the last registered offset; valid when registered
	registered bool  // whether any offset was registered
	inFlight   int   // pending entries not done
	passed     int64 // entries the watermark passed since NewTracker
}

// NewTracker returns a tracker for a partition whose committed next offset is
// start, or -1 when it is unknown (no commit, offset reset pending).
func NewTracker(start int64) *Tracker {
	if start < -1 {
		start = -1
	}
	return &Tracker{start: start}
}

// Register records that the record at offset was dispatched. Offsets must be
// non-negative and strictly increase across calls, and must not be below the
// start given to NewTracker when that is known; gaps are allowed (compaction
// and transaction markers leave them). Register reports false and changes
// nothing when the offset breaks these rules.
func (t *Tracker) Register(offset int64) bool {
	switch {
	case offset < 0:
		return false
	case t.registered && offset <= t.last:
		return false
	case !t.registered && t.start >= 0 && offset < t.start:
		return false
	}
	t.entries = append(t.entries, entry{offset: offset})
	t.last = offset
	t.registered = true
	t.inFlight++
	return true
}

// Complete marks the registered offset done and advances the watermark past
// every done offset at its front. It reports false, changing nothing, when
// the offset was never registered, was already passed by the watermark, or
// was already completed.
func (t *Tracker) Complete(offset int64) bool {
	pending := t.entries[t.head:]
	if len(pending) == 0 {
		return false
	}
	// Offsets are usually contiguous: then the entry is found at once.
	if i := offset - pending[0].offset; i >= 0 && i < int64(len(pending)) && pending[i].offset == offset {
		return t.completeAt(pending, int(i))
	}
	i, found := slices.BinarySearchFunc(pending, offset, func(e entry, o int64) int {
		switch {
		case e.offset < o:
			return -1
		case e.offset > o:
			return 1
		}
		return 0
	})
	if !found {
		return false
	}
	return t.completeAt(pending, i)
}

func (t *Tracker) completeAt(pending []entry, i int) bool {
	if pending[i].done {
		return false
	}
	pending[i].done = true
	t.inFlight--
	if i == 0 {
		t.advance()
	}
	return true
}

// advance pops done entries from the front and reclaims dead storage.
func (t *Tracker) advance() {
	for t.head < len(t.entries) && t.entries[t.head].done {
		t.head++
		t.passed++
	}
	live := len(t.entries) - t.head
	switch {
	case live == 0:
		if cap(t.entries) > shrinkMin {
			// A burst is over: give its storage back. Regrowing costs
			// amortized O(1) per Register, like the growth did.
			t.entries = nil
		} else {
			t.entries = t.entries[:0]
		}
		t.head = 0
	case t.head >= compactMin && t.head >= live:
		// The dead prefix is at least as large as the live part, so the
		// copy is paid for by the pops that made it: amortized O(1).
		if cap(t.entries) > shrinkMin && live < cap(t.entries)/4 {
			t.entries = slices.Clone(t.entries[t.head:])
		} else {
			t.entries = t.entries[:copy(t.entries, t.entries[t.head:])]
		}
		t.head = 0
	}
}

// Watermark is the next offset to commit: the lowest registered offset not
// completed; when every registered offset is completed, the last registered
// offset + 1; when nothing was ever registered, the start given to
// NewTracker (which may be -1). The watermark never decreases.
func (t *Tracker) Watermark() int64 {
	switch {
	case t.head < len(t.entries):
		return t.entries[t.head].offset
	case t.registered:
		return t.last + 1
	}
	return t.start
}

// InFlight is the number of registered offsets not completed.
func (t *Tracker) InFlight() int { return t.inFlight }

// Pending is the number of registered offsets the watermark has not passed:
// the in-flight ones plus those completed above the watermark.
func (t *Tracker) Pending() int { return len(t.entries) - t.head }

// Passed is the number of registered offsets the watermark has passed since
// NewTracker.
func (t *Tracker) Passed() int64 { return t.passed }

// CompletedAbove appends to dst the completed offsets above the watermark as
// ascending, disjoint, maximal ranges, and returns the extended slice; pass
// dst[:0] to reuse storage.
//
// A range covers consecutive integers, every one of them registered and
// completed. Offsets that were never registered (gaps) split ranges: with 10
// and 12 registered and completed but no 11, the ranges are [10,10] and
// [12,12]. This is the only definition under which a range never claims an
// offset the tracker did not see completed. CompletedAbove is O(Pending).
func (t *Tracker) CompletedAbove(dst []Range) []Range {
	base := len(dst)
	for _, e := range t.entries[t.head:] {
		if !e.done {
			continue
		}
		if n := len(dst); n > base && dst[n-1].Last+1 == e.offset {
			// Offsets strictly increase, so an adjacent offset means no
			// registered, unfinished offset lies between.
			dst[n-1].Last = e.offset
			continue
		}
		dst = append(dst, Range{First: e.offset, Last: e.offset})
	}
	return dst
}
