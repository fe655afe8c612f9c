package backpressure_test

import (
	"context"
	"fmt"

	"github.com/orderly-go/orderly/backpressure"
)

// A fetcher buffers at most 3 records: it pauses when TryAcquire fails and
// resumes only once the buffer has drained to 1.
func ExamplePool() {
	credits := backpressure.NewPool(3, 1, func() { fmt.Println("drained to low mark: resume fetching") })

	fmt.Println("take 2:", credits.TryAcquire(2))
	fmt.Println("take 2:", credits.TryAcquire(2), "- pause fetching")
	credits.Release(1) // held 1: at the low mark, so onLow runs
	fmt.Println("held:", credits.Held())
	credits.Release(1)

	// A record larger than the high mark passes alone rather than never.
	fmt.Println("take 5 alone:", credits.Acquire(context.Background(), 5) == nil, "held:", credits.Held())
	credits.Release(5)
	// Output:
	// take 2: true
	// take 2: false - pause fetching
	// drained to low mark: resume fetching
	// held: 1
	// take 5 alone: true held: 5
}

func ExampleValve() {
	valve := backpressure.NewValve(
		func(rs []backpressure.Reason) { fmt.Println("pause", rs) },
		func() { fmt.Println("resume") },
	)
	valve.Hold(backpressure.ReasonKey)
	valve.Flush() // pause and resume run on the valve's applier: wait for it
	valve.Set(backpressure.ReasonUncommitted, true)
	fmt.Println(valve.Reasons())
	valve.Release(backpressure.ReasonKey)
	valve.Set(backpressure.ReasonUncommitted, false)
	valve.Flush()
	// Output:
	// pause [key]
	// [key uncommitted]
	// resume
}

// A batch takes its credits from several pools at once, or none: here the
// engine-wide pool cannot give, so nothing is taken, and the holder waits
// for that pool alone before it takes the set again.
func ExampleTake() {
	partition := backpressure.NewPool(100, 50, nil)
	engine := backpressure.NewPool(10, 5, nil)
	engine.TryAcquire(8)
	batch := []backpressure.Credit{
		{Pool: partition, N: 5, Reason: backpressure.ReasonPartitionRecords},
		{Pool: engine, N: 5, Reason: backpressure.ReasonEngineRecords},
	}
	if missing := backpressure.Take(batch, false); missing >= 0 {
		fmt.Println("waiting for", batch[missing].Reason, "holding", partition.Held(), "of the partition")
		w := engine.Wait(batch[missing].N)
		engine.Release(8) // work elsewhere finishes
		<-w.Ready()
		fmt.Println("granted:", w.Granted())
		// Hold the grant and take the rest (backpressure.TakeRest).
		fmt.Println("rest taken:", backpressure.TakeRest(batch, missing, false) < 0)
	}
	backpressure.Give(batch)
	fmt.Println("held after Give:", partition.Held(), engine.Held())
	// Output:
	// waiting for engine-records holding 0 of the partition
	// granted: true
	// rest taken: true
	// held after Give: 0 0
}
