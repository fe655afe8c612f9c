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
