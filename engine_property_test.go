package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"pgregory.net/rapid"
)

// propRecord is what the property test's handler learns from a record.
type propRecord struct {
	id   int
	keys []string // ordering keys, as the mode sees them
}

// parseProp reads "id|k1,k2" values.
func parseProp(r *orderly.Record) propRecord {
	id, keys, _ := strings.Cut(string(r.Value), "|")
	var p propRecord
	fmt.Sscan(id, &p.id)
	if keys != "" {
		p.keys = strings.Split(keys, ",")
	}
	return p
}

type event struct {
	member    int
	partition int32
	offset    int64
	id        int
}

// world records what every member's handler did.
type world struct {
	mu       sync.Mutex
	events   map[string][]event // partition/key -> handler starts in order
	handled  map[int]int        // record id -> times handled
	running  map[string]int     // partition/key -> member running it
	overlaps []string
	crashed  map[int]bool
	total    atomic.Int64
	progress chan struct{} // poked on every handled record
	overHeld atomic.Value  // string describing a bound violation
}

func newWorld() *world {
	return &world{events: map[string][]event{}, handled: map[int]int{}, running: map[string]int{},
		crashed: map[int]bool{}, progress: make(chan struct{}, 1)}
}

func (w *world) waitFor(t *rapid.T, n int64, what string, stats func() string) {
	deadline := time.After(30 * time.Second)
	for w.total.Load() < n {
		select {
		case <-w.progress:
		case <-deadline:
			t.Fatalf("waiting for %s: %d of %d handled; %s", what, w.total.Load(), n, stats())
		}
	}
}

func TestEnginePropertiesOnMemoryLog(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mode := rapid.SampledFrom([]string{"key", "keys", "serial", "unordered"}).Draw(t, "mode")
		partitions := rapid.IntRange(1, 4).Draw(t, "partitions")
		nkeys := rapid.SampledFrom([]int{1, 2, 5, 50, 2000}).Draw(t, "keys")
		nrecords := rapid.IntRange(1, 400).Draw(t, "records")
		nilKeys := rapid.Float64Range(0, 0.3).Draw(t, "nilKeyShare")
		concurrency := rapid.IntRange(1, 16).Draw(t, "concurrency")
		partBuf := rapid.IntRange(1, 64).Draw(t, "partitionBuffer")
		engBuf := rapid.IntRange(1, 128).Draw(t, "engineBuffer")
		uncommitted := rapid.IntRange(1, 200).Draw(t, "maxUncommitted")
		failShare := rapid.Float64Range(0, 0.2).Draw(t, "failShare")
		maxLatency := rapid.IntRange(0, 300).Draw(t, "maxLatencyMicros")
		// Batch boundaries: the memory log's batches are at most its fetch
		// buffer, and a resplit source cuts them again at random points.
		fetch := rapid.IntRange(1, 64).Draw(t, "fetchBuffer")
		cutSeed := rapid.Uint64().Draw(t, "cutSeed")
		cut := rapid.Bool().Draw(t, "cut")

		log := memory.NewLog()
		if err := log.CreateTopic("t", partitions); err != nil {
			t.Fatal(err)
		}
		latency := map[int]time.Duration{}
		fails := map[int]bool{}
		for i := range nrecords {
			var keys []string
			n := 1
			if mode == "keys" {
				n = rapid.IntRange(0, 3).Draw(t, "ids")
			}
			for range n {
				keys = append(keys, fmt.Sprint("k", rapid.IntRange(0, nkeys-1).Draw(t, "key")))
			}
			var key []byte
			if len(keys) > 0 && rapid.Float64Range(0, 1).Draw(t, "nil") >= nilKeys {
				key = []byte(keys[0])
			} else if mode == "key" {
				keys = nil
			}
			p := int32(rapid.IntRange(0, partitions-1).Draw(t, "partition"))
			if _, err := log.ProduceTo("t", p, key, []byte(fmt.Sprintf("%d|%s", i, strings.Join(keys, ",")))); err != nil {
				t.Fatal(err)
			}
			latency[i] = time.Duration(rapid.IntRange(0, maxLatency).Draw(t, "latency")) * time.Microsecond
			fails[i] = rapid.Float64Range(0, 1).Draw(t, "fail") < failShare
		}

		var ordering orderly.Ordering
		switch mode {
		case "key":
			ordering = orderly.ByKey()
		case "keys":
			ordering = orderly.ByKeys(func(r *orderly.Record) []string { return parseProp(r).keys })
		case "serial":
			ordering = orderly.Serial()
		default:
			ordering = orderly.Unordered()
		}
		keysOf := func(r *orderly.Record, p propRecord) []string {
			switch mode {
			case "serial":
				return []string{"all"}
			case "unordered":
				return nil
			case "key":
				if r.Key == nil {
					return nil
				}
				return []string{string(r.Key)}
			}
			return dedupe(p.keys)
		}

		w := newWorld()
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		type member struct {
			m      *memory.Member
			eng    *orderly.Engine
			cancel context.CancelFunc
			done   chan error
		}
		var members []*member
		start := func() {
			id := len(members)
			m := log.Member("g", []string{"t"}, memory.WithFetchBuffer(fetch))
			var src orderly.Source = m
			if cut {
				src = resplit{Source: m, seed: cutSeed + uint64(id)}
			}
			var eng *orderly.Engine
			h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				p := parseProp(r)
				keys := keysOf(r, p)
				w.mu.Lock()
				for _, k := range keys {
					slot := fmt.Sprint(r.Partition, "/", k)
					if other, busy := w.running[slot]; busy {
						w.overlaps = append(w.overlaps, fmt.Sprintf("%s: members %d and %d", slot, other, id))
					}
					w.running[slot] = id
					w.events[slot] = append(w.events[slot], event{id, r.Partition, r.Offset, p.id})
				}
				w.handled[p.id]++
				w.mu.Unlock()
				if s := eng.Stats(); s.HeldRecords > int64(engBuf) {
					w.overHeld.Store(fmt.Sprintf("engine holds %d records, limit %d", s.HeldRecords, engBuf))
				}
				time.Sleep(latency[p.id])
				w.mu.Lock()
				for _, k := range keys {
					delete(w.running, fmt.Sprint(r.Partition, "/", k))
				}
				w.mu.Unlock()
				w.total.Add(1)
				select {
				case w.progress <- struct{}{}:
				default:
				}
				if fails[p.id] {
					return errors.New("planned failure")
				}
				return nil
			})
			var err error
			eng, err = orderly.New(src, h,
				orderly.WithOrdering(ordering),
				orderly.WithMaxConcurrency(concurrency),
				orderly.WithPartitionBuffer(partBuf, 1<<20),
				orderly.WithEngineBuffer(engBuf, 1<<20),
				orderly.WithMaxUncommitted(uncommitted),
				orderly.WithCommitInterval(5*time.Millisecond),
				orderly.WithCommitEvery(rapid.IntRange(0, 20).Draw(t, "commitEvery")),
				orderly.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			mb := &member{m: m, eng: eng, cancel: cancel, done: make(chan error, 1)}
			go func() { mb.done <- eng.Run(ctx) }()
			members = append(members, mb)
		}
		live := func() []int {
			var ids []int
			for i, mb := range members {
				if mb.m != nil {
					ids = append(ids, i)
				}
			}
			return ids
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

		crashes := 0
		for range rapid.IntRange(1, 3).Draw(t, "initialMembers") {
			start()
		}
		for step := range rapid.IntRange(0, 4).Draw(t, "membershipChanges") {
			at := int64(nrecords) * int64(step+1) / 6
			w.waitFor(t, at, fmt.Sprintf("step %d", step), stats)
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
				i := ids[rapid.IntRange(0, len(ids)-1).Draw(t, "who")]
				w.mu.Lock()
				w.crashed[i] = true
				w.mu.Unlock()
				members[i].m.Crash()
				<-members[i].done
				members[i].cancel()
				members[i].m = nil
				crashes++
			}
		}

		// Every record is handled at least once, and the live members commit
		// every partition to its end (after a crash they first handle again
		// what the crashed member had not committed).
		deadline := time.After(30 * time.Second)
		for {
			w.mu.Lock()
			missing := ""
			for i := range nrecords {
				if w.handled[i] == 0 {
					missing = fmt.Sprintf("record %d never handled", i)
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

		if v := w.overHeld.Load(); v != nil {
			t.Fatal(v)
		}
		for _, o := range w.overlaps {
			// A crashed member's handlers may still run (a zombie) while the
			// new owner starts: only overlaps between live members count.
			var a, b int
			fmt.Sscanf(o[strings.Index(o, "members"):], "members %d and %d", &a, &b)
			if !w.crashed[a] && !w.crashed[b] {
				t.Fatalf("two records of one key at once: %s", o)
			}
		}
		if mode != "unordered" {
			for slot, evs := range w.events {
				last := map[int]int64{}
				for _, ev := range evs {
					if prev, ok := last[ev.member]; ok && ev.offset <= prev {
						t.Fatalf("%s: member %d handled offset %d after %d", slot, ev.member, ev.offset, prev)
					}
					last[ev.member] = ev.offset
				}
			}
		}
		if crashes == 0 {
			for id, n := range w.handled {
				if n != 1 {
					t.Fatalf("record %d handled %d times with no crash", id, n)
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
			end, _ := log.EndOffset("t", p)
			pos, _ := log.Committed("g", "t", p)
			if end > 0 && pos.Offset != end {
				t.Fatalf("partition %d: final commit %d, end %d", p, pos.Offset, end)
			}
		}
	})
}

func dedupe(in []string) []string {
	var out []string
	for _, k := range in {
		dup := false
		for _, o := range out {
			dup = dup || o == k
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}
