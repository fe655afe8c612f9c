package committer_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/orderly-go/orderly/committer"
)

// trackerModel is the obvious, slow definition of a Tracker.
type trackerModel struct {
	start      int64
	registered []int64 // ascending
	done       map[int64]bool
}

func (m *trackerModel) register(offset int64) bool {
	switch {
	case offset < 0:
		return false
	case len(m.registered) > 0 && offset <= m.registered[len(m.registered)-1]:
		return false
	case len(m.registered) == 0 && m.start >= 0 && offset < m.start:
		return false
	}
	m.registered = append(m.registered, offset)
	return true
}

func (m *trackerModel) complete(offset int64) bool {
	if _, ok := slices.BinarySearch(m.registered, offset); !ok || m.done[offset] {
		return false
	}
	m.done[offset] = true
	return true
}

func (m *trackerModel) watermark() int64 {
	for _, o := range m.registered {
		if !m.done[o] {
			return o
		}
	}
	if len(m.registered) > 0 {
		return m.registered[len(m.registered)-1] + 1
	}
	return m.start
}

// completedAbove lists completed offsets above the watermark, merged only
// across consecutive integers.
func (m *trackerModel) completedAbove() []Range {
	var out []Range
	w := m.watermark()
	for _, o := range m.registered {
		if o <= w || !m.done[o] {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Last+1 == o {
			out[n-1].Last = o
			continue
		}
		out = append(out, Range{o, o})
	}
	return out
}

func (m *trackerModel) inFlightAt(offset int64) bool {
	_, ok := slices.BinarySearch(m.registered, offset)
	return ok && !m.done[offset]
}

func (m *trackerModel) nextInFlight(from int64) (int64, bool) {
	for _, o := range m.registered {
		if o >= from && !m.done[o] {
			return o, true
		}
	}
	return 0, false
}

type Range = committer.Range

// driveTracker applies a random sequence of operations to a Tracker and its
// model, calling check after every step.
func driveTracker(t *rapid.T, check func(tr *committer.Tracker, m *trackerModel)) {
	start := rapid.OneOf(rapid.Just(int64(-1)), rapid.Int64Range(0, 1000)).Draw(t, "start")
	tr := committer.NewTracker(start)
	m := &trackerModel{start: start, done: map[int64]bool{}}
	next := max(start, 0) // the next offset a valid Register may use
	steps := rapid.IntRange(0, 400).Draw(t, "steps")
	for range steps {
		switch rapid.IntRange(0, 9).Draw(t, "op") {
		case 0, 1, 2, 3: // register, usually valid, with gaps
			offset := next + rapid.Int64Range(0, 3).Draw(t, "gap")
			if rapid.IntRange(0, 19).Draw(t, "wide") == 0 {
				// Wide enough to start a segment of its own.
				offset = next + rapid.Int64Range(60, 9000).Draw(t, "wideGap")
			}
			if rapid.IntRange(0, 9).Draw(t, "bogus") == 0 {
				offset = next - rapid.Int64Range(1, 3).Draw(t, "back")
			}
			got := tr.Register(offset)
			require.Equal(t, m.register(offset), got, "Register(%d)", offset)
			if got {
				next = offset + 1
			}
		default: // complete a registered offset, or a bogus one
			offset := rapid.Int64Range(-2, next+2).Draw(t, "bogusOffset")
			if len(m.registered) > 0 && rapid.IntRange(0, 4).Draw(t, "real") > 0 {
				offset = rapid.SampledFrom(m.registered).Draw(t, "offset")
			}
			require.Equal(t, m.complete(offset), tr.Complete(offset), "Complete(%d)", offset)
		}
		check(tr, m)
	}
}

func TestTrackerMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lastWatermark := int64(-1)
		var buf []Range
		driveTracker(t, func(tr *committer.Tracker, m *trackerModel) {
			w := tr.Watermark()
			require.Equal(t, m.watermark(), w, "watermark")
			require.GreaterOrEqual(t, w, lastWatermark, "watermark went backwards")
			lastWatermark = w

			inFlight, passed := 0, int64(0)
			for _, o := range m.registered {
				if !m.done[o] {
					inFlight++
				}
				if o < w {
					passed++
				}
			}
			require.Equal(t, inFlight, tr.InFlight(), "InFlight")
			require.Equal(t, passed, tr.Passed(), "Passed")
			require.Equal(t, len(m.registered)-int(passed), tr.Pending(), "Pending")

			buf = tr.CompletedAbove(buf[:0])
			want := m.completedAbove()
			require.Equal(t, want, nilIfEmpty(buf), "CompletedAbove")
			n := rapid.IntRange(0, 4).Draw(t, "maxRanges")
			buf = tr.CompletedAboveN(buf[:0], n)
			require.Equal(t, nilIfEmpty(want[:min(n, len(want))]), nilIfEmpty(buf), "CompletedAboveN(%d)", n)

			if len(m.registered) > 0 {
				o := rapid.SampledFrom(m.registered).Draw(t, "probe") + rapid.Int64Range(-1, 1).Draw(t, "probeShift")
				require.Equal(t, m.inFlightAt(o), tr.InFlightAt(o), "InFlightAt(%d)", o)
				wantNext, wantOK := m.nextInFlight(o)
				gotNext, gotOK := tr.NextInFlight(o)
				require.Equal(t, wantOK, gotOK, "NextInFlight(%d) found", o)
				if wantOK {
					require.Equal(t, wantNext, gotNext, "NextInFlight(%d)", o)
				}
			}
		})
	})
}

func nilIfEmpty(r []Range) []Range {
	if len(r) == 0 {
		return nil
	}
	return r
}

func TestTrackerStart(t *testing.T) {
	tr := committer.NewTracker(-1)
	assert.Equal(t, int64(-1), tr.Watermark(), "unknown start")
	assert.False(t, tr.Register(-1), "negative offset")

	tr = committer.NewTracker(100)
	assert.Equal(t, int64(100), tr.Watermark())
	assert.False(t, tr.Register(99), "below start")
	require.True(t, tr.Register(105), "a gap after start is fine")
	assert.Equal(t, int64(105), tr.Watermark())
	assert.False(t, tr.Register(105), "repeated offset")
	require.True(t, tr.Complete(105))
	assert.False(t, tr.Complete(105), "completed twice")
	assert.Equal(t, int64(106), tr.Watermark())
	assert.Equal(t, int64(1), tr.Passed())
	assert.Equal(t, 0, tr.Pending())
}

func TestTrackerCompletedAboveGaps(t *testing.T) {
	tr := committer.NewTracker(9)
	for _, o := range []int64{9, 10, 12, 13, 15} {
		require.True(t, tr.Register(o))
	}
	for _, o := range []int64{10, 12, 13, 15} {
		require.True(t, tr.Complete(o))
	}
	assert.Equal(t, int64(9), tr.Watermark())
	assert.Equal(t, []Range{{10, 10}, {12, 13}, {15, 15}}, tr.CompletedAbove(nil),
		"unregistered 11 and 14 split ranges")
	assert.Equal(t, []Range{{1, 2}, {10, 10}, {12, 13}, {15, 15}}, tr.CompletedAbove([]Range{{1, 2}}),
		"appends to dst without merging into its ranges")
	require.True(t, tr.Complete(9))
	assert.Equal(t, int64(16), tr.Watermark())
	assert.Empty(t, tr.CompletedAbove(nil))
	assert.Equal(t, int64(5), tr.Passed())
}
