package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWIPLimitsAndOrder(t *testing.T) {
	w := newWIP(map[plan]int{planPaid: 1, planFree: 2, planCron: 1})
	ctx := context.Background()
	require.NoError(t, w.acquire(ctx, nil, planCron, "c1"))
	require.NoError(t, w.acquire(ctx, nil, planCron, "c1"), "taking a slot again is a no-op")
	require.NoError(t, w.acquire(ctx, nil, planPaid, "p1"), "plans do not share slots")

	// Waiters are served in arrival order as slots come back.
	got := make(chan string, 3)
	for i := 2; i <= 4; i++ {
		id := fmt.Sprintf("c%d", i)
		go func() {
			assert.NoError(t, w.acquire(ctx, nil, planCron, id))
			got <- id
		}()
		require.Eventually(t, func() bool { return w.usage()[planCron].Waiting == i-1 }, time.Minute, time.Millisecond)
	}
	assert.Equal(t, wipUsage{InUse: 1, Limit: 1, Waiting: 3}, w.usage()[planCron])
	assert.False(t, w.release(planCron, "nobody"), "releasing a slot not held is a no-op")
	prev := "c1"
	for _, want := range []string{"c2", "c3", "c4"} {
		assert.True(t, w.release(planCron, prev))
		assert.False(t, w.release(planCron, prev), "a second release changes nothing")
		assert.Equal(t, want, <-got)
		assert.Equal(t, 1, w.usage()[planCron].InUse)
		prev = want
	}
}

func TestWIPWaitEndsWithContextOrStop(t *testing.T) {
	w := newWIP(map[plan]int{planPaid: 1, planFree: 1, planCron: 1})
	require.NoError(t, w.acquire(context.Background(), nil, planFree, "a"))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.acquire(ctx, nil, planFree, "b") }()
	require.Eventually(t, func() bool { return w.usage()[planFree].Waiting == 1 }, time.Minute, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	stop := make(chan struct{})
	go func() { done <- w.acquire(context.Background(), stop, planFree, "c") }()
	require.Eventually(t, func() bool { return w.usage()[planFree].Waiting == 1 }, time.Minute, time.Millisecond)
	close(stop)
	require.ErrorIs(t, <-done, errStopping)
	assert.Equal(t, wipUsage{InUse: 1, Limit: 1}, w.usage()[planFree], "a given-up wait holds nothing")

	// hold counts restored holders even beyond the limit; new work waits
	// until they are all back under it.
	w.hold(planFree, "restored")
	assert.Equal(t, 2, w.usage()[planFree].InUse)
	go func() { done <- w.acquire(context.Background(), nil, planFree, "d") }()
	require.Eventually(t, func() bool { return w.usage()[planFree].Waiting == 1 }, time.Minute, time.Millisecond)
	w.release(planFree, "a")
	assert.Equal(t, 1, w.usage()[planFree].Waiting, "still at the limit")
	w.release(planFree, "restored")
	require.NoError(t, <-done)
}
