package memory_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/orderly-go/orderly/adapters/memory"
)

// TestRandomGroupLife runs random sequences of joins, leaves, crashes and
// produces in real time (no bubble: the race detector sees real
// concurrency) and checks that, once a member has read everything, every
// record was delivered, no partition was served by two live members at
// once, commits never went backwards, and no goroutine is left over.
func TestRandomGroupLife(t *testing.T) {
	before := runtime.NumGoroutine()
	rapid.Check(t, func(t *rapid.T) {
		l := memory.NewLog()
		partitions := rapid.IntRange(1, 6).Draw(t, "partitions")
		require.NoError(t, l.CreateTopic("t", partitions))
		rec := newRecorder()
		type live struct {
			id string
			m  *memory.Member
			r  *running
		}
		var members []live
		var crashed []*running
		join := func() {
			id := fmt.Sprintf("m%d", len(members)+len(crashed))
			m := l.Member("g", []string{"t"}, memory.WithID(id),
				memory.WithFetchBuffer(rapid.IntRange(1, 8).Draw(t, "buffer")))
			members = append(members, live{id, m, consume(m, rec.serve(id))})
		}
		pick := func() (live, bool) {
			if len(members) == 0 {
				return live{}, false
			}
			i := rapid.IntRange(0, len(members)-1).Draw(t, "member")
			m := members[i]
			members = append(members[:i], members[i+1:]...)
			return m, true
		}

		steps := rapid.IntRange(1, 25).Draw(t, "steps")
		for range steps {
			switch rapid.SampledFrom([]string{"join", "leave", "crash", "produce"}).Draw(t, "action") {
			case "join":
				join()
			case "leave":
				if m, ok := pick(); ok {
					require.NoError(t, m.r.stop())
				}
			case "crash":
				if m, ok := pick(); ok {
					rec.crashing(m.id)
					m.m.Crash()
					crashed = append(crashed, m.r)
				}
			case "produce":
				for i := range rapid.IntRange(0, 40).Draw(t, "records") {
					var key []byte
					if i%4 != 0 {
						key = fmt.Appendf(nil, "k%d", i%7)
					}
					_, _, err := l.Produce("t", key, []byte("v"))
					require.NoError(t, err)
				}
			}
		}
		if len(members) == 0 {
			join()
		}
		require.Eventually(t, func() bool {
			for p := range int32(partitions) {
				end, _ := l.EndOffset("t", p)
				pos, ok := l.Committed("g", "t", p)
				if end > 0 && (!ok || pos.Offset != end) {
					return false
				}
			}
			return true
		}, 10*time.Second, time.Millisecond, "the live members commit everything")

		for _, m := range members {
			require.NoError(t, m.r.stop())
		}
		for _, r := range crashed {
			require.ErrorIs(t, <-r.done, memory.ErrCrashed)
		}
		require.Empty(t, rec.missing(t, l, "t"))
		requireMonotonicCommits(t, l, "g", "t")
		rec.mu.Lock()
		if len(rec.problems) > 0 {
			t.Fatalf("problems: %q", rec.problems)
		}
		rec.mu.Unlock()
	})
	// Polled here rather than with require.Eventually, whose condition
	// runs on a goroutine of its own.
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}
