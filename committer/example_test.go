package committer_test

import (
	"fmt"

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
