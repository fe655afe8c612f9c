package committer

import (
	"math"
	"slices"
)

// Range is an inclusive range of offsets, First ≤ Last.
type Range struct{ First, Last int64 }

// Len is the number of offsets in r. It is 0 for an invalid range
// (First > Last).
func (r Range) Len() int64 {
	if r.First > r.Last {
		return 0
	}
	return r.Last - r.First + 1
}

// Skipper answers, for ascending offsets, whether an offset lies in a set of
// ranges: after a restart, whether a record was already completed before it
// and must not be handled again.
//
// A Skipper is not safe for concurrent use; it is owned by the goroutine that
// reads the partition. No method blocks.
type Skipper struct {
	ranges []Range // ascending, disjoint
	next   int     // ranges[:next] lie wholly below the offsets asked so far
	asked  int64   // the highest offset asked so far
}

// NewSkipper returns a Skipper for r, which must be ascending and disjoint
// with First ≤ Last, as DecodeMetadata returns them. It copies r.
func NewSkipper(r []Range) *Skipper {
	return &Skipper{ranges: slices.Clone(r), asked: math.MinInt64}
}

// Skip reports whether offset lies in one of the ranges. Offsets must be
// passed in non-decreasing order; Skip is then O(1) amortized. An offset
// lower than an earlier one may be answered false even when it lies in a
// range (it is never answered true wrongly), which at worst processes a
// record again.
func (s *Skipper) Skip(offset int64) bool {
	s.asked = max(s.asked, offset)
	for s.next < len(s.ranges) && s.ranges[s.next].Last < offset {
		s.next++
	}
	return s.next < len(s.ranges) && s.ranges[s.next].First <= offset && offset <= s.ranges[s.next].Last
}

// Done reports whether no range lies ahead: no offset above the highest one
// asked so far can be skipped. A reader can then stop asking.
func (s *Skipper) Done() bool {
	return s.next >= len(s.ranges) || s.asked >= s.ranges[len(s.ranges)-1].Last
}
