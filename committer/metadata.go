package committer

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strings"
)

// MaxMetadataBytes is the default limit Kafka brokers put on commit metadata
// (offset.metadata.max.bytes).
const MaxMetadataBytes = 4096

// Errors DecodeMetadata returns. On any of them the caller should skip
// nothing: the records are processed again, which is always safe.
var (
	// ErrForeignMetadata means the metadata was not written by this package
	// (it lacks the "ol1:" prefix), e.g. another client committed.
	ErrForeignMetadata = errors.New("orderly: commit metadata not written by orderly")
	// ErrCorruptMetadata means the metadata has our prefix but cannot be
	// decoded: bad base64, truncated or non-minimal varints, checksum
	// mismatch, trailing bytes, or ranges out of bounds. It is wrapped with
	// detail.
	ErrCorruptMetadata = errors.New("orderly: corrupt commit metadata")
	// ErrStaleMetadata means the metadata is ours and intact but was written
	// for another committed offset, e.g. because an operator reset the
	// group's offsets. Its ranges do not describe the records after the
	// committed offset.
	ErrStaleMetadata = errors.New("orderly: stale commit metadata")
)

const (
	metadataPrefix = "ol1:"
	crcBytes       = 4
)

var metadataEncoding = base64.RawURLEncoding.Strict()

// EncodeMetadata encodes the completed ranges above watermark as commit
// metadata of at most limit bytes, and reports how many offsets it covers.
// A limit ≤ 0 means MaxMetadataBytes.
//
// completed should be ascending and disjoint, as Tracker.CompletedAbove
// returns it; overlapping or adjacent ranges are merged, unordered input is
// sorted first, and invalid ranges (First > Last) are ignored. Offsets at or
// below watermark are clipped away. When the ranges do not all fit, the
// lowest are kept and the last one kept may be cut short: the metadata never
// claims an offset that is not in completed, and offsets left out are only
// processed again after a restart.
//
// With no range above watermark, a negative watermark, or a limit too small
// for even an empty encoding, the metadata is "" and covered is 0;
// DecodeMetadata returns no ranges for "".
func EncodeMetadata(watermark int64, completed []Range, limit int) (metadata string, covered int64) {
	if limit <= 0 {
		limit = MaxMetadataBytes
	}
	if watermark < 0 || watermark == math.MaxInt64 || len(completed) == 0 {
		return "", 0
	}
	if !slices.IsSortedFunc(completed, compareFirst) {
		completed = slices.SortedFunc(slices.Values(completed), compareFirst)
	}
	budget := maxPayload(limit)
	header := uvarintLen(uint64(watermark))
	if budget < header+1 {
		return "", 0
	}
	var (
		body  = make([]byte, 0, min(budget, 4*len(completed)))
		count uint64
		prev  = watermark // the previous range's Last, or the watermark
		open  *Range      // the range being merged, not yet written
	)
	// flush writes the open range, cut short if needed; false means full.
	flush := func() bool {
		r := *open
		open = nil
		gap := uint64(r.First - prev - 1) // the first range: prev is the watermark
		if count > 0 {
			gap-- // later ranges are never adjacent
		}
		size := header + uvarintLen(count+1) + len(body) + uvarintLen(gap)
		room := budget - size // bytes left for uvarint(length-1)
		if room < 1 {
			return false
		}
		length := uint64(r.Last - r.First)
		if room < uvarintLen(length) {
			length = 1<<(7*room) - 1 // the largest that fits in room bytes
		}
		body = binary.AppendUvarint(body, gap)
		body = binary.AppendUvarint(body, length)
		count++
		prev = r.First + int64(length)
		covered += int64(length) + 1
		return prev == r.Last
	}
	var cur Range
	for _, r := range completed {
		if r.First > r.Last || r.Last <= watermark {
			continue
		}
		r.First = max(r.First, watermark+1)
		if open != nil && r.First-1 <= open.Last { // overlaps or adjacent; no overflow as First ≥ 1
			open.Last = max(open.Last, r.Last)
			continue
		}
		if open != nil && !flush() {
			break
		}
		cur = r
		open = &cur
	}
	if open != nil {
		flush()
	}
	if count == 0 {
		return "", 0
	}
	payload := make([]byte, 0, header+uvarintLen(count)+len(body)+crcBytes)
	payload = binary.AppendUvarint(payload, uint64(watermark))
	payload = binary.AppendUvarint(payload, count)
	payload = append(payload, body...)
	payload = binary.BigEndian.AppendUint32(payload, crc32.ChecksumIEEE(payload))
	out := make([]byte, len(metadataPrefix)+metadataEncoding.EncodedLen(len(payload)))
	metadataEncoding.Encode(out[copy(out, metadataPrefix):], payload)
	return string(out), covered
}

// DecodeMetadata decodes metadata that EncodeMetadata wrote for the offset
// committed. The ranges are ascending, disjoint, non-adjacent and all above
// committed. "" decodes to no ranges and no error. Errors are
// ErrForeignMetadata, ErrCorruptMetadata (wrapped with detail) and
// ErrStaleMetadata; with any of them the caller should skip nothing.
//
// DecodeMetadata never panics and allocates at most in proportion to
// len(metadata), whatever the input: ranges are returned as ranges, never
// expanded into offsets.
func DecodeMetadata(committed int64, metadata string) ([]Range, error) {
	if metadata == "" {
		return nil, nil
	}
	encoded, ours := strings.CutPrefix(metadata, metadataPrefix)
	if !ours {
		return nil, ErrForeignMetadata
	}
	// The decoder skips CR and LF; refuse them so every encoding is unique.
	if strings.ContainsAny(encoded, "\r\n") {
		return nil, corrupt("line break in base64")
	}
	payload, err := metadataEncoding.DecodeString(encoded)
	if err != nil {
		return nil, corrupt("base64: %v", err)
	}
	if len(payload) < crcBytes {
		return nil, corrupt("%d bytes, too short for a checksum", len(payload))
	}
	data, sum := payload[:len(payload)-crcBytes], payload[len(payload)-crcBytes:]
	if crc32.ChecksumIEEE(data) != binary.BigEndian.Uint32(sum) {
		return nil, corrupt("checksum mismatch")
	}
	r := varintReader{data: data}
	watermark, ok := r.read()
	if !ok || watermark >= math.MaxInt64 {
		return nil, corrupt("bad watermark")
	}
	count, ok := r.read()
	if !ok {
		return nil, corrupt("bad range count")
	}
	// A range takes at least two bytes: this bounds the allocation.
	if count > uint64(len(r.data))/2 {
		return nil, corrupt("%d ranges in %d bytes", count, len(r.data))
	}
	var ranges []Range
	if count > 0 {
		ranges = make([]Range, 0, count)
	}
	prev, skip := int64(watermark), uint64(1) // First = prev + skip + gap
	for i := range count {
		gap, ok1 := r.read()
		length, ok2 := r.read()
		if !ok1 || !ok2 {
			return nil, corrupt("range %d: bad varint", i)
		}
		room := uint64(math.MaxInt64 - prev) // ≥ 0 since prev ≥ 0
		if skip > room || gap > room-skip || length > room-skip-gap {
			return nil, corrupt("range %d overflows", i)
		}
		first := prev + int64(skip+gap)
		last := first + int64(length)
		ranges = append(ranges, Range{First: first, Last: last})
		prev, skip = last, 2
	}
	if len(r.data) != 0 {
		return nil, corrupt("%d trailing bytes", len(r.data))
	}
	if int64(watermark) != committed {
		return nil, fmt.Errorf("%w: written for offset %d, committed offset is %d", ErrStaleMetadata, watermark, committed)
	}
	return ranges, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptMetadata}, args...)...)
}

// varintReader reads minimal uvarints from data.
type varintReader struct{ data []byte }

func (r *varintReader) read() (uint64, bool) {
	v, n := binary.Uvarint(r.data)
	if n <= 0 || n != uvarintLen(v) {
		return 0, false
	}
	r.data = r.data[n:]
	return v, true
}

func compareFirst(a, b Range) int {
	switch {
	case a.First < b.First:
		return -1
	case a.First > b.First:
		return 1
	}
	return 0
}

// maxPayload is the largest payload, without the checksum, whose metadata
// fits in limit bytes. It may be negative.
func maxPayload(limit int) int {
	encoded := limit - len(metadataPrefix)
	if encoded < 0 {
		return -1
	}
	// Unpadded base64 of n bytes takes ceil(4n/3) ≤ encoded characters,
	// so n ≤ floor(3*encoded/4), computed without overflow.
	return 3*(encoded/4) + 3*(encoded%4)/4 - crcBytes
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
