package spill

import (
	"math"

	"github.com/orderly-go/orderly/committer"
)

// Keys is what State needs to know of the key actors, read under the
// owner's lock.
type Keys interface {
	// Over reports whether key is over its buffer: it reached its high
	// mark and has not yet fallen back to its low mark.
	Over(key uint64) bool
	// Idle reports whether key holds nothing: no record queued or running.
	Idle(key uint64) bool
}

// State is one partition's spilled keys and re-read. The zero value is not
// usable; make one with New.
type State struct {
	keys    map[uint64]*key
	dropped *committer.Tracker // offsets dropped and not yet handed back
	next    int64              // one past the last offset the dispatcher dispatched (Advance)

	// The pass, while reading.
	reading   bool
	pos       int64 // the next offset the pass looks at
	members   int   // keys taking part
	delivered int64 // records handed back by this pass

	// events counts key events and spills (things that may let a pass do
	// more than the last one did); futile is set when a pass ended
	// without handing anything back or bringing a key back, with the
	// events count when it started, so that the same futile pass is not
	// started again until something changed.
	events       uint64
	futile       bool
	futileEvents uint64
	passEvents   uint64
}

type key struct {
	behind int64 // at or below every record of the key dropped and not yet handed back
	member bool  // taking part in the running pass
}

// New returns an empty State.
func New() *State {
	return &State{keys: make(map[uint64]*key), dropped: committer.NewTracker(-1), next: -1}
}

// Spilled is the number of keys spilled now.
func (s *State) Spilled() int { return len(s.keys) }

// IsSpilled reports whether key is spilled.
func (s *State) IsSpilled(key uint64) bool { return s.keys[key] != nil }

// Dropped is the number of records dropped and not yet handed back.
func (s *State) Dropped() int { return s.dropped.InFlight() }

// Reading reports whether a pass is running.
func (s *State) Reading() bool { return s.reading }

// Advance tells the dispatcher's position: it has dispatched (queued,
// dropped or registered as done) every record below next. It never moves
// back.
func (s *State) Advance(next int64) {
	if next > s.next {
		s.next = next
	}
}

// Dispatch decides what the dispatcher does with the record at offset with
// the given keys, which it was about to queue: it must drop it when drop
// is true. The dispatcher calls it, in offset order and before Advance
// passes the offset, for every record of a key that is spilled or over
// (calling it for others is harmless). A record with a key spilled or over
// is dropped and spills every key of it that was not spilled yet (spilled
// counts them); wake reports that one of them can take records now, so a
// pass may start. A record the dispatcher already passed, or an offset out
// of order, is never dropped.
func (s *State) Dispatch(offset int64, keys []uint64, k Keys) (drop bool, spilled int, wake bool) {
	if len(keys) == 0 || offset < s.next {
		return false, 0, false
	}
	hit := false
	for _, kh := range keys {
		if s.keys[kh] != nil || k.Over(kh) {
			hit = true
			break
		}
	}
	if !hit || !s.dropped.Register(offset) {
		return false, 0, false
	}
	for _, kh := range keys {
		if s.keys[kh] != nil {
			continue
		}
		s.keys[kh] = &key{behind: offset, member: s.reading}
		if s.reading {
			s.members++
		}
		spilled++
		s.events++
		if !k.Over(kh) {
			wake = true
		}
	}
	return true, spilled, wake
}

// KeyEvent notes that key fell back to its low mark or became idle. It
// reports whether the key is spilled (a pass may now start, or a waiting
// one go on).
func (s *State) KeyEvent(key uint64) bool {
	if s.keys[key] == nil {
		return false
	}
	s.events++
	return true
}

// Start begins a pass when none is running and a spilled key can take
// records: from is the lowest offset such a key waits for, where the pass
// must read from. A pass that ended without doing anything is not started
// again until a key event or a spill.
func (s *State) Start(k Keys) (from int64, ok bool) {
	if s.reading || len(s.keys) == 0 || (s.futile && s.events == s.futileEvents) {
		return 0, false
	}
	from = math.MaxInt64
	for kh, st := range s.keys {
		if st.behind < from && !k.Over(kh) {
			from = st.behind
		}
	}
	if from == math.MaxInt64 {
		return 0, false
	}
	s.reading, s.pos, s.members, s.delivered, s.passEvents = true, from, 0, 0, s.events
	for _, st := range s.keys {
		st.member = st.behind >= from
		if st.member {
			s.members++
		}
	}
	return from, true
}

// Pos is the next offset the running pass looks at.
func (s *State) Pos() int64 { return s.pos }

// Look is what the pass does with a record it read.
type Look uint8

const (
	// Skip: the record is not a dropped one (it was queued from memory,
	// or handed back already): go on.
	Skip Look = iota
	// Dropped: a dropped record: get its keys and Decide.
	Dropped
	// CaughtUp: the pass reached the dispatcher; call Finish.
	CaughtUp
)

// Look is the pass's first step for each record it reads, in offset order.
// Dropped records the pass went past without reading (the log no longer
// has them: retention or compaction removed them) are forgotten and given
// to vanished, which must mark them done (they cannot be handled again).
func (s *State) Look(offset int64, vanished func(offset int64)) Look {
	if !s.reading || offset < s.pos {
		return Skip // a stream that repeats itself: read already
	}
	s.vanish(min(offset, s.next), vanished)
	if offset >= s.next {
		return CaughtUp
	}
	if s.dropped.InFlightAt(offset) {
		s.pos = offset // Decide moves past it, once decided
		return Dropped
	}
	s.pos = offset + 1
	return Skip
}

// vanish forgets the dropped offsets in [pos, end).
func (s *State) vanish(end int64, vanished func(int64)) {
	for {
		o, ok := s.dropped.NextInFlight(s.pos)
		if !ok || o >= end {
			return
		}
		s.dropped.Complete(o)
		if vanished != nil {
			vanished(o)
		}
		s.pos = o + 1
	}
}

// CaughtUp reports whether the running pass has looked at every offset
// the dispatcher dispatched; then call Finish.
func (s *State) CaughtUp() bool { return s.reading && s.pos >= s.next }

// Decision is what the pass does with a dropped record.
type Decision uint8

const (
	// Deliver: hand the record to its keys now, under the same lock hold.
	// The record is no longer dropped.
	Deliver Decision = iota
	// Pass: leave the record dropped; its keys are spilled again from it,
	// for a later pass.
	Pass
	// Wait: one of its keys is full and no other spilled key is idle:
	// wait for a key event (or a spill) and Decide again.
	Wait
)

// Decide is the pass's step for a record Look called Dropped, with the
// record's keys. Keys of the record that are not spilled are ignored (a
// key function that returned other keys when the record was dropped).
func (s *State) Decide(offset int64, keys []uint64, k Keys) Decision {
	full := false
	for _, kh := range keys {
		st := s.keys[kh]
		switch {
		case st == nil:
		case !st.member:
			return s.respill(offset, keys)
		case k.Over(kh):
			full = true
		}
	}
	if full && !s.starving(keys, k) {
		return Wait
	}
	if full {
		return s.respill(offset, keys)
	}
	s.dropped.Complete(offset)
	s.delivered++
	s.pos = offset + 1
	return Deliver
}

// starving reports whether a spilled key other than keys holds nothing:
// waiting for a full key would then keep it waiting too.
func (s *State) starving(keys []uint64, k Keys) bool {
outer:
	for kh := range s.keys {
		for _, own := range keys {
			if own == kh {
				continue outer
			}
		}
		if k.Idle(kh) {
			return true
		}
	}
	return false
}

// respill takes the record's keys out of the pass: they wait for a later
// one, from this record.
func (s *State) respill(offset int64, keys []uint64) Decision {
	for _, kh := range keys {
		if st := s.keys[kh]; st != nil && st.member {
			st.member = false
			st.behind = offset
			s.members--
		}
	}
	s.pos = offset + 1
	return Pass
}

// Members is the number of keys taking part in the running pass. A pass
// with none left has nothing to do: Stop it.
func (s *State) Members() int { return s.members }

// Delivered is the number of records the running (or last) pass handed
// back.
func (s *State) Delivered() int64 { return s.delivered }

// Finish ends a pass that caught up: its members are no longer spilled
// (every record dropped with them was handed back), and it returns how
// many. Keys that left the pass stay spilled.
func (s *State) Finish() (back int) {
	for kh, st := range s.keys {
		if st.member {
			delete(s.keys, kh)
			back++
		}
	}
	s.end(back == 0 && s.delivered == 0)
	return back
}

// Stop ends a pass that has no members left: they all stay spilled,
// waiting from where they left it. If it handed nothing back, the same
// pass is not started again until a key event or a spill.
func (s *State) Stop() {
	s.leave()
	s.end(s.delivered == 0)
}

// Abort ends a pass that could not go on (its stream failed): its members
// stay spilled, waiting from the pass's position, and a new pass may start
// at once.
func (s *State) Abort() {
	s.leave()
	s.end(false)
}

func (s *State) leave() {
	for _, st := range s.keys {
		if st.member {
			st.member = false
			st.behind = max(st.behind, s.pos)
		}
	}
}

func (s *State) end(futile bool) {
	s.reading, s.members = false, 0
	s.futile, s.futileEvents = futile, s.passEvents
}
