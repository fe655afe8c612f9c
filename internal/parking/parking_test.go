package parking_test

import (
	"testing"
	"time"

	"github.com/orderly-go/orderly/internal/parking"
	"github.com/stretchr/testify/require"
)

func TestTable(t *testing.T) {
	var tb parking.Table
	now := time.Now()
	require.False(t, tb.Any([]string{"a"}, func() time.Time { return now }), "an empty table parks nothing")
	tb.Park([]string{"a", "b"}, now.Add(time.Minute))
	tb.Park([]string{"c"}, time.Time{}) // until released
	require.True(t, tb.Any([]string{"x", "b"}, func() time.Time { return now }), "any of the keys")
	require.False(t, tb.Any([]string{"x"}, func() time.Time { return now }))
	require.Equal(t, 3, tb.Len(now))
	require.Len(t, tb.Keys(now), 3)

	later := now.Add(2 * time.Minute)
	require.False(t, tb.Any([]string{"a"}, func() time.Time { return later }), "a's parking expired")
	require.Equal(t, 1, tb.Len(later), "expired keys are forgotten")
	require.True(t, tb.Any([]string{"c"}, func() time.Time { return later.Add(time.Hour) }), "c waits for Release")
	require.True(t, tb.Release("c"))
	require.False(t, tb.Release("c"), "released already")
	require.Zero(t, tb.Len(later))
}
