package committer

import (
	"math/bits"
	"slices"
)

const (
	// segmentGap is the widest run of unregistered offsets kept inside a
	// segment. A wider gap (a compacted topic can jump by millions) starts
	// a new segment, so that storage follows the offsets registered, not
	// the distance between them: 4096 offsets cost two bitmaps of 64 words
	// (1 KiB), about what a segment's own overhead is worth.
	segmentGap = 4096
	// compactWords is the smallest dead prefix of a segment worth copying
	// the live words down for.
	compactWords = 64
	// shrinkWords is the storage under which a segment's bitmaps are never
	// reallocated smaller: 4096 words cover 262,144 offsets in 64 KiB, so a
	// window that swings between empty and a few partition buffers' worth
	// keeps its storage instead of growing it again after every drain.
	shrinkWords = 4096
)

// segment is a run of nearby offsets as two bitmaps: bit i of word w
// stands for offset base+64w+i. Offsets that were never registered have
// neither bit.
type segment struct {
	base int64    // a multiple of 64
	reg  []uint64 // registered
	done []uint64 // registered and completed
}

// word returns the index of offset's word and its bit within it.
func (s *segment) word(offset int64) (int, uint64) {
	d := offset - s.base
	return int(d >> 6), 1 << uint(d&63)
}

// end is one past the last offset the segment's words cover.
func (s *segment) end() int64 { return s.base + 64*int64(len(s.reg)) }

// Tracker tracks the offsets of one partition from dispatch to completion
// and computes the watermark, the next offset to commit.
//
// A Tracker is not safe for concurrent use: it is owned by one goroutine (or
// kept under its owner's lock, as orderly keeps it under its partition's).
// No method blocks.
//
// Storage is two bits per offset between the watermark and the last offset
// registered (a bitmap of registered offsets and one of completed ones), so
// a window of 1,000,000 offsets costs about 250 KB whatever the order of
// completions. Gaps wider than a few thousand offsets (compacted topics)
// cost nothing: storage is split into segments around them. Register,
// Complete and Watermark are O(1); advancing the watermark costs O(1) per
// 64 offsets passed, amortized; CompletedAbove is O(offsets above the
// watermark / 64).
type Tracker struct {
	// segs are the segments holding the offsets not yet passed, in offset
	// order; segs[0] holds the watermark while anything is pending. Empty
	// when nothing is pending.
	segs []segment

	start      int64 // the start offset given to NewTracker
	watermark  int64 // the lowest registered offset not completed; valid while pending > 0
	last       int64 // the last registered offset; valid when registered
	registered bool  // whether any offset was registered
	inFlight   int   // registered offsets not completed
	pending    int   // registered offsets the watermark has not passed
	passed     int64 // registered offsets the watermark passed since NewTracker

	// spare is the emptied storage of the last segment dropped, kept for
	// the next segment (Register appends to it, overwriting its words).
	spare segment
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
	n := len(t.segs)
	if n == 0 || offset-t.last > segmentGap {
		t.segs = append(t.segs, segment{base: offset &^ 63, reg: t.spare.reg, done: t.spare.done})
		t.spare = segment{}
		n++
	}
	s := &t.segs[n-1]
	w, bit := s.word(offset)
	for len(s.reg) <= w {
		s.reg = append(s.reg, 0)
		s.done = append(s.done, 0)
	}
	s.reg[w] |= bit
	if t.pending == 0 {
		t.watermark = offset
	}
	t.pending++
	t.inFlight++
	t.last = offset
	t.registered = true
	return true
}

// find returns the segment holding offset, or nil.
func (t *Tracker) find(offset int64) *segment {
	n := len(t.segs)
	if n == 0 {
		return nil
	}
	if s := &t.segs[n-1]; offset >= s.base {
		if offset < s.end() {
			return s
		}
		return nil
	}
	i, found := slices.BinarySearchFunc(t.segs, offset, func(s segment, o int64) int {
		switch {
		case s.end() <= o:
			return -1
		case s.base > o:
			return 1
		}
		return 0
	})
	if !found {
		return nil
	}
	return &t.segs[i]
}

// Complete marks the registered offset done and advances the watermark past
// every done offset at its front. It reports false, changing nothing, when
// the offset was never registered, was already passed by the watermark, or
// was already completed.
func (t *Tracker) Complete(offset int64) bool {
	if t.pending == 0 || offset < t.watermark || offset > t.last {
		return false
	}
	s := t.find(offset)
	if s == nil {
		return false
	}
	w, bit := s.word(offset)
	if s.reg[w]&bit == 0 || s.done[w]&bit != 0 {
		return false
	}
	s.done[w] |= bit
	t.inFlight--
	if offset == t.watermark {
		t.advance()
	}
	return true
}

// advance moves the watermark from a completed offset to the next one not
// completed, counting the registered offsets it passes, and drops storage
// it no longer needs.
func (t *Tracker) advance() {
	for len(t.segs) > 0 {
		s := &t.segs[0]
		w, _ := s.word(t.watermark)
		mask := ^uint64(0) << uint((t.watermark-s.base)&63)
		for ; w < len(s.reg); w, mask = w+1, ^uint64(0) {
			if live := s.reg[w] &^ s.done[w] & mask; live != 0 {
				tz := bits.TrailingZeros64(live)
				t.pass(bits.OnesCount64(s.reg[w] & mask & (1<<uint(tz) - 1)))
				t.watermark = s.base + 64*int64(w) + int64(tz)
				t.trim(s, w)
				return
			}
			t.pass(bits.OnesCount64(s.reg[w] & mask))
		}
		// Everything in the segment is done: on to the next one.
		t.dropFirst()
		if len(t.segs) > 0 {
			t.watermark = t.segs[0].base
		}
	}
}

func (t *Tracker) pass(n int) {
	t.passed += int64(n)
	t.pending -= n
}

// trim drops s's words below word w (all passed) once they are at least as
// many as the live ones, so that the copy is paid for by the offsets that
// made them dead: amortized O(1).
func (t *Tracker) trim(s *segment, w int) {
	if w < compactWords || w < len(s.reg)-w {
		return
	}
	live := len(s.reg) - w
	if cap(s.reg) > shrinkWords && live < cap(s.reg)/4 {
		s.reg, s.done = slices.Clone(s.reg[w:]), slices.Clone(s.done[w:])
	} else {
		s.reg = s.reg[:copy(s.reg, s.reg[w:])]
		s.done = s.done[:copy(s.done, s.done[w:])]
	}
	s.base += 64 * int64(w)
}

// dropFirst removes the first segment, keeping its storage as the spare
// for the next segment unless it grew large (a burst is over: regrowing
// costs amortized O(1) per Register, as growing did).
func (t *Tracker) dropFirst() {
	first := t.segs[0]
	t.segs = slices.Delete(t.segs, 0, 1)
	if cap(first.reg) <= shrinkWords && cap(first.reg) > cap(t.spare.reg) {
		t.spare = segment{reg: first.reg[:0], done: first.done[:0]}
	}
}

// Watermark is the next offset to commit: the lowest registered offset not
// completed; when every registered offset is completed, the last registered
// offset + 1; when nothing was ever registered, the start given to
// NewTracker (which may be -1). The watermark never decreases.
func (t *Tracker) Watermark() int64 {
	switch {
	case t.pending > 0:
		return t.watermark
	case t.registered:
		return t.last + 1
	}
	return t.start
}

// InFlight is the number of registered offsets not completed.
func (t *Tracker) InFlight() int { return t.inFlight }

// Pending is the number of registered offsets the watermark has not passed:
// the in-flight ones plus those completed above the watermark.
func (t *Tracker) Pending() int { return t.pending }

// Passed is the number of registered offsets the watermark has passed since
// NewTracker.
func (t *Tracker) Passed() int64 { return t.passed }

// InFlightAt reports whether offset is registered and not completed.
func (t *Tracker) InFlightAt(offset int64) bool {
	if t.pending == 0 || offset < t.watermark || offset > t.last {
		return false
	}
	s := t.find(offset)
	if s == nil {
		return false
	}
	w, bit := s.word(offset)
	return s.reg[w]&^s.done[w]&bit != 0
}

// NextInFlight returns the lowest registered offset at or above from that
// is not completed, and false when there is none. It is O(offsets between
// from and the one found / 64).
func (t *Tracker) NextInFlight(from int64) (int64, bool) {
	if t.inFlight == 0 || from > t.last {
		return 0, false
	}
	if from <= t.watermark {
		return t.watermark, true
	}
	for i := range t.segs {
		s := &t.segs[i]
		if s.end() <= from {
			continue
		}
		lo := max(from, s.base)
		w, _ := s.word(lo)
		mask := ^uint64(0) << uint((lo-s.base)&63)
		for ; w < len(s.reg); w, mask = w+1, ^uint64(0) {
			if live := s.reg[w] &^ s.done[w] & mask; live != 0 {
				return s.base + 64*int64(w) + int64(bits.TrailingZeros64(live)), true
			}
		}
	}
	return 0, false
}

// CompletedAbove appends to dst the completed offsets above the watermark as
// ascending, disjoint, maximal ranges, and returns the extended slice; pass
// dst[:0] to reuse storage.
//
// A range covers consecutive integers, every one of them registered and
// completed. Offsets that were never registered (gaps) split ranges: with 10
// and 12 registered and completed but no 11, the ranges are [10,10] and
// [12,12]. This is the only definition under which a range never claims an
// offset the tracker did not see completed.
func (t *Tracker) CompletedAbove(dst []Range) []Range {
	return t.CompletedAboveN(dst, -1)
}

// CompletedAboveN is CompletedAbove stopping after the lowest max ranges
// (max < 0: no limit). Commit metadata keeps the lowest ranges that fit, so
// a caller that can store only so many needs no more, and a window of a
// million offsets completed every other one costs what fits, not half a
// million ranges.
func (t *Tracker) CompletedAboveN(dst []Range, max int) []Range {
	if t.pending == 0 || max == 0 {
		return dst
	}
	base, count := len(dst), 0
	for i := range t.segs {
		s := &t.segs[i]
		w, mask := 0, ^uint64(0)
		if i == 0 {
			w, _ = s.word(t.watermark)
			mask <<= uint((t.watermark - s.base) & 63)
		}
		for ; w < len(s.reg); w, mask = w+1, ^uint64(0) {
			x := s.reg[w] & s.done[w] & mask
			for x != 0 {
				lo := bits.TrailingZeros64(x)
				n := bits.TrailingZeros64(^(x >> uint(lo))) // the run of ones from lo
				first := s.base + 64*int64(w) + int64(lo)
				last := first + int64(n) - 1
				if k := len(dst); k > base && dst[k-1].Last+1 == first {
					dst[k-1].Last = last
				} else {
					if count == max {
						return dst
					}
					dst = append(dst, Range{First: first, Last: last})
					count++
				}
				if lo+n == 64 {
					break
				}
				x &^= (1<<uint(n) - 1) << uint(lo)
			}
		}
	}
	return dst
}

// storageWords is the number of bitmap words held, for tests.
func (t *Tracker) storageWords() int {
	n := cap(t.spare.reg) + cap(t.spare.done)
	for _, s := range t.segs {
		n += cap(s.reg) + cap(s.done)
	}
	return n
}
