package committer_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/orderly-go/orderly/committer"
)

// genCanonical draws ranges strictly above watermark, ascending, disjoint
// and non-adjacent: exactly what DecodeMetadata can return.
func genCanonical(t *rapid.T, watermark int64) []Range {
	n := rapid.IntRange(0, 40).Draw(t, "ranges")
	var out []Range
	prev, skip := watermark, int64(1)
	step := rapid.OneOf(rapid.Int64Range(0, 3), rapid.Int64Range(0, 1<<20), rapid.Int64Range(0, 1<<40))
	for range n {
		first := prev + skip + step.Draw(t, "gap")
		last := first + step.Draw(t, "length")
		out = append(out, Range{first, last})
		prev, skip = last, 2
	}
	return out
}

func genWatermark(t *rapid.T) int64 {
	return rapid.OneOf(rapid.Int64Range(0, 100), rapid.Int64Range(0, 1<<50)).Draw(t, "watermark")
}

func TestMetadataRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWatermark(t)
		ranges := genCanonical(t, w)
		md, covered := committer.EncodeMetadata(w, ranges, committer.MaxMetadataBytes)
		require.LessOrEqual(t, len(md), committer.MaxMetadataBytes)
		assert.Equal(t, total(ranges), covered)
		got, err := committer.DecodeMetadata(w, md)
		require.NoError(t, err)
		require.Equal(t, ranges, nilIfEmpty(got))
		for _, c := range md {
			require.Less(t, c, rune(0x80), "metadata must be ASCII")
		}
	})
}

func TestMetadataNearMaxInt64(t *testing.T) {
	w := int64(math.MaxInt64 - 10)
	ranges := []Range{{w + 2, w + 3}, {w + 5, math.MaxInt64}}
	md, covered := committer.EncodeMetadata(w, ranges, 0)
	assert.Equal(t, int64(8), covered)
	got, err := committer.DecodeMetadata(w, md)
	require.NoError(t, err)
	assert.Equal(t, ranges, got)

	md, covered = committer.EncodeMetadata(w, []Range{{w + 2, math.MaxInt64}, {w + 4, math.MaxInt64}}, 0)
	assert.Equal(t, int64(9), covered, "overlap at the top of the offset space")
	got, err = committer.DecodeMetadata(w, md)
	require.NoError(t, err)
	assert.Equal(t, []Range{{w + 2, math.MaxInt64}}, got)

	md, covered = committer.EncodeMetadata(0, []Range{{1, math.MaxInt64}}, 0)
	assert.Equal(t, int64(math.MaxInt64), covered)
	got, err = committer.DecodeMetadata(0, md)
	require.NoError(t, err)
	assert.Equal(t, []Range{{1, math.MaxInt64}}, got)
}

// TestMetadataTruncationSafe encodes arbitrary, messy input under random
// small limits: the metadata must fit, claim only completed offsets above
// the watermark, keep the lowest ones, and report covered exactly.
func TestMetadataTruncationSafe(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := rapid.Int64Range(0, 1000).Draw(t, "watermark")
		completed := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Range {
			first := rapid.Int64Range(0, 1500).Draw(t, "first")
			return Range{first, first + rapid.Int64Range(-2, 300).Draw(t, "length")}
		}), 0, 30).Draw(t, "completed")
		limit := rapid.IntRange(1, 120).Draw(t, "limit")

		md, covered := committer.EncodeMetadata(w, completed, limit)
		require.LessOrEqual(t, len(md), limit)
		got, err := committer.DecodeMetadata(w, md)
		require.NoError(t, err)
		require.Equal(t, covered, total(got), "covered")

		// The model: the completed offsets above w, lowest first.
		done := map[int64]bool{}
		for _, r := range completed {
			for o := max(r.First, w+1); o <= r.Last; o++ {
				done[o] = true
			}
		}
		var want []int64
		for o := w + 1; o <= 2000; o++ {
			if done[o] {
				want = append(want, o)
			}
		}
		var claimed []int64
		for _, r := range got {
			for o := r.First; o <= r.Last; o++ {
				claimed = append(claimed, o)
			}
		}
		require.LessOrEqual(t, len(claimed), len(want))
		require.True(t, slices.Equal(want[:len(claimed)], claimed),
			"claims exactly the lowest completed offsets: want prefix of %v, got %v", want, claimed)

		// Maximal: one more offset would not have fitted.
		if len(claimed) < len(want) {
			more := toRanges(want[:len(claimed)+1])
			md, n := committer.EncodeMetadata(w, more, 1<<20)
			require.Equal(t, int64(len(claimed)+1), n)
			require.Greater(t, len(md), limit, "stopped although offset %d fits", want[len(claimed)])
		}

		// A generous limit covers everything.
		_, all := committer.EncodeMetadata(w, completed, 1<<20)
		require.Equal(t, int64(len(want)), all)
	})
}

// TestRestartSkipsExactly plays a partition, "restarts" it from the
// tracker's watermark and metadata, and replays every offset from there: the
// Skipper must skip exactly the records completed above the watermark.
func TestRestartSkipsExactly(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var tr *committer.Tracker
		var model *trackerModel
		driveTracker(t, func(t *committer.Tracker, m *trackerModel) { tr, model = t, m })
		if tr == nil {
			return
		}
		w := tr.Watermark()
		limit := rapid.SampledFrom([]int{committer.MaxMetadataBytes, 12, 20, 40}).Draw(t, "limit")
		md, covered := committer.EncodeMetadata(w, tr.CompletedAbove(nil), limit)
		ranges, err := committer.DecodeMetadata(w, md)
		require.NoError(t, err)

		s := committer.NewSkipper(ranges)
		var skipped, doneAbove int64
		end := w + 5
		if n := len(model.registered); n > 0 {
			end = model.registered[n-1] + 5
		}
		for o := max(w, 0); o <= end; o++ {
			done := model.done[o] && o > w
			if done {
				doneAbove++
			}
			if s.Skip(o) {
				require.True(t, done, "skipped offset %d that was not completed", o)
				skipped++
			} else if limit == committer.MaxMetadataBytes {
				require.False(t, done, "offset %d was completed but not skipped", o)
			}
		}
		require.Equal(t, covered, skipped)
		require.True(t, s.Done())
		if limit == committer.MaxMetadataBytes {
			require.Equal(t, doneAbove, skipped)
		}
	})
}

func TestDecodeMetadataErrors(t *testing.T) {
	valid, _ := committer.EncodeMetadata(42, []Range{{44, 50}, {60, 60}}, 0)
	require.NotEmpty(t, valid)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	tests := []struct {
		name      string
		committed int64
		metadata  string
		want      error // nil: no error and no ranges
	}{
		{"empty", 42, "", nil},
		{"foreign text", 42, "hello", committer.ErrForeignMetadata},
		{"other version", 42, "ol2:" + strings.TrimPrefix(valid, "ol1:"), committer.ErrForeignMetadata},
		{"prefix only", 42, "ol1:", committer.ErrCorruptMetadata},
		{"bad base64", 42, "ol1:!!!", committer.ErrCorruptMetadata},
		{"padded base64", 42, valid + "=", committer.ErrCorruptMetadata},
		{"line break", 42, valid[:6] + "\n" + valid[6:], committer.ErrCorruptMetadata},
		{"truncated", 42, valid[:len(valid)-2], committer.ErrCorruptMetadata},
		{"extended", 42, valid + "AAAA", committer.ErrCorruptMetadata},
		{"stale", 41, valid, committer.ErrStaleMetadata},
		{"stale, no committed offset", -1, valid, committer.ErrStaleMetadata},
	}
	for i := len("ol1:"); i < len(valid); i++ {
		tests = append(tests, struct {
			name      string
			committed int64
			metadata  string
			want      error
		}{fmt.Sprintf("flipped char %d", i), 42, flip(valid, i), committer.ErrCorruptMetadata})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := committer.DecodeMetadata(tt.committed, tt.metadata)
			assert.Empty(t, got)
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
			for _, other := range []error{committer.ErrForeignMetadata, committer.ErrCorruptMetadata, committer.ErrStaleMetadata} {
				if other != tt.want {
					assert.NotErrorIs(t, err, other)
				}
			}
		})
	}

	got, err := committer.DecodeMetadata(42, valid)
	require.NoError(t, err)
	assert.Equal(t, []Range{{44, 50}, {60, 60}}, got)
}

func TestEncodeMetadataEdges(t *testing.T) {
	md, covered := committer.EncodeMetadata(10, nil, 0)
	assert.Equal(t, "", md, "nothing to encode")
	assert.Zero(t, covered)

	md, covered = committer.EncodeMetadata(10, []Range{{3, 10}, {7, 5}}, 0)
	assert.Equal(t, "", md, "only ranges at or below the watermark, or invalid")
	assert.Zero(t, covered)

	md, covered = committer.EncodeMetadata(-1, []Range{{3, 10}}, 0)
	assert.Equal(t, "", md, "no committed offset to anchor to")
	assert.Zero(t, covered)

	md, covered = committer.EncodeMetadata(10, []Range{{20, 30}}, 8)
	assert.Equal(t, "", md, "limit too small for anything")
	assert.Zero(t, covered)

	md, covered = committer.EncodeMetadata(10, []Range{{21, 30}, {5, 12}, {13, 15}, {14, 19}}, 0)
	assert.Equal(t, int64(9+10), covered, "unsorted, overlapping and adjacent input")
	got, err := committer.DecodeMetadata(10, md)
	require.NoError(t, err)
	assert.Equal(t, []Range{{11, 19}, {21, 30}}, got)
}

// toRanges groups ascending offsets into maximal ranges.
func toRanges(offsets []int64) []Range {
	var out []Range
	for _, o := range offsets {
		if n := len(out); n > 0 && out[n-1].Last+1 == o {
			out[n-1].Last = o
			continue
		}
		out = append(out, Range{o, o})
	}
	return out
}

func total(ranges []Range) int64 {
	var n int64
	for _, r := range ranges {
		n += r.Len()
	}
	return n
}

// TestMetadataCutsLastRangeShort checks that a range too long to fit is
// encoded in part, lowest offsets first, rather than dropped.
func TestMetadataCutsLastRangeShort(t *testing.T) {
	completed := []Range{{11, 12}, {20, 1_000_000}}
	cut := 0
	for limit := 1; limit <= 40; limit++ {
		md, covered := committer.EncodeMetadata(10, completed, limit)
		require.LessOrEqual(t, len(md), limit)
		got, err := committer.DecodeMetadata(10, md)
		require.NoError(t, err)
		require.Equal(t, covered, total(got))
		if len(got) == 2 {
			require.Equal(t, completed[0], got[0])
			require.Equal(t, int64(20), got[1].First)
			require.LessOrEqual(t, got[1].Last, int64(1_000_000))
			if got[1].Last < 1_000_000 {
				cut++
			}
		}
	}
	require.Positive(t, cut, "some limit must cut the second range short")
}
