package committer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTrackerStorageBounded checks that storage follows the window between
// the watermark and the last offset registered, not the number of offsets
// ever registered.
func TestTrackerStorageBounded(t *testing.T) {
	tr := NewTracker(0)
	const window = 100
	for o := int64(0); o < 1_000_000; o++ {
		if !tr.Register(o) {
			t.Fatalf("Register(%d)", o)
		}
		if o >= window && !tr.Complete(o-window) {
			// Complete out of order, keeping about window pending; the
			// oldest pending entry is always finished eventually.
			t.Fatalf("Complete(%d)", o-window)
		}
		if o%1000 == 0 {
			require.LessOrEqual(t, tr.storageWords(), 2*(4*window/64+2*compactWords+2), "at offset %d", o)
		}
	}

	// A burst of pending entries is given back once it drains.
	tr = NewTracker(0)
	for o := int64(0); o < 2_000_000; o++ {
		if !tr.Register(o) {
			t.Fatalf("Register(%d)", o)
		}
	}
	for o := int64(1_999_999); o >= 0; o-- {
		if !tr.Complete(o) {
			t.Fatalf("Complete(%d)", o)
		}
	}
	require.Equal(t, 0, tr.Pending())
	require.LessOrEqual(t, tr.storageWords(), 2*shrinkWords)
}

// TestTrackerMillionWindowIsSmall: one offset holds the watermark back while
// a million after it complete; the tracker holds two bits per offset.
func TestTrackerMillionWindowIsSmall(t *testing.T) {
	tr := NewTracker(0)
	const window = 1_000_000
	for o := int64(0); o < window; o++ {
		if !tr.Register(o) || (o > 0 && o%2 == 0 && !tr.Complete(o)) {
			t.Fatalf("offset %d", o)
		}
	}
	require.Equal(t, int64(0), tr.Watermark())
	require.Equal(t, window, tr.Pending())
	bytes := 8 * tr.storageWords()
	require.LessOrEqual(t, bytes, 2*window/8*5/4, "two bitmaps of %d offsets, with growth slack", window)
	t.Logf("%d offsets pending: %d KB of bitmaps", window, bytes/1000)

	// Ranges are bounded on request: half a million single offsets are
	// done above the watermark, a commit needs the lowest few.
	rs := tr.CompletedAboveN(nil, 10)
	require.Len(t, rs, 10)
	require.Equal(t, Range{First: 2, Last: 2}, rs[0])
	require.Equal(t, Range{First: 20, Last: 20}, rs[9])
}

// TestTrackerWideGapsCostNothing: offsets millions apart (a compacted
// topic) take a segment each, not bitmaps spanning the distance.
func TestTrackerWideGapsCostNothing(t *testing.T) {
	tr := NewTracker(0)
	for i := int64(0); i < 100; i++ {
		require.True(t, tr.Register(i*10_000_000))
	}
	require.LessOrEqual(t, tr.storageWords(), 100*2*2)
	for i := int64(99); i >= 1; i-- {
		require.True(t, tr.Complete(i*10_000_000))
	}
	require.Equal(t, int64(0), tr.Watermark())
	require.Equal(t, []Range{{First: 10_000_000, Last: 10_000_000}}, tr.CompletedAboveN(nil, 1))
	require.True(t, tr.Complete(0))
	require.Equal(t, int64(990_000_001), tr.Watermark())
	require.Equal(t, int64(100), tr.Passed())
}
