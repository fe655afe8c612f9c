package committer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTrackerStorageBounded checks that storage follows Pending, not the
// number of offsets ever registered.
func TestTrackerStorageBounded(t *testing.T) {
	tr := NewTracker(0)
	const window = 100
	for o := int64(0); o < 1_000_000; o++ {
		require.True(t, tr.Register(o))
		if o >= window {
			// Complete out of order, keeping about window pending; the
			// oldest pending entry is always finished eventually.
			require.True(t, tr.Complete(o-window))
		}
		if o%1000 == 0 {
			require.LessOrEqual(t, cap(tr.entries), 4*window+2*compactMin+shrinkMin, "at offset %d", o)
		}
	}

	// A burst of pending entries is given back once it drains.
	tr = NewTracker(0)
	for o := int64(0); o < 100_000; o++ {
		require.True(t, tr.Register(o))
	}
	for o := int64(99_999); o >= 0; o-- {
		require.True(t, tr.Complete(o))
	}
	require.Equal(t, 0, tr.Pending())
	require.LessOrEqual(t, cap(tr.entries), shrinkMin)
}
