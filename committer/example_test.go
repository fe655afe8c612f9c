package committer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/orderly-go/orderly/committer"
)

// Records finish out of order; the commit carries the finished ones above
// the watermark, so after a restart they are skipped, not handled again.
func Example() {
	tr := committer.NewTracker(100) // the committed offset
	for _, o := range []int64{100, 101, 102, 104, 105} {
		tr.Register(o) // 103 was compacted away
	}
	tr.Complete(100)
	tr.Complete(102)
	tr.Complete(104)
	tr.Complete(105)

	watermark := tr.Watermark()
	metadata, covered := committer.EncodeMetadata(watermark, tr.CompletedAbove(nil), committer.MaxMetadataBytes)
	fmt.Println("commit", watermark, "covering", covered, "more")

	// After a restart, reading resumes at the committed offset.
	ranges, err := committer.DecodeMetadata(watermark, metadata)
	if err != nil {
		ranges = nil // foreign, corrupt or stale: skip nothing
	}
	skip := committer.NewSkipper(ranges)
	for _, o := range []int64{101, 102, 104, 105, 106} {
		fmt.Println(o, "skip:", skip.Skip(o))
	}
	// Output:
	// commit 101 covering 3 more
	// 101 skip: false
	// 102 skip: true
	// 104 skip: true
	// 105 skip: true
	// 106 skip: false
}

// The committer actor owns a partition's offsets: its owner tells it, in
// batches, what was dispatched and what completed (out of order), and it
// commits the watermark with the completed offsets above it.
func ExampleActor() {
	a := committer.NewActor(committer.Config{Interval: time.Hour, Timeout: time.Second})
	a.Start()
	defer a.Stop()
	store := &printingTarget{}
	p, _, _ := a.Open(committer.Opening{Target: store, Start: 100})
	for o := int64(100); o < 105; o++ {
		p.Register(o)
	}
	p.Complete(100)
	p.Complete(103) // out of order: 101 and 102 are not done
	p.Send()        // one message for the whole batch of notices
	if err := p.Flush(context.Background()); err != nil {
		fmt.Println(err)
	}
	p.Complete(101)
	p.Complete(102)
	p.Complete(104)
	if err := p.Close(context.Background()); err != nil { // Close sends what is pending first
		fmt.Println(err)
	}
	// Output:
	// commit 101 (metadata covers 103)
	// commit 105 (metadata covers nothing)
}

type printingTarget struct{}

func (printingTarget) Commit(_ context.Context, next int64, meta string) error {
	ranges, _ := committer.DecodeMetadata(next, meta)
	covers := "nothing"
	if len(ranges) > 0 {
		covers = fmt.Sprint(ranges[0].First)
	}
	fmt.Printf("commit %d (metadata covers %s)\n", next, covers)
	return nil
}
