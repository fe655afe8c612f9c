package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"pgregory.net/rapid"
)

type outcome int

const (
	ok outcome = iota
	transient
	permanent
	panics
	timeout
)

// commitSpy wraps a source so that every commit can be checked when it
// happens.
type commitSpy struct {
	orderly.Source
	check func(c orderly.Claim, next int64)
}

type spiedClaim struct {
	orderly.Claim
	check func(c orderly.Claim, next int64)
}

func (s commitSpy) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) { serve(spiedClaim{c, s.check}) })
}

func (c spiedClaim) Commit(ctx context.Context, next int64, meta string) error {
	c.check(c.Claim, next)
	return c.Claim.Commit(ctx, next, meta)
}

func TestFailureHandlingProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		partitions := rapid.IntRange(1, 3).Draw(t, "partitions")
		nkeys := rapid.IntRange(1, 8).Draw(t, "keys")
		nrecords := rapid.IntRange(1, 120).Draw(t, "records")
		maxAttempts := rapid.IntRange(1, 4).Draw(t, "maxAttempts")
		parking := rapid.Bool().Draw(t, "parking")
		sinkFailures := rapid.IntRange(0, 3).Draw(t, "sinkFailuresPerRecord")

		log := memory.NewLog()
		if err := log.CreateTopic("t", partitions); err != nil {
			t.Fatal(err)
		}
		type rec struct {
			p        int32
			off      int64
			key      string // "" = nil key, unordered
			schedule []outcome
		}
		var recs []rec
		byPos := map[string]int{}
		for i := range nrecords {
			r := rec{p: int32(rapid.IntRange(0, partitions-1).Draw(t, "p"))}
			if rapid.Float64Range(0, 1).Draw(t, "nilKey") > 0.1 {
				r.key = fmt.Sprint("k", rapid.IntRange(0, nkeys-1).Draw(t, "key"))
			}
			for range maxAttempts {
				r.schedule = append(r.schedule, outcome(rapid.IntRange(0, 4).Draw(t, "outcome")))
			}
			var key []byte
			if r.key != "" {
				key = []byte(r.key)
			}
			off, err := log.ProduceTo("t", r.p, key, []byte(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			r.off = off
			byPos[fmt.Sprint(r.p, "/", off)] = i
			recs = append(recs, r)
		}

		// The model: which records end handled, which dead-lettered.
		wantDead := map[int]bool{}
		parked := map[string]bool{}
		for i, r := range recs {
			slot := fmt.Sprint(r.p, "/", r.key)
			if parking && r.key != "" && parked[slot] {
				wantDead[i] = true
				continue
			}
			dead := true
			for a, o := range r.schedule {
				if o == ok {
					dead = false
					break
				}
				if o == permanent || a == maxAttempts-1 {
					break
				}
			}
			if dead {
				wantDead[i] = true
				if parking && r.key != "" {
					parked[slot] = true
				}
			}
		}

		var mu sync.Mutex
		attempts := map[int]int{}
		done := map[int]string{}        // record -> "handled" | "dead"
		calls := map[string][]int64{}   // partition/key -> handler call offsets in order
		deadSeq := map[string][]int64{} // partition/key -> dead-lettered offsets in order
		var violations []string
		running := map[string]bool{}

		h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			mu.Lock()
			i := byPos[fmt.Sprint(r.Partition, "/", r.Offset)]
			slot := fmt.Sprint(r.Partition, "/", string(r.Key))
			if r.Key != nil {
				if running[slot] {
					violations = append(violations, "two records of "+slot+" at once")
				}
				running[slot] = true
				calls[slot] = append(calls[slot], r.Offset)
			}
			a := attempts[i]
			attempts[i]++
			o := recs[i].schedule[min(a, len(recs[i].schedule)-1)]
			if o == ok {
				done[i] = "handled"
			}
			mu.Unlock()
			defer func() {
				mu.Lock()
				delete(running, slot)
				mu.Unlock()
			}()
			switch o {
			case transient:
				return errors.New("transient")
			case permanent:
				return orderly.Permanent(errors.New("permanent"))
			case panics:
				panic("handler panic")
			case timeout:
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		var sinkCalls int
		sinkTries := map[int]int{}
		sink := orderly.DeadLetterFunc(func(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
			mu.Lock()
			defer mu.Unlock()
			sinkCalls++
			i := byPos[fmt.Sprint(r.Partition, "/", r.Offset)]
			if sinkTries[i]++; sinkTries[i] <= sinkFailures {
				return errors.New("dead-letter topic unavailable")
			}
			if done[i] != "" {
				violations = append(violations, fmt.Sprintf("record %d dead-lettered after %s", i, done[i]))
			}
			done[i] = "dead"
			slot := fmt.Sprint(r.Partition, "/", string(r.Key))
			deadSeq[slot] = append(deadSeq[slot], r.Offset)
			return nil
		})

		src := commitSpy{Source: log.Member("g", []string{"t"}), check: func(c orderly.Claim, next int64) {
			mu.Lock()
			defer mu.Unlock()
			for i, r := range recs {
				if r.p == c.Partition() && r.off < next && done[i] == "" {
					violations = append(violations, fmt.Sprintf("commit %d of partition %d passed record %d (offset %d) before it was done", next, r.p, i, r.off))
				}
			}
		}}
		opts := []orderly.Option{
			orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: maxAttempts, InitialDelay: time.Millisecond, MaxDelay: 3 * time.Millisecond}),
			orderly.WithAttemptTimeout(2 * time.Millisecond),
			orderly.WithDeadLetter(sink),
			orderly.WithCommitInterval(2 * time.Millisecond),
			orderly.WithCommitEvery(rapid.IntRange(0, 5).Draw(t, "commitEvery")),
			orderly.WithMaxConcurrency(rapid.IntRange(1, 8).Draw(t, "concurrency")),
			orderly.WithLogger(quiet),
		}
		if parking {
			opts = append(opts, orderly.WithKeyParking(0))
		}
		eng, err := orderly.New(src, h, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- eng.Run(ctx) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			all := true
			for p := range int32(partitions) {
				end, _ := log.EndOffset("t", p)
				if pos, _ := log.Committed("g", "t", p); end > 0 && pos.Offset != end {
					all = false
				}
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				mu.Lock()
				var open []string
				for i, r := range recs {
					if done[i] == "" {
						open = append(open, fmt.Sprintf("record %d p%d off %d key %q schedule %v attempts %d", i, r.p, r.off, r.key, r.schedule, attempts[i]))
					}
				}
				mu.Unlock()
				t.Fatalf("not all committed: %+v; unfinished: %v; sink calls %d", eng.Stats(), open, sinkCalls)
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-runErr; err != nil {
			t.Fatal(err)
		}

		mu.Lock()
		defer mu.Unlock()
		if len(violations) > 0 {
			t.Fatal(violations)
		}
		for i := range recs {
			want := "handled"
			if wantDead[i] {
				want = "dead"
			}
			if done[i] != want {
				t.Fatalf("record %d (key %q, schedule %v): %q, want %q", i, recs[i].key, recs[i].schedule, done[i], want)
			}
		}
		for slot, offs := range calls {
			for j := 1; j < len(offs); j++ {
				if offs[j] < offs[j-1] {
					t.Fatalf("%s: handler saw offset %d after %d", slot, offs[j], offs[j-1])
				}
			}
		}
		for slot, offs := range deadSeq {
			for j := 1; j < len(offs); j++ {
				if offs[j] <= offs[j-1] && slot[len(slot)-1] != '/' {
					t.Fatalf("%s: dead-lettered offset %d after %d", slot, offs[j], offs[j-1])
				}
			}
		}
	})
}
