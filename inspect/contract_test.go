package inspect

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/stretchr/testify/require"
)

// documentedFields returns the state.json fields listed in doc.go, as
// dotted paths ("partitions[].blocking", "record.offset", ...).
func documentedFields(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	line := regexp.MustCompile(`^//\t([a-z_]+(?:\[\])?(?:\.[a-z_]+(?:\[\])?)*) {2,}\S`)
	var out []string
	for l := range strings.SplitSeq(string(src), "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	require.NotEmpty(t, out)
	return out
}

// taggedFields returns the JSON fields of State's types as the same dotted
// paths, a RecordState's under "record.".
func taggedFields() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft == reflect.TypeFor[RecordState]():
				out = append(out, path)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				out = append(out, path+"[]")
				walk(path+"[]", ft.Elem())
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
				out = append(out, path)
				walk(path, ft)
			default:
				out = append(out, path)
			}
		}
	}
	walk("", reflect.TypeFor[State]())
	walk("record", reflect.TypeFor[RecordState]())
	return out
}

// The documentation lists exactly the fields the JSON has: none missing,
// none invented.
func TestEveryJSONFieldIsDocumented(t *testing.T) {
	doc, tags := documentedFields(t), taggedFields()
	slices.Sort(doc)
	slices.Sort(tags)
	require.Equal(t, tags, doc)
}

// fullInspection has every part filled in: a stuck handler, a blocking
// record waiting for its retry, keys whose heads run or wait behind
// another key, parked keys with and without an end.
func fullInspection() orderly.Inspection {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	head := orderly.RecordInspection{Offset: 7, Key: "b", HasKey: true, Keys: []string{"a", "b"}, State: orderly.RecordBehindKey,
		Age: 1500 * time.Millisecond, WaitingOn: &orderly.KeyHead{Key: "a", Offset: 5}}
	return orderly.Inspection{
		Time: now, InFlight: 3, MaxConcurrency: 64, ReadyActors: 1, HeldRecords: 10, HeldBytes: 1000,
		EngineLimits: orderly.Limits{Records: 10000, Bytes: 1 << 27}, Breaker: orderly.BreakerClosed,
		Stuck: []orderly.StuckHandler{{Topic: "t", Partition: 1, Offset: 9, Key: "s", HasKey: true, Attempt: 2, Running: 3 * time.Second}},
		Partitions: []orderly.PartitionInspection{{
			Topic: "t", Partition: 0, Watermark: 5, Committed: 4, End: 20, Lag: 16, Uncommitted: 15, MaxUncommitted: 100,
			HeldRecords: 10, HeldBytes: 1000, Limits: orderly.Limits{Records: 1000, Bytes: 1 << 24}, InFlight: 1, Keys: 2,
			Retrying: 1, Paused: true, Reasons: []orderly.PauseReason{orderly.PauseUncommitted}, Parked: 3,
			Blocking: &orderly.RecordInspection{Offset: 5, Key: "a", HasKey: true, Keys: []string{"a"}, State: orderly.RecordRetryWait,
				Age: 12 * time.Second, Attempts: 2, LastError: errors.New("boom"), FirstFailure: now.Add(-11 * time.Second),
				NextTry: now.Add(2 * time.Second), Behind: 1},
			TopKeys:    []orderly.KeyInspection{{Key: "b", Records: 2, Bytes: 200, Age: 1500 * time.Millisecond, Head: head}},
			ParkedKeys: []orderly.ParkedKey{{Key: "p1"}, {Key: "p2", Until: now.Add(time.Minute)}},
		}},
	}
}

// Every documented field is present in the JSON of a full snapshot, and
// the values are what the inspection said.
func TestStateJSONHasEveryDocumentedField(t *testing.T) {
	h, err := New(new(orderly.Engine), WithStallAfter(10*time.Second))
	require.NoError(t, err)
	b, err := json.Marshal(h.state(fullInspection()))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	requireDocumentedFields(t, documentedFields(t), doc)

	p := doc["partitions"].([]any)[0].(map[string]any)
	require.Equal(t, true, p["stalled"], "blocking for 12s, stalled after 10s")
	bl := p["blocking"].(map[string]any)
	require.Equal(t, "retry-wait", bl["state"])
	require.Equal(t, 12000.0, bl["age_ms"])
	require.Equal(t, 2000.0, bl["next_try_in_ms"])
	require.Equal(t, "boom", bl["last_error"])
	require.Equal(t, "2030-01-02T03:04:07Z", bl["next_try_at"])
	headJSON := p["top_keys"].([]any)[0].(map[string]any)["head"].(map[string]any)
	require.Equal(t, map[string]any{"key": "a", "offset": 5.0}, headJSON["waiting_on"])
	require.Nil(t, headJSON["next_try_at"])
	pk := p["parked_keys"].([]any)
	require.Nil(t, pk[0].(map[string]any)["until"])
	require.Equal(t, "2030-01-02T03:05:05Z", pk[1].(map[string]any)["until"])
	require.Equal(t, []any{"uncommitted"}, p["pause_reasons"])
}

// requireDocumentedFields checks that every documented path is present in
// doc: in each element of a list (and some list on each path must have
// elements, so that its fields are checked at least once), and in each
// record object (blocking, every key's head) for "record." paths. A
// sub-object's fields are required where the sub-object is not null.
func requireDocumentedFields(t *testing.T, paths []string, doc map[string]any) {
	t.Helper()
	var records []map[string]any
	for _, path := range paths {
		seen := 0
		if rest, ok := strings.CutPrefix(path, "record."); ok {
			for _, r := range recordsOf(t, doc, &records) {
				requirePath(t, path, r, strings.Split(rest, "."), &seen)
			}
		} else {
			requirePath(t, path, doc, strings.Split(path, "."), &seen)
		}
		require.Positive(t, seen, "%s: never reached (an empty list or a null object on the way): fill it to check it", path)
	}
}

func recordsOf(t *testing.T, doc map[string]any, cache *[]map[string]any) []map[string]any {
	if *cache != nil {
		return *cache
	}
	for _, p := range doc["partitions"].([]any) {
		pm := p.(map[string]any)
		if b, ok := pm["blocking"].(map[string]any); ok {
			*cache = append(*cache, b)
		}
		for _, k := range pm["top_keys"].([]any) {
			*cache = append(*cache, k.(map[string]any)["head"].(map[string]any))
		}
	}
	require.NotEmpty(t, *cache, "no record object to check")
	return *cache
}

// requirePath follows steps from v, requiring each field on the way;
// seen counts the times the path's end was reached.
func requirePath(t *testing.T, full string, v any, steps []string, seen *int) {
	t.Helper()
	if len(steps) == 0 {
		*seen++
		return
	}
	m, ok := v.(map[string]any)
	require.True(t, ok, "%s: %v is not an object", full, v)
	name, list := strings.CutSuffix(steps[0], "[]")
	child, present := m[name]
	require.True(t, present, "%s: field %q missing in %v", full, name, m)
	if list {
		items, ok := child.([]any)
		require.True(t, ok, "%s: %q is not a list (lists are never null): %v", full, name, child)
		for _, it := range items {
			requirePath(t, full, it, steps[1:], seen)
		}
		return
	}
	if child == nil && len(steps) > 1 {
		return // a null object: its fields are required where it is not null
	}
	requirePath(t, full, child, steps[1:], seen)
}

// Keys and errors are cut and made valid UTF-8; nothing else of a record
// is shown.
func TestKeysAndErrorsAreTruncated(t *testing.T) {
	h, err := New(new(orderly.Engine), WithMaxKeyLength(5), WithMaxErrorLength(4))
	require.NoError(t, err)
	in := fullInspection()
	in.Partitions[0].Blocking.Key = "abcdefgh"
	in.Partitions[0].Blocking.Keys = []string{"ab\xffcdefgh"}
	in.Partitions[0].Blocking.LastError = errors.New("a long error")
	s := h.state(in)
	b := s.Partitions[0].Blocking
	require.Equal(t, "abcd…", *b.Key)
	require.Equal(t, []string{"ab\uFFFDc…"}, b.Keys)
	require.Equal(t, "a l…", *b.LastError)
	require.Equal(t, "abc", truncate("abc", 3))
	require.Equal(t, "…", truncate("abc", 1))

	h, err = New(new(orderly.Engine), WithMaxErrorLength(-1))
	require.NoError(t, err)
	require.Nil(t, h.state(in).Partitions[0].Blocking.LastError, "errors hidden")
}
