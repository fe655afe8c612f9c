package orderly_test

import (
	"context"
	"fmt"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// Three topics consumed by one engine, one priority level each: paid
// reports never wait behind a flood of cron work, and cron is never
// starved.
func ExampleWithPriorities() {
	src := memory.NewLog().Member("reports", []string{"reports.paid", "reports.free", "reports.cron"})
	handle := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error { return nil })
	levels := []orderly.PriorityLevel{
		{WIP: 8, Reserved: 0.25}, // paid: up to 8 at once, 2 slots always free for it
		{WIP: 4},                 // free
		{WIP: 2, MinShare: 0.1},  // cron: 2 at once, at least a tenth of the starts
	}
	eng, err := orderly.New(src, handle, orderly.WithMaxConcurrency(8),
		orderly.WithPriorities(orderly.PriorityByTopic(map[string]int{
			"reports.paid": 0, "reports.free": 1, "reports.cron": 2,
		}), levels...))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range eng.Stats().Levels {
		fmt.Printf("level %d: WIP %d, buffer %d records\n", l.Level, l.WIP, l.Buffer.Records)
	}
	fmt.Println("cron waits at most", levels[2].StarvationBound(1), "starts of other levels in a row")
	// Output:
	// level 0: WIP 8, buffer 5000 records
	// level 1: WIP 4, buffer 3333 records
	// level 2: WIP 2, buffer 1666 records
	// cron waits at most 9 starts of other levels in a row
}
