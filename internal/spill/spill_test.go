package spill_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/orderly-go/orderly/internal/spill"
)

// sim is a partition in miniature, driven step by step: a log of records
// with keys, a dispatcher, key queues with a high and a low mark (a record
// runs when it heads the queue of each of its keys), and the re-reader as
// the engine runs it (a loop that starts passes, reads the log from their
// start, and waits for a wake-up when told to). Every step is one of the
// moves the real goroutines make under the partition's lock, so any
// interleaving of the dispatcher, the re-reader and the handlers is one
// sequence of steps.
type sim struct {
	t        require.TestingT
	s        *spill.State
	keys     [][]uint64 // per offset
	vanished map[int64]bool
	high     int
	low      int

	main    int64 // next offset the dispatcher dispatches
	queues  map[uint64][]int64
	over    map[uint64]bool
	handled map[uint64][]int64 // per key, offsets handled in order
	times   map[int64]int      // offset -> times handled
	gone    map[int64]bool     // offsets reported vanished

	// The re-reader.
	woken   bool  // a wake-up is pending (the engine's one-slot channel)
	reading bool  // in a pass
	stream  int64 // the next offset its stream returns
	waiting int64 // a dropped record waiting on a full key; -1 if none

	respills int     // dropped records a pass left for a later one
	starts   []int64 // where each pass started
}

func newSim(t require.TestingT, keys [][]uint64, vanished map[int64]bool, high, low int) *sim {
	return &sim{t: t, s: spill.New(), keys: keys, vanished: vanished, high: high, low: low,
		queues: map[uint64][]int64{}, over: map[uint64]bool{}, handled: map[uint64][]int64{},
		times: map[int64]int{}, gone: map[int64]bool{}, waiting: -1}
}

// The Keys the state sees.
func (m *sim) Over(k uint64) bool { return m.over[k] }
func (m *sim) Idle(k uint64) bool { return len(m.queues[k]) == 0 }

func (m *sim) queue(o int64) {
	for _, k := range dedupe(m.keys[o]) {
		m.queues[k] = append(m.queues[k], o)
		if len(m.queues[k]) >= m.high && !m.over[k] {
			m.over[k] = true
		}
		require.LessOrEqual(m.t, len(m.queues[k]), m.high, "key %d holds more than its buffer", k)
	}
	if len(m.keys[o]) == 0 {
		m.complete(o) // unordered: runs at once
	}
}

// dispatch is the dispatcher's move for its next record.
func (m *sim) dispatch() bool {
	if m.main >= int64(len(m.keys)) {
		return false
	}
	o := m.main
	m.main++
	anyOver := false
	for _, v := range m.over {
		anyOver = anyOver || v
	}
	drop := false
	if m.s.Spilled() > 0 || anyOver {
		var wake bool
		drop, _, wake = m.s.Dispatch(o, m.keys[o], m)
		m.woken = m.woken || wake
	}
	if !drop {
		m.queue(o)
	}
	m.s.Advance(o + 1)
	return true
}

// runnable lists the records heading every one of their keys' queues.
func (m *sim) runnable() []int64 {
	var out []int64
	for _, q := range m.queues {
		if len(q) == 0 {
			continue
		}
		o := q[0]
		heads := true
		for _, k := range m.keys[o] {
			heads = heads && m.queues[k][0] == o
		}
		if heads && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// complete handles o and pops it from its keys, with the key events the
// group reports while keys are spilled.
func (m *sim) complete(o int64) {
	m.times[o]++
	require.Equal(m.t, 1, m.times[o], "offset %d handled twice", o)
	for _, k := range dedupe(m.keys[o]) {
		prev := m.handled[k]
		require.True(m.t, len(prev) == 0 || prev[len(prev)-1] < o, "key %d: offset %d after %v", k, o, prev)
		m.handled[k] = append(prev, o)
		if len(m.queues[k]) == 0 {
			continue
		}
		require.Equal(m.t, o, m.queues[k][0])
		m.queues[k] = m.queues[k][1:]
		event := false
		if m.over[k] && len(m.queues[k]) <= m.low {
			m.over[k] = false
			event = true
		}
		if event || len(m.queues[k]) == 0 {
			if m.s.KeyEvent(k) {
				m.woken = true
			}
		}
	}
}

// reread is one move of the re-reader; false when it is blocked (waiting
// for a wake-up, or at the end of the log).
func (m *sim) reread() bool {
	switch {
	case !m.reading:
		if !m.woken {
			return false
		}
		m.woken = false
		from, ok := m.s.Start(m)
		if !ok {
			return true // back to waiting
		}
		m.reading, m.stream = true, from
		m.starts = append(m.starts, from)
		// The engine loops back to Start without waiting after a pass,
		// so model that as a wake-up when the pass ends (see endPass).
		return true
	case m.waiting >= 0:
		if !m.woken {
			return false
		}
		m.woken = false
		m.decide(m.waiting)
		return true
	}
	for m.stream < int64(len(m.keys)) && m.vanished[m.stream] {
		m.stream++ // the log lost it
	}
	if m.stream >= int64(len(m.keys)) {
		return false // the stream waits for more records
	}
	o := m.stream
	m.stream++
	switch m.s.Look(o, func(v int64) { m.gone[v] = true }) {
	case spill.CaughtUp:
		m.finish()
		return true
	case spill.Dropped:
		m.decide(o)
		return true
	}
	m.after()
	return true
}

func (m *sim) decide(o int64) {
	m.waiting = -1
	switch m.s.Decide(o, m.keys[o], m) {
	case spill.Wait:
		m.waiting = o
		return
	case spill.Deliver:
		m.queue(o)
	case spill.Pass:
		m.respills++
	}
	m.after()
}

// after is the pass's check after each record.
func (m *sim) after() {
	switch {
	case m.s.CaughtUp():
		m.finish()
	case m.s.Members() == 0:
		m.s.Stop()
		m.endPass()
	}
}

func (m *sim) finish() {
	m.s.Finish()
	m.endPass()
}

func (m *sim) endPass() {
	m.reading, m.waiting = false, -1
	m.woken = true // the engine tries Start again at once
}

// settle runs every possible move, the handlers in offset order, until
// none is left; records of stuck keys do not run.
func (m *sim) settle(stuck map[uint64]bool) {
	for moves := 0; ; moves++ {
		require.Less(m.t, moves, 100*len(m.keys)+1000, "no end in sight: a re-reader spinning?")
		progress := false
		for m.dispatch() {
			progress = true
		}
		for i := 0; m.reread(); i++ {
			require.Less(m.t, i, 100*len(m.keys)+1000, "the re-reader spins")
			progress = true
		}
		for _, o := range m.runnable() {
			if !m.stuck(o, stuck) {
				m.complete(o)
				progress = true
				break
			}
		}
		if !progress {
			return
		}
	}
}

func (m *sim) stuck(o int64, stuck map[uint64]bool) bool {
	for _, k := range m.keys[o] {
		if stuck[k] {
			return true
		}
	}
	return false
}

// checkNotStalled states that stuck keys stall only what must wait for
// them: once everything else settled, every record ran except those of a
// stuck key and those behind such a record in one of their keys' order.
func (m *sim) checkNotStalled(stuck map[uint64]bool) {
	blocked := map[uint64]bool{} // keys with a blocked record so far
	for o := range int64(len(m.keys)) {
		b := m.stuck(o, stuck)
		for _, k := range m.keys[o] {
			b = b || blocked[k]
		}
		if b {
			for _, k := range m.keys[o] {
				blocked[k] = true
			}
			continue
		}
		if m.gone[o] {
			continue
		}
		require.Equal(m.t, 1, m.times[o], "offset %d (keys %v) is stalled: no stuck key orders it, yet it did not run", o, m.keys[o])
	}
}

// check states the guarantees once everything settled: every record was
// handled exactly once, or vanished from the log while dropped; per key,
// in offset order.
func (m *sim) check() {
	for o := range int64(len(m.keys)) {
		switch {
		case m.gone[o]:
			require.True(m.t, m.vanished[o], "offset %d reported vanished but the log has it", o)
			require.Zero(m.t, m.times[o], "offset %d vanished and handled", o)
		default:
			require.Equal(m.t, 1, m.times[o], "offset %d handled %d times (dropped and never read back?)", o, m.times[o])
		}
	}
	want := map[uint64][]int64{}
	for o, ks := range m.keys {
		if m.gone[int64(o)] {
			continue
		}
		for _, k := range dedupe(ks) {
			want[k] = append(want[k], int64(o))
		}
	}
	require.Equal(m.t, want, m.handled, "per-key order")
	require.Zero(m.t, m.s.Spilled(), "keys still spilled after everything settled")
	require.Zero(m.t, m.s.Dropped(), "records still dropped after everything settled")
}

func dedupe(ks []uint64) []uint64 {
	var out []uint64
	for _, k := range ks {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// TestStateMatchesModel drives the state through random interleavings of
// the dispatcher, the re-reader and the handlers, with keys that stay stuck
// for a while, records that share keys, and records the log loses, and
// checks at every step that no key holds more than its buffer and no
// record runs twice or out of its keys' order, and at the end that every
// record ran.
func TestStateMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nkeys := rapid.IntRange(1, 5).Draw(t, "keys")
		n := rapid.IntRange(1, 120).Draw(t, "records")
		multi := rapid.Bool().Draw(t, "multi")
		keys := make([][]uint64, n)
		vanished := map[int64]bool{}
		for o := range keys {
			k := 1
			if multi {
				k = rapid.IntRange(0, 3).Draw(t, "nkeys")
			}
			for range k {
				keys[o] = append(keys[o], uint64(rapid.IntRange(0, nkeys-1).Draw(t, "key")))
			}
			// The log may lose a record (retention, compaction), but
			// not its last one: a re-read finds where the dispatcher
			// stopped by reading the record it read last.
			if o < n-1 && rapid.IntRange(0, 30).Draw(t, "keep") == 30 {
				vanished[int64(o)] = true
			}
		}
		high := rapid.IntRange(1, 4).Draw(t, "high")
		low := rapid.IntRange(0, high-1).Draw(t, "low")
		stuck := map[uint64]bool{}
		for k := range uint64(nkeys) {
			stuck[k] = rapid.IntRange(0, 3).Draw(t, "stuck") == 0
		}
		m := newSim(t, keys, vanished, high, low)
		steps := rapid.IntRange(0, 600).Draw(t, "steps")
		for range steps {
			switch rapid.IntRange(0, 4).Draw(t, "move") {
			case 0:
				m.dispatch()
			case 1:
				m.reread()
			case 4:
				// The stream fails (or the claim's context ends a wait).
				if m.reading && rapid.IntRange(0, 3).Draw(t, "fail") == 0 {
					m.s.Abort()
					m.endPass()
				}
			case 2, 3:
				var free []int64
				for _, o := range m.runnable() {
					blocked := false
					for _, k := range keys[o] {
						blocked = blocked || stuck[k]
					}
					if !blocked {
						free = append(free, o)
					}
				}
				if len(free) > 0 {
					m.complete(rapid.SampledFrom(free).Draw(t, "complete"))
				}
			}
		}
		m.settle(stuck) // everything but the stuck keys
		m.checkNotStalled(stuck)
		m.settle(nil) // the stuck keys come unstuck
		m.check()
	})
}

// TestStateHotKeyOneLongPass: one hot key among cold ones. The dispatcher
// runs ahead; the hot key's records are read back by a single pass that
// waits for the key to drain, and the cold keys never wait.
func TestStateHotKeyOneLongPass(t *testing.T) {
	const n = 1000
	keys := make([][]uint64, n)
	for o := range keys {
		if o%2 == 0 {
			keys[o] = []uint64{0}
		} else {
			keys[o] = []uint64{uint64(1 + o%50)}
		}
	}
	m := newSim(t, keys, nil, 8, 4)
	for m.dispatch() {
		// Cold keys are handled as soon as they are queued.
		for _, o := range m.runnable() {
			if keys[o][0] != 0 {
				m.complete(o)
			}
		}
	}
	require.Equal(t, 1, m.s.Spilled(), "the hot key spilled")
	require.Equal(t, n/2-8, m.s.Dropped(), "all but its buffer's worth were dropped")
	for o := 1; o < n; o += 2 {
		require.Equal(t, 1, m.times[int64(o)], "cold offset %d handled while the hot key is spilled", o)
	}
	m.settle(nil)
	m.check()
	require.Equal(t, []int64{16}, m.starts, "one pass, from the first record dropped, waiting for the hot key to drain")
	require.Zero(t, m.respills)
}

// TestStateStuckKeyDoesNotHoldUpOthers: two spilled keys share the
// re-read; one is stuck. The pass leaves the stuck one behind as soon as
// the other has nothing to do, and the other comes back to memory.
func TestStateStuckKeyDoesNotHoldUpOthers(t *testing.T) {
	const n = 200
	keys := make([][]uint64, n)
	for o := range keys {
		keys[o] = []uint64{uint64(o % 2)} // 0 stuck, 1 slow
	}
	m := newSim(t, keys, nil, 4, 2)
	for m.dispatch() {
	}
	require.Equal(t, 2, m.s.Spilled())
	// Key 1 runs; key 0 does not. Let the re-reader and key 1 go on.
	for i := 0; i < 10*n; i++ {
		m.reread()
		for _, o := range m.runnable() {
			if keys[o][0] == 1 {
				m.complete(o)
			}
		}
	}
	require.Len(t, m.handled[1], n/2, "the slow key got all its records back while the other was stuck")
	require.True(t, m.s.IsSpilled(0), "the stuck key is still spilled")
	require.False(t, m.s.IsSpilled(1), "the slow key is back in memory")
	require.Positive(t, m.respills, "the pass left the stuck key behind")
	m.settle(nil)
	m.check()
}

// TestStateKeySpillsAgainDuringPass: key A fills up again while a pass
// hands its records back, and key B, spilled too, runs dry meanwhile. The
// pass leaves A behind (A spills again, from the record it stopped at),
// brings B back to memory, and a later pass brings the rest of A back, in
// order.
func TestStateKeySpillsAgainDuringPass(t *testing.T) {
	const a, b = 0, 1
	var keys [][]uint64
	for range 30 {
		keys = append(keys, []uint64{a})
	}
	for range 6 {
		keys = append(keys, []uint64{b})
	}
	for range 30 {
		keys = append(keys, []uint64{a})
	}
	m := newSim(t, keys, nil, 3, 1)
	for m.dispatch() {
	}
	require.True(t, m.s.IsSpilled(a), "A spilled at its fourth record")
	require.True(t, m.s.IsSpilled(b), "B spilled at its fourth record")

	// A drains to its low mark: a pass starts and hands A's records back
	// until A is full again; B still has work, so the pass waits.
	for len(m.queues[a]) > 1 {
		m.complete(m.queues[a][0])
	}
	for m.reread() {
	}
	require.True(t, m.s.Reading())
	require.True(t, m.over[a], "the pass filled A up again")
	require.Equal(t, int64(5), m.waiting, "the pass waits at A's next record")

	// B runs dry: waiting for A would now keep B waiting too.
	for len(m.queues[b]) > 0 {
		m.complete(m.queues[b][0])
	}
	for m.reread() {
	}
	require.Positive(t, m.respills, "A left the pass")
	require.False(t, m.s.IsSpilled(b), "B is back in memory: the pass caught up")
	require.True(t, m.s.IsSpilled(a), "A is spilled again")
	require.Equal(t, []int64{33, 34, 35}, m.queues[b], "the pass handed B its dropped records")

	m.settle(nil)
	m.check()
	require.Equal(t, []int64{3, 5}, m.starts, "the second pass starts where A left the first")
}
