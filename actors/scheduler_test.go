package actors_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/stretchr/testify/require"
)

type runFunc func()

func (f runFunc) Run(*actors.Worker) { f() }

func TestSchedulerParksIdleWorkersAndReusesThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := actors.NewScheduler(4, time.Minute, nil)
		// Two blocking items: two workers (work that blocks fans out).
		release := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		for range 2 {
			sched.Submit(runFunc(func() { <-release; wg.Done() }))
		}
		synctest.Wait()
		require.Equal(t, 2, sched.Workers())
		close(release)
		wg.Wait()
		synctest.Wait()
		require.Zero(t, sched.Busy(), "every worker parked")
		require.Equal(t, 2, sched.Workers(), "parked workers stay")

		for range 10 {
			wg.Add(1)
			sched.Submit(runFunc(wg.Done))
			wg.Wait()
			synctest.Wait()
		}
		require.Equal(t, 2, sched.Workers(), "parked workers were reused, none started")

		time.Sleep(2 * time.Minute) // fake time: past the idle time
		synctest.Wait()
		require.Zero(t, sched.Workers(), "idle workers exited")

		wg.Add(1)
		sched.Submit(runFunc(wg.Done))
		wg.Wait()
		require.NoError(t, sched.Close(context.Background()))
		require.Zero(t, sched.Workers(), "Close waits for every worker")
		require.Panics(t, func() { sched.Submit(runFunc(func() {})) })
	})
}

// Work that blocks fans out to every worker up to the limit.
func TestSchedulerFansOutBlockingWork(t *testing.T) {
	const limit = 8
	sched := actors.NewScheduler(limit, 0, nil)
	defer sched.Close(context.Background())
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(limit)
	for range limit {
		sched.Submit(runFunc(func() { started.Done(); <-release }))
	}
	started.Wait() // all limit items run at once
	require.Equal(t, limit, sched.Busy())
	close(release)
}

// A Runnable that blocks in a batch of cheap ones does not keep the rest
// of its batch from running: after the scheduler has learnt that work is
// cheap (so that workers take it in batches and wake no one), a batch
// whose first Runnable waits for all the others still completes: the
// monitor sees the stuck worker and another worker steals the rest.
func TestSchedulerUnsticksABatchBehindABlockedRunnable(t *testing.T) {
	sched := actors.NewScheduler(4, 0, nil)
	defer sched.Close(context.Background())
	var wg sync.WaitGroup
	for range 20 { // learn: cheap work
		wg.Add(1000)
		batch := make([]actors.Runnable, 1000)
		for i := range batch {
			batch[i] = runFunc(wg.Done)
		}
		sched.SubmitAll(batch)
		wg.Wait()
	}
	for round := range 20 {
		const n = 30
		var others sync.WaitGroup
		others.Add(n)
		allDone := make(chan struct{})
		go func() { others.Wait(); close(allDone) }()
		finished := make(chan struct{})
		batch := []actors.Runnable{runFunc(func() {
			select {
			case <-allDone:
			case <-time.After(10 * time.Second):
				t.Errorf("round %d: the batch behind a blocked Runnable never ran", round)
			}
			close(finished)
		})}
		for range n {
			batch = append(batch, runFunc(others.Done))
		}
		sched.SubmitAll(batch)
		<-finished
	}
}

// Close returns ctx's error while a Runnable does not return, and nil once
// every worker exited.
func TestSchedulerCloseWaitsForWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := actors.NewScheduler(2, 0, nil)
		release := make(chan struct{})
		sched.Submit(runFunc(func() { <-release }))
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.ErrorIs(t, sched.Close(ctx), context.DeadlineExceeded)
		close(release)
		require.NoError(t, sched.Close(context.Background()))
		require.Zero(t, sched.Workers())
	})
}

// Worker IDs are below the limit and unique among live workers.
func TestSchedulerWorkerIDs(t *testing.T) {
	const limit = 5
	sched := actors.NewScheduler(limit, 0, nil)
	defer sched.Close(context.Background())
	var mu sync.Mutex
	ids := map[int]int{}
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(limit)
	for range limit {
		sched.Submit(runFuncW(func(w *actors.Worker) {
			mu.Lock()
			ids[w.ID()]++
			mu.Unlock()
			started.Done()
			<-release
		}))
	}
	started.Wait()
	close(release)
	require.Len(t, ids, limit)
	for id, n := range ids {
		require.True(t, id >= 0 && id < limit)
		require.Equal(t, 1, n)
	}
}

type runFuncW func(*actors.Worker)

func (f runFuncW) Run(w *actors.Worker) { f(w) }
