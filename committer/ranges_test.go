package committer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"pgregory.net/rapid"

	"github.com/orderly-go/orderly/committer"
)

func TestSkipperMatchesRanges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := rapid.Int64Range(0, 50).Draw(t, "watermark")
		ranges := genSmallCanonical(t, w)
		s := committer.NewSkipper(ranges)
		in := func(o int64) bool {
			for _, r := range ranges {
				if r.First <= o && o <= r.Last {
					return true
				}
			}
			return false
		}
		o := w
		for o < w+300 {
			assert.Equal(t, in(o), s.Skip(o), "offset %d", o)
			if rapid.Bool().Draw(t, "again") {
				assert.Equal(t, in(o), s.Skip(o), "offset %d asked twice", o)
			}
			beyond := len(ranges) == 0 || o >= ranges[len(ranges)-1].Last
			assert.Equal(t, beyond, s.Done(), "Done after %d", o)
			o += rapid.Int64Range(1, 4).Draw(t, "step")
		}
	})
}

func genSmallCanonical(t *rapid.T, watermark int64) []Range {
	var out []Range
	prev, skip := watermark, int64(1)
	for range rapid.IntRange(0, 10).Draw(t, "ranges") {
		first := prev + skip + rapid.Int64Range(0, 10).Draw(t, "gap")
		last := first + rapid.Int64Range(0, 10).Draw(t, "length")
		out = append(out, Range{first, last})
		prev, skip = last, 2
	}
	return out
}

func TestSkipperNeverWrongBackwards(t *testing.T) {
	s := committer.NewSkipper([]Range{{5, 6}, {10, 12}})
	assert.True(t, s.Skip(5))
	assert.False(t, s.Skip(7))
	assert.True(t, s.Skip(11))
	assert.False(t, s.Skip(6), "a passed range is not revisited, which only re-processes")
	assert.False(t, s.Done())
	assert.True(t, s.Skip(12))
	assert.True(t, s.Done())

	empty := committer.NewSkipper(nil)
	assert.True(t, empty.Done())
	assert.False(t, empty.Skip(0))
}
