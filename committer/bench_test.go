package committer_test

import (
	"math/rand/v2"
	"testing"

	"github.com/orderly-go/orderly/committer"
)

// shuffledCompletions returns the order in which offsets 0..n-1 complete:
// ascending, but shuffled within windows of w, as parallel handlers finish.
func shuffledCompletions(n, w int) []int64 {
	r := rand.New(rand.NewPCG(1, 2))
	order := make([]int64, n)
	for i := range order {
		order[i] = int64(i)
	}
	for lo := 0; lo < n; lo += w {
		hi := min(lo+w, n)
		r.Shuffle(hi-lo, func(i, j int) { order[lo+i], order[lo+j] = order[lo+j], order[lo+i] })
	}
	return order
}

const (
	benchOffsets = 1 << 16
	benchWindow  = 64
)

// BenchmarkTracker registers offsets and completes them slightly out of
// order, reading the watermark after each completion as the committer does.
func BenchmarkTracker(b *testing.B) {
	order := shuffledCompletions(benchOffsets, benchWindow)
	b.ReportAllocs()
	var tr *committer.Tracker
	i := benchOffsets
	for b.Loop() {
		if i == benchOffsets {
			tr, i = committer.NewTracker(0), 0
		}
		if i%benchWindow == 0 {
			for o := range int64(benchWindow) {
				tr.Register(int64(i) + o)
			}
		}
		tr.Complete(order[i])
		_ = tr.Watermark()
		i++
	}
}

// naiveTracker is the baseline: a map of registered offsets to done, and a
// linear scan for the lowest unfinished one.
type naiveTracker struct {
	done map[int64]bool
	last int64
}

func (n *naiveTracker) register(o int64) { n.done[o] = false; n.last = o }
func (n *naiveTracker) complete(o int64) { n.done[o] = true }
func (n *naiveTracker) watermark() int64 {
	w := n.last + 1
	for o, done := range n.done {
		if !done && o < w {
			w = o
		}
	}
	for o := range n.done {
		if o < w {
			delete(n.done, o)
		}
	}
	return w
}

func BenchmarkTrackerNaiveMap(b *testing.B) {
	order := shuffledCompletions(benchOffsets, benchWindow)
	b.ReportAllocs()
	var tr *naiveTracker
	i := benchOffsets
	for b.Loop() {
		if i == benchOffsets {
			tr, i = &naiveTracker{done: map[int64]bool{}}, 0
		}
		if i%benchWindow == 0 {
			for o := range int64(benchWindow) {
				tr.register(int64(i) + o)
			}
		}
		tr.complete(order[i])
		_ = tr.watermark()
		i++
	}
}

func BenchmarkEncodeMetadata(b *testing.B) {
	for _, bc := range []struct {
		name   string
		ranges int
	}{{"10-ranges", 10}, {"1000-ranges-truncated", 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			completed := make([]Range, bc.ranges)
			for i := range completed {
				first := int64(1_000_000 + 100*i)
				completed[i] = Range{first, first + int64(i%50)}
			}
			b.ReportAllocs()
			for b.Loop() {
				committer.EncodeMetadata(999_999, completed, committer.MaxMetadataBytes)
			}
		})
	}
}

func BenchmarkDecodeMetadata(b *testing.B) {
	completed := make([]Range, 1000)
	for i := range completed {
		first := int64(1_000_000 + 100*i)
		completed[i] = Range{first, first + int64(i%50)}
	}
	md, _ := committer.EncodeMetadata(999_999, completed, committer.MaxMetadataBytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := committer.DecodeMetadata(999_999, md); err != nil {
			b.Fatal(err)
		}
	}
}
