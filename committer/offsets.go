package committer

// Offsets is one claim's offset state: a Tracker of the offsets dispatched
// since the claim started, plus the ranges its start metadata said were
// already done that the dispatcher has not reached yet.
//
// Not safe for concurrent use: the committer actor's loop owns every
// partition's Offsets.
type Offsets struct {
	tracker        *Tracker
	inherited      []Range // done ranges from the start metadata not yet passed by the dispatcher
	lastRegistered int64   // highest offset registered; start-1 before any
}

// NewOffsets starts tracking a claim whose committed position is start (-1
// when the group has none) with the ranges done above it that its metadata
// carried (see DecodeMetadata; nil when none or when it was ignored).
func NewOffsets(start int64, done []Range) *Offsets {
	return &Offsets{tracker: NewTracker(start), lastRegistered: start - 1,
		inherited: append([]Range(nil), done...)}
}

// Register records that the record at offset was dispatched. Offsets must
// increase across calls (see Tracker.Register); it reports false, changing
// nothing, when they do not.
func (o *Offsets) Register(offset int64) bool {
	if !o.tracker.Register(offset) {
		return false
	}
	o.lastRegistered = offset
	return true
}

// RegisterDone registers offset as already done: a record skipped after a
// restart, or committed at dispatch under at-most-once. It returns the
// number of entries the watermark passed.
func (o *Offsets) RegisterDone(offset int64) int64 {
	if !o.Register(offset) {
		return 0
	}
	return o.Complete(offset)
}

// Complete marks offset done and returns the number of registered entries
// the watermark passed because of it (0 when it is not at the watermark,
// or was never registered, or was done already).
func (o *Offsets) Complete(offset int64) int64 {
	before := o.tracker.Passed()
	if !o.tracker.Complete(offset) {
		return 0
	}
	return o.tracker.Passed() - before
}

// Position is what a commit stores.
type Position struct {
	Next   int64   // the next offset to read (the watermark); -1 when unknown
	Ranges []Range // offsets done above Next, ascending and disjoint
	Passed int64   // registered entries the watermark has passed since the claim started
}

// MaxPositionRanges is the most ranges of its own tracker Position returns:
// every range costs at least two bytes of metadata, so more never fit in
// MaxMetadataBytes, and the metadata keeps the lowest ranges. It bounds the
// work done under the owner's lock when a large uncommitted window is
// fragmented.
const MaxPositionRanges = MaxMetadataBytes

// Position returns the position to commit, appending its ranges to dst
// (pass dst[:0] to reuse storage). Ranges of the start metadata that the
// dispatcher has not reached are carried along: without them, a commit made
// before the dispatcher passes them would forget them, and the next owner
// would handle those records again. When nothing is in flight and the
// watermark reaches such a range, the watermark moves past it: those
// records are done.
func (o *Offsets) Position(dst []Range) Position {
	t := o.tracker
	pos := Position{Next: t.Watermark(), Ranges: t.CompletedAboveN(dst, MaxPositionRanges), Passed: t.Passed()}
	if len(o.inherited) == 0 {
		return pos
	}
	keep := o.inherited[:0]
	for _, r := range o.inherited {
		if r.Last <= o.lastRegistered {
			continue // passed: the tracker has it
		}
		keep = append(keep, r)
	}
	o.inherited = keep
	for _, r := range keep {
		r.First = max(r.First, o.lastRegistered+1)
		if t.InFlight() == 0 && r.First <= pos.Next {
			pos.Next = max(pos.Next, r.Last+1)
			continue
		}
		pos.Ranges = append(pos.Ranges, r)
	}
	return pos
}

// Watermark is the tracker's watermark (see Tracker.Watermark).
func (o *Offsets) Watermark() int64 { return o.tracker.Watermark() }

// Pending is the uncommitted window: registered entries the watermark has
// not passed.
func (o *Offsets) Pending() int { return o.tracker.Pending() }

// InFlight is the number of registered offsets not done.
func (o *Offsets) InFlight() int { return o.tracker.InFlight() }

// Passed is the number of registered entries the watermark has passed
// since the claim started.
func (o *Offsets) Passed() int64 { return o.tracker.Passed() }
