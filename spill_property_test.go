package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// claimTagger is a Source that numbers the claims it serves, so that the
// handler can tell which claim a record came through. Its claims keep the
// wrapped claims' Rereader.
type claimTagger struct {
	orderly.Source
	member int
	ids    *atomic.Int64
	mu     sync.Mutex
	cur    map[int32]int64 // partition -> claim id now served
	start  map[int64]int64 // claim id -> its Start offset (0 for NoOffset)
}

type taggedClaim struct {
	orderly.Claim
	rr orderly.Rereader
}

func (c taggedClaim) ReadFrom(ctx context.Context, offset int64) (orderly.RecordStream, error) {
	return c.rr.ReadFrom(ctx, offset)
}

func (s *claimTagger) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) {
		id := s.ids.Add(1)
		s.mu.Lock()
		s.cur[c.Partition()] = id
		s.start[id] = max(c.Start().Offset, 0)
		s.mu.Unlock()
		serve(taggedClaim{Claim: c, rr: c.(orderly.Rereader)})
	})
}

// claim returns the claim now serving partition p and its start offset.
func (s *claimTagger) claim(p int32) (id, start int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = s.cur[p]
	return id, s.start[id]
}

// spillWorld is what the property test's handlers saw.
type spillWorld struct {
	mu       sync.Mutex
	started  map[int64]map[int64]bool   // claim -> offsets started
	last     map[int64]map[string]int64 // claim -> partition/key -> last offset started
	ok       map[int32]map[int64]int    // partition -> offset -> successful handler calls
	failures []string
	total    atomic.Int64 // successful handler calls
	progress chan struct{}
}

func (w *spillWorld) fail(format string, args ...any) {
	w.failures = append(w.failures, fmt.Sprintf(format, args...))
}

// TestSpillPropertiesOnMemoryLog runs engines over workloads with hot and
// stuck keys and small key buffers, so that keys spill and are read back
// while members join, leave and crash, and checks:
//
//   - within one claim, a key's records start in offset order and no
//     record starts twice;
//   - within one claim, between two records of a key that it ran, every
//     record of that key ran successfully before (in an earlier claim):
//     nothing is skipped that was not done;
//   - every record runs successfully at least once, exactly once without a
//     crash, and every partition is committed to its end, commits never
//     going back;
//   - the engine never holds more than its buffer.
//
// Membership changes are made while a re-read is running when one runs
// within a short while, so revokes and crashes hit re-reads in progress;
// keys that are stuck meanwhile fill up again while they are read back.
func TestSpillPropertiesOnMemoryLog(t *testing.T) {
	var duringReread atomic.Int64
	rapid.Check(t, func(t *rapid.T) {
		partitions := rapid.IntRange(1, 2).Draw(t, "partitions")
		multi := rapid.Bool().Draw(t, "byKeys")
		nhot := rapid.IntRange(1, 3).Draw(t, "hotKeys")
		ncold := rapid.SampledFrom([]int{3, 20, 200}).Draw(t, "coldKeys")
		nrecords := rapid.IntRange(20, 300).Draw(t, "records")
		hotShare := rapid.Float64Range(0.2, 0.8).Draw(t, "hotShare")
		keyBuf := rapid.IntRange(1, 6).Draw(t, "keyBuffer")
		partBuf := rapid.IntRange(keyBuf+1, 64).Draw(t, "partitionBuffer")
		engBuf := rapid.IntRange(partBuf, 256).Draw(t, "engineBuffer")
		fetch := rapid.IntRange(1, 32).Draw(t, "fetchBuffer")
		stuckHot := rapid.Bool().Draw(t, "stuckHot") // hot key 0 blocks until released

		log := memory.NewLog()
		if err := log.CreateTopic("t", partitions); err != nil {
			t.Fatal(err)
		}
		keysOf := make([][]string, nrecords)
		where := make([][2]int64, nrecords) // partition, offset
		for i := range nrecords {
			var ks []string
			if rapid.Float64Range(0, 1).Draw(t, "hot") < hotShare {
				ks = append(ks, fmt.Sprint("h", rapid.IntRange(0, nhot-1).Draw(t, "hotKey")))
			} else {
				ks = append(ks, fmt.Sprint("c", rapid.IntRange(0, ncold-1).Draw(t, "coldKey")))
			}
			if multi && rapid.IntRange(0, 4).Draw(t, "second") == 0 {
				ks = append(ks, fmt.Sprint("c", rapid.IntRange(0, ncold-1).Draw(t, "secondKey")))
			}
			keysOf[i] = dedupe(ks)
			p := int32(rapid.IntRange(0, partitions-1).Draw(t, "partition"))
			off, err := log.ProduceTo("t", p, []byte(ks[0]), []byte(fmt.Sprintf("%d|%s", i, strings.Join(ks, ","))))
			if err != nil {
				t.Fatal(err)
			}
			where[i] = [2]int64{int64(p), off}
		}
		ordering := orderly.ByKey()
		if multi {
			ordering = orderly.ByKeys(func(r *orderly.Record) []string { return parseProp(r).keys })
		}

		keyOffsets := map[string][]int64{} // partition/key -> its offsets, ascending
		for i, at := range where {
			for _, k := range keysOf[i] {
				slot := fmt.Sprint(at[0], "/", k)
				keyOffsets[slot] = append(keyOffsets[slot], at[1])
			}
		}
		w := &spillWorld{started: map[int64]map[int64]bool{}, last: map[int64]map[string]int64{},
			ok: map[int32]map[int64]int{}, progress: make(chan struct{}, 1)}
		for p := range int32(partitions) {
			w.ok[p] = map[int64]int{}
		}
		unstuck := make(chan struct{})
		var ids atomic.Int64
		type member struct {
			tag    *claimTagger
			m      *memory.Member
			eng    *orderly.Engine
			cancel context.CancelFunc
			done   chan error
		}
		var members []*member
		crashed := false
		start := func() {
			m := log.Member("g", []string{"t"}, memory.WithFetchBuffer(fetch))
			tag := &claimTagger{Source: m, member: len(members), ids: &ids, cur: map[int32]int64{}, start: map[int64]int64{}}
			mb := &member{tag: tag, m: m, done: make(chan error, 1)}
			h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				id := parseProp(r).id
				claim, from := tag.claim(r.Partition)
				w.mu.Lock()
				if w.started[claim] == nil {
					w.started[claim], w.last[claim] = map[int64]bool{}, map[string]int64{}
				}
				if w.started[claim][r.Offset] {
					w.fail("claim %d started offset %d twice", claim, r.Offset)
				}
				w.started[claim][r.Offset] = true
				for _, k := range keysOf[id] {
					slot := fmt.Sprint(r.Partition, "/", k)
					prev, seen := w.last[claim][slot]
					if !seen {
						prev = from - 1
					}
					if seen && r.Offset <= prev {
						w.fail("claim %d, key %s: offset %d started after %d", claim, slot, r.Offset, prev)
					}
					// Every record of the key this claim went past was done
					// before it started this one: none skipped.
					for _, o := range keyOffsets[slot] {
						if o > prev && o < r.Offset && w.ok[r.Partition][o] == 0 {
							w.fail("claim %d, key %s: offset %d started with offset %d skipped and not done", claim, slot, r.Offset, o)
						}
					}
					w.last[claim][slot] = r.Offset
				}
				w.mu.Unlock()
				if s := mb.eng.Stats(); s.HeldRecords > int64(engBuf) {
					w.mu.Lock()
					w.fail("engine holds %d records, limit %d", s.HeldRecords, engBuf)
					w.mu.Unlock()
				}
				if stuckHot && keysOf[id][0] == "h0" {
					select {
					case <-unstuck:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				w.mu.Lock()
				w.ok[r.Partition][r.Offset]++
				w.mu.Unlock()
				w.total.Add(1)
				select {
				case w.progress <- struct{}{}:
				default:
				}
				return nil
			})
			eng, err := orderly.New(tag, h,
				orderly.WithOrdering(ordering),
				orderly.WithMaxConcurrency(8),
				orderly.WithKeyBuffer(keyBuf, 0),
				orderly.WithPartitionBuffer(partBuf, 0),
				orderly.WithEngineBuffer(engBuf, 0),
				orderly.WithCommitInterval(5*time.Millisecond),
				orderly.WithRevokeTimeout(20*time.Millisecond),
				orderly.WithDrainTimeout(20*time.Millisecond),
				orderly.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			mb.eng = eng
			ctx, cancel := context.WithCancel(context.Background())
			mb.cancel = cancel
			go func() { mb.done <- eng.Run(ctx) }()
			members = append(members, mb)
		}
		live := func() []int {
			var out []int
			for i, mb := range members {
				if mb.m != nil {
					out = append(out, i)
				}
			}
			return out
		}
		stats := func() string {
			var b strings.Builder
			for i, mb := range members {
				if mb.m != nil {
					fmt.Fprintf(&b, "member %d: %+v; ", i, mb.eng.Stats())
				}
			}
			return b.String()
		}
		rereading := func() bool {
			for _, i := range live() {
				if members[i].eng.Stats().Rereading > 0 {
					return true
				}
			}
			return false
		}

		start()
		if rapid.Bool().Draw(t, "twoMembers") {
			start()
		}
		releaseAt := rapid.IntRange(0, 3).Draw(t, "releaseAfterChange")
		changes := rapid.IntRange(0, 3).Draw(t, "membershipChanges")
		for step := range changes {
			if step == releaseAt {
				close(unstuck)
			}
			// Wait for some progress (or for none for a while: a stuck
			// key may hold much back), then for a re-read to be running
			// (if one runs within a short while).
			at := int64(nrecords) * int64(step+1) / int64(changes+2)
			for w.total.Load() < at {
				select {
				case <-w.progress:
					continue
				case <-time.After(30 * time.Millisecond):
				}
				break
			}
			if assertEventually(rereading, 30*time.Millisecond) {
				duringReread.Add(1)
			}
			ids := live()
			switch action := rapid.SampledFrom([]string{"join", "leave", "crash"}).Draw(t, "action"); {
			case action == "join" || len(ids) == 1:
				start()
			case action == "leave":
				mb := members[ids[rapid.IntRange(0, len(ids)-1).Draw(t, "who")]]
				mb.cancel()
				if err := <-mb.done; err != nil {
					t.Fatalf("Run after leave: %v", err)
				}
				mb.m = nil
			default:
				mb := members[ids[rapid.IntRange(0, len(ids)-1).Draw(t, "who")]]
				mb.m.Crash()
				if err := <-mb.done; err != nil && !errors.Is(err, memory.ErrCrashed) {
					t.Fatalf("Run after crash: %v", err)
				}
				mb.cancel()
				mb.m = nil
				crashed = true
			}
		}
		if releaseAt >= changes {
			close(unstuck)
		}

		deadline := time.After(30 * time.Second)
		for {
			missing := ""
			w.mu.Lock()
			for i, at := range where {
				if w.ok[int32(at[0])][at[1]] == 0 {
					missing = fmt.Sprintf("record %d (partition %d offset %d, keys %v) never handled", i, at[0], at[1], keysOf[i])
					break
				}
			}
			w.mu.Unlock()
			for p := range int32(partitions) {
				end, _ := log.EndOffset("t", p)
				if pos, _ := log.Committed("g", "t", p); missing == "" && end > 0 && pos.Offset != end {
					missing = fmt.Sprintf("partition %d committed %d of %d", p, pos.Offset, end)
				}
			}
			if missing == "" {
				break
			}
			select {
			case <-w.progress:
			case <-time.After(5 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%s; %s", missing, stats())
			}
		}
		for _, i := range live() {
			members[i].cancel()
			if err := <-members[i].done; err != nil {
				t.Fatalf("Run: %v", err)
			}
		}

		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.failures) > 0 {
			t.Fatal(strings.Join(w.failures, "\n"))
		}
		for p, oks := range w.ok {
			for o, n := range oks {
				if n > 1 && !crashed {
					t.Fatalf("partition %d offset %d handled %d times with no crash", p, o, n)
				}
			}
		}
		for p := range int32(partitions) {
			hist := log.CommitHistory("g", "t", p)
			for i := 1; i < len(hist); i++ {
				if hist[i].Offset < hist[i-1].Offset {
					t.Fatalf("partition %d: commit went back from %d to %d", p, hist[i-1].Offset, hist[i].Offset)
				}
			}
		}
	})
	t.Logf("membership changes made while a re-read was running: %d", duringReread.Load())
}
