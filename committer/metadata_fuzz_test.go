package committer_test

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/orderly-go/orderly/committer"
)

// FuzzDecodeMetadata feeds DecodeMetadata arbitrary input. It must never
// panic; what it accepts must be well-formed ranges above the committed
// offset, and encoding them again must give back the very same string (the
// format has one encoding per value) and the same ranges.
func FuzzDecodeMetadata(f *testing.F) {
	valid, _ := committer.EncodeMetadata(42, []Range{{44, 50}, {60, 60}}, 0)
	f.Add(int64(42), valid)
	f.Add(int64(0), "")
	f.Add(int64(7), "hello")
	f.Add(int64(7), "ol1:!!!")
	f.Fuzz(checkDecode)
}

// checkDecode is the property both fuzz targets check.
func checkDecode(t *testing.T, committed int64, metadata string) {
	ranges, err := committer.DecodeMetadata(committed, metadata)
	if err != nil {
		if len(ranges) != 0 {
			t.Fatalf("ranges %v returned with error %v", ranges, err)
		}
		if !errors.Is(err, committer.ErrForeignMetadata) &&
			!errors.Is(err, committer.ErrCorruptMetadata) &&
			!errors.Is(err, committer.ErrStaleMetadata) {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	prev := committed
	for i, r := range ranges {
		if r.First > r.Last || r.First <= prev || (i > 0 && r.First == prev+1) {
			t.Fatalf("range %d %v after %d: not ascending, disjoint, non-adjacent and above %d", i, r, prev, committed)
		}
		prev = r.Last
	}
	if len(ranges) == 0 {
		return // "" or an empty encoding; EncodeMetadata writes "" for it
	}
	again, covered := committer.EncodeMetadata(committed, ranges, len(metadata))
	if again != metadata {
		t.Fatalf("re-encoded %q as %q", metadata, again)
	}
	if covered != total(ranges) {
		t.Fatalf("covered %d for ranges %v", covered, ranges)
	}
	decoded, err := committer.DecodeMetadata(committed, again)
	if err != nil || len(decoded) != len(ranges) {
		t.Fatalf("decode of re-encoding: %v, %v; want %v", decoded, err, ranges)
	}
	for i := range ranges {
		if decoded[i] != ranges[i] {
			t.Fatalf("decode of re-encoding: %v; want %v", decoded, ranges)
		}
	}
}

// FuzzDecodeMetadataPayload fuzzes the payload behind the checksum, which
// FuzzDecodeMetadata can hardly reach: it frames arbitrary bytes with a
// valid prefix and CRC, then checks the same property.
func FuzzDecodeMetadataPayload(f *testing.F) {
	f.Add(int64(42), []byte{42, 2, 1, 6, 8, 0})
	f.Add(int64(0), []byte{0, 1, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add(int64(5), []byte{5, 0})
	f.Add(int64(5), []byte{5, 0x80, 0x00})
	f.Add(int64(5), []byte{5, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0})
	f.Fuzz(func(t *testing.T, committed int64, payload []byte) {
		framed := binary.BigEndian.AppendUint32(slices.Clip(payload), crc32.ChecksumIEEE(payload))
		checkDecode(t, committed, "ol1:"+base64.RawURLEncoding.EncodeToString(framed))
	})
}
