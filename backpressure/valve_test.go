package backpressure

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flushing is a Valve whose changes are applied before they return, so
// that a test sees each transition's pause or resume in order.
type flushing struct{ *Valve }

func (v flushing) Hold(r Reason)    { v.Valve.Hold(r); v.Flush() }
func (v flushing) Release(r Reason) { defer v.Flush(); v.Valve.Release(r) }
func (v flushing) Set(r Reason, on bool) bool {
	defer v.Flush()
	return v.Valve.Set(r, on)
}

// recordingValve returns a valve whose pause and resume append to calls.
// calls is only touched by the valve's one applier at a time and after all
// users finish.
func recordingValve() (flushing, *[]string) {
	var calls []string
	v := NewValve(
		func([]Reason) { calls = append(calls, "pause") },
		func() { calls = append(calls, "resume") },
	)
	return flushing{v}, &calls
}

func TestValvePausesOnFirstHoldResumesOnLast(t *testing.T) {
	v, calls := recordingValve()
	assert.False(t, v.Paused())
	assert.Nil(t, v.Reasons())

	v.Hold(ReasonUncommitted)
	assert.Equal(t, []string{"pause"}, *calls)
	v.Hold(ReasonKey)
	v.Hold(ReasonKey)
	v.Hold(ReasonEngineBytes)
	assert.Equal(t, []string{"pause"}, *calls, "further holds do not pause again")
	assert.True(t, v.Paused())
	assert.Equal(t, []Reason{ReasonKey, ReasonEngineBytes, ReasonUncommitted}, v.Reasons())
	assert.Equal(t, 2, v.Holds(ReasonKey))
	assert.Equal(t, 0, v.Holds(ReasonBreaker))

	v.Release(ReasonKey)
	v.Release(ReasonUncommitted)
	v.Release(ReasonEngineBytes)
	assert.Equal(t, []Reason{ReasonKey}, v.Reasons())
	assert.Equal(t, []string{"pause"}, *calls, "still held by one key")
	v.Release(ReasonKey)
	assert.Equal(t, []string{"pause", "resume"}, *calls)
	assert.False(t, v.Paused())
	assert.Nil(t, v.Reasons())

	v.Hold(ReasonBreaker)
	assert.Equal(t, []string{"pause", "resume", "pause"}, *calls)
}

func TestValveSetIsIdempotent(t *testing.T) {
	v, calls := recordingValve()
	assert.True(t, v.Set(ReasonPartitionBytes, true))
	assert.False(t, v.Set(ReasonPartitionBytes, true))
	assert.Equal(t, 1, v.Holds(ReasonPartitionBytes))
	assert.Equal(t, []string{"pause"}, *calls)

	assert.True(t, v.Set(ReasonPartitionBytes, false))
	assert.False(t, v.Set(ReasonPartitionBytes, false))
	assert.Equal(t, []string{"pause", "resume"}, *calls)

	// Set(on) collapses several holds to exactly one; Set(off) clears them.
	v.Hold(ReasonKey)
	v.Hold(ReasonKey)
	assert.True(t, v.Set(ReasonKey, true))
	assert.Equal(t, 1, v.Holds(ReasonKey))
	v.Hold(ReasonKey)
	assert.True(t, v.Set(ReasonKey, false))
	assert.Equal(t, 0, v.Holds(ReasonKey))
	assert.Equal(t, []string{"pause", "resume", "pause", "resume"}, *calls)
}

func TestValveSetMixesWithOtherReasons(t *testing.T) {
	v, calls := recordingValve()
	v.Hold(ReasonKey)
	assert.True(t, v.Set(ReasonUncommitted, true))
	v.Release(ReasonKey)
	assert.True(t, v.Paused(), "uncommitted still holds")
	assert.True(t, v.Set(ReasonUncommitted, false))
	assert.Equal(t, []string{"pause", "resume"}, *calls)
}

func TestValveReleaseAbsentReasonPanics(t *testing.T) {
	v, calls := recordingValve()
	assert.PanicsWithValue(t, "backpressure: Valve.Release of reason breaker, which has no holds",
		func() { v.Release(ReasonBreaker) })
	v.Hold(ReasonKey)
	assert.Panics(t, func() { v.Release(ReasonEngineRecords) })
	assert.Equal(t, 1, v.Holds(ReasonKey), "a panicking Release changes nothing")
	v.Release(ReasonKey)
	assert.Equal(t, []string{"pause", "resume"}, *calls)
	assert.Panics(t, func() { NewValve(nil, func() {}) })
}

// Concurrent holders: pause and resume must strictly alternate, starting
// with pause, and the valve ends open.
func TestValveConcurrentCallsAlternate(t *testing.T) {
	paused, bad := false, 0 // touched only by the callbacks: one applier at a time
	v := NewValve(
		func([]Reason) {
			if paused {
				bad++
			}
			paused = true
		},
		func() {
			if !paused {
				bad++
			}
			paused = false
		},
	)
	reasons := []Reason{ReasonKey, ReasonPartitionRecords, ReasonEngineBytes, ReasonUncommitted}
	var wg sync.WaitGroup
	for i := range 16 {
		// Owned by this test, which waits for them via wg.
		wg.Go(func() {
			r := reasons[i%len(reasons)]
			for range 500 {
				v.Hold(r)
				v.Release(r)
			}
		})
	}
	wg.Wait()
	v.Flush()
	require.Zero(t, bad, "pause/resume did not alternate")
	assert.False(t, paused)
	assert.False(t, v.Paused())
}

func TestReasonString(t *testing.T) {
	want := map[Reason]string{
		ReasonKey:               "key",
		ReasonPartitionRecords:  "partition-records",
		ReasonPartitionBytes:    "partition-bytes",
		ReasonEngineRecords:     "engine-records",
		ReasonEngineBytes:       "engine-bytes",
		ReasonUncommitted:       "uncommitted",
		ReasonBreaker:           "breaker",
		0:                       "reason(0)",
		200:                     "reason(200)",
		ReasonLevelRecords(0):   "level-0-records",
		ReasonLevelBytes(7):     "level-7-bytes",
		ReasonLevelBytes(7) + 1: "reason(48)",
	}
	for r, s := range want {
		assert.Equal(t, s, r.String())
	}
}

// Hold and Release may be called under a lock that pause takes: the
// callbacks run on the applier, never on the caller's goroutine.
func TestValveNeverCallsBackOnTheCallersGoroutine(t *testing.T) {
	var mu sync.Mutex // the caller's lock, which pause and resume take
	var calls []string
	v := NewValve(
		func(rs []Reason) { mu.Lock(); calls = append(calls, fmt.Sprint("pause ", rs)); mu.Unlock() },
		func() { mu.Lock(); calls = append(calls, "resume"); mu.Unlock() },
	)
	mu.Lock()
	v.Hold(ReasonKey) // would deadlock if pause ran here
	v.Set(ReasonBreaker, true)
	mu.Unlock()
	v.Flush()
	mu.Lock()
	v.Release(ReasonKey)
	v.Set(ReasonBreaker, false)
	mu.Unlock()
	v.Flush()
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, calls)
	assert.Equal(t, "resume", calls[len(calls)-1], "the valve ends open")
	assert.Contains(t, calls[0], "pause", "it paused first")
}

// SetIfNewer ignores reports older than the last one applied.
func TestValveSetIfNewerIgnoresStaleReports(t *testing.T) {
	v, calls := recordingValve()
	assert.True(t, v.SetIfNewer(ReasonKey, true, 2))
	assert.False(t, v.SetIfNewer(ReasonKey, false, 1), "seq 1 is older than 2")
	v.Flush()
	assert.True(t, v.Paused())
	assert.True(t, v.SetIfNewer(ReasonKey, false, 3))
	v.Flush()
	assert.False(t, v.Paused())
	assert.Equal(t, []string{"pause", "resume"}, *calls)
}

// TestValveCloseStopsCalls checks that Close waits for an applier in
// progress and that no pause or resume runs afterwards.
func TestValveCloseStopsCalls(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var calls []string
	v := NewValve(func([]Reason) {
		close(entered)
		<-release
		mu.Lock()
		calls = append(calls, "pause")
		mu.Unlock()
	}, func() {
		mu.Lock()
		calls = append(calls, "resume")
		mu.Unlock()
	})
	v.Set(ReasonKey, true)
	<-entered // the applier is inside pause
	closed := make(chan struct{})
	go func() { v.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while pause was running")
	default:
	}
	close(release)
	<-closed
	v.Set(ReasonKey, false)
	v.Hold(ReasonBreaker)
	v.Flush()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"pause"}, calls)
	assert.True(t, v.Paused(), "holds are still counted after Close")
}
