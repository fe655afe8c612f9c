package committer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly/committer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// store is a Target that records every commit and can be told to fail.
type store struct {
	mu      sync.Mutex
	commits []int64
	metas   []string
	fail    error
}

func (s *store) Commit(_ context.Context, next int64, meta string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.commits = append(s.commits, next)
	s.metas = append(s.metas, meta)
	return nil
}

func (s *store) last() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.commits) == 0 {
		return -1
	}
	return s.commits[len(s.commits)-1]
}

func (s *store) all() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits)
}

// TestActorCommitsTheWatermarkOnTheInterval: out-of-order completions, the
// watermark is committed on the next tick, with the completed offsets
// above it in the metadata; the uncommitted window's credits come back as
// the watermark passes.
func TestActorCommitsTheWatermarkOnTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := committer.NewActor(committer.Config{Interval: time.Second, Timeout: time.Second})
		a.Start()
		defer a.Stop()
		st := &store{}
		var passed int64
		p, done, err := a.Open(committer.Opening{Target: st, Start: 10, OnPassed: func(n int64) { passed += n }})
		require.NoError(t, err)
		require.Empty(t, done)
		for o := int64(10); o < 20; o++ {
			p.Register(o)
		}
		p.Complete(10)
		p.Complete(11)
		p.Complete(13)
		p.Send()
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		assert.Equal(t, []int64{12}, st.all())
		assert.Equal(t, int64(12), p.Committed())
		assert.Equal(t, int64(12), p.Watermark())
		assert.Equal(t, int64(8), p.Pending())
		assert.Equal(t, int64(2), passed)
		ranges, err := committer.DecodeMetadata(12, st.metas[0])
		require.NoError(t, err)
		assert.Equal(t, []committer.Range{{First: 13, Last: 13}}, ranges)

		// Nothing moved: no commit at the next tick.
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Len(t, st.all(), 1)

		for o := int64(12); o < 20; o++ {
			if o != 13 {
				p.Complete(o)
			}
		}
		p.Send()
		require.NoError(t, p.Close(context.Background()))
		assert.Equal(t, []int64{12, 20}, st.all())
		assert.Equal(t, int64(10), passed)
		// Notices after Close are ignored, and Close again says so.
		p.Register(20)
		p.Complete(20)
		p.Send()
		assert.ErrorIs(t, p.Close(context.Background()), committer.ErrClosed)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []int64{12, 20}, st.all())
	})
}

// TestActorCommitsEvery: Every commits a partition as soon as that many
// completions came in, without waiting for the interval.
func TestActorCommitsEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := committer.NewActor(committer.Config{Interval: time.Hour, Timeout: time.Second, Every: 5})
		a.Start()
		defer a.Stop()
		st := &store{}
		p, _, _ := a.Open(committer.Opening{Target: st, Start: -1})
		for o := int64(0); o < 4; o++ {
			p.Register(o)
			p.Complete(o)
		}
		p.Send()
		synctest.Wait()
		assert.Empty(t, st.all(), "4 completions: below Every")
		p.Register(4)
		p.Complete(4)
		p.Send()
		synctest.Wait()
		assert.Equal(t, []int64{5}, st.all())
		require.NoError(t, p.Close(context.Background()))
	})
}

// TestActorRetriesFailedCommits: a failed interval commit is tried again
// at the next tick; the observer hears of every attempt.
func TestActorRetriesFailedCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []committer.Commit
		a := committer.NewActor(committer.Config{Interval: time.Second, Timeout: time.Second,
			OnCommit: func(_ committer.Target, c committer.Commit) {
				mu.Lock()
				seen = append(seen, c)
				mu.Unlock()
			}})
		a.Start()
		defer a.Stop()
		st := &store{fail: errors.New("coordinator away")}
		p, _, _ := a.Open(committer.Opening{Target: st, Start: 0})
		p.Register(0)
		p.Complete(0)
		p.Send()
		time.Sleep(time.Second)
		synctest.Wait()
		st.mu.Lock()
		st.fail = nil
		st.mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []int64{1}, st.all())
		assert.Equal(t, int64(1), p.Committed())
		require.NoError(t, p.Close(context.Background()))
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, seen, 3)
		assert.Error(t, seen[0].Err)
		assert.NoError(t, seen[1].Err)
		assert.True(t, seen[2].Final, "the final commit is observed even with nothing new")
		assert.Equal(t, seen[2].From, seen[2].To)
	})
}

// TestActorBatchesPartitions: with Batch set, the partitions that moved
// are committed by one call per interval.
func TestActorBatchesPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var calls [][]committer.Request
		a := committer.NewActor(committer.Config{Interval: time.Second, Timeout: time.Second,
			Batch: func(_ context.Context, reqs []committer.Request) []error {
				mu.Lock()
				calls = append(calls, slices.Clone(reqs))
				mu.Unlock()
				return make([]error, len(reqs))
			}})
		a.Start()
		defer a.Stop()
		var ps []*committer.Partition
		for range 3 {
			p, _, _ := a.Open(committer.Opening{Target: &store{}, Start: 0})
			p.Register(0)
			p.Complete(0)
			p.Send()
			ps = append(ps, p)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		require.Len(t, calls, 1)
		assert.Len(t, calls[0], 3)
		mu.Unlock()
		for _, p := range ps {
			assert.Equal(t, int64(1), p.Committed())
			require.NoError(t, p.Close(context.Background()))
		}
	})
}

// TestActorFlushCommitsNow: Flush commits at once, after the notices sent,
// and reports the commit's error.
func TestActorFlushCommitsNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := committer.NewActor(committer.Config{Interval: time.Hour, Timeout: time.Second})
		a.Start()
		defer a.Stop()
		st := &store{}
		p, _, _ := a.Open(committer.Opening{Target: st, Start: 0})
		p.RegisterDone(0)
		p.RegisterDone(1)
		require.NoError(t, p.Flush(context.Background()))
		assert.Equal(t, []int64{2}, st.all())
		require.NoError(t, p.Flush(context.Background()), "nothing new: no commit")
		assert.Len(t, st.all(), 1)
		st.mu.Lock()
		st.fail = errors.New("no")
		st.mu.Unlock()
		p.RegisterDone(2)
		assert.Error(t, p.Flush(context.Background()))
		require.Error(t, p.Close(context.Background()))
	})
}

// TestActorStopAnswersWaiters: requests made after Stop are answered, not
// left hanging.
func TestActorStopAnswersWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := committer.NewActor(committer.Config{Interval: time.Second, Timeout: time.Second})
		a.Start()
		p, _, _ := a.Open(committer.Opening{Target: &store{}, Start: 0})
		a.Stop()
		assert.ErrorIs(t, p.Close(context.Background()), committer.ErrClosed)
	})
}

// TestActorDecodesStartMetadata: Open returns the ranges the start
// metadata says are done; foreign metadata is reported and skips nothing.
func TestActorDecodesStartMetadata(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := committer.NewActor(committer.Config{Interval: time.Second, Timeout: time.Second})
		a.Start()
		defer a.Stop()
		meta, _ := committer.EncodeMetadata(5, []committer.Range{{First: 7, Last: 8}}, 0)
		p, done, err := a.Open(committer.Opening{Target: &store{}, Start: 5, Metadata: meta})
		require.NoError(t, err)
		assert.Equal(t, []committer.Range{{First: 7, Last: 8}}, done)
		require.NoError(t, p.Close(context.Background()))
		q, done, err := a.Open(committer.Opening{Target: &store{}, Start: 5, Metadata: "someone else's"})
		assert.ErrorIs(t, err, committer.ErrForeignMetadata)
		assert.Empty(t, done)
		require.NoError(t, q.Close(context.Background()))
	})
}

// TestActorCommitsNeverGoBackAndCoverOnlyCompleted drives the actor with
// random registrations, out-of-order completions, failing commits and
// flushes, against a model of the completed set: every committed position
// is at or above the one before it, every offset below a committed
// position was completed, and the final commit is the watermark.
func TestActorCommitsNeverGoBackAndCoverOnlyCompleted(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		synctest.Test(t, func(t *testing.T) {
			a := committer.NewActor(committer.Config{Interval: 10 * time.Millisecond, Timeout: time.Second,
				Every: rapid.IntRange(0, 5).Draw(rt, "every")})
			a.Start()
			defer a.Stop()
			st := &store{}
			p, _, _ := a.Open(committer.Opening{Target: st, Start: 0})
			var registered, done []int64
			completed := map[int64]bool{}
			next := int64(0)
			for range rapid.IntRange(1, 60).Draw(rt, "steps") {
				switch rapid.IntRange(0, 4).Draw(rt, "op") {
				case 0, 1:
					for range rapid.IntRange(1, 5).Draw(rt, "n") {
						next += rapid.Int64Range(1, 3).Draw(rt, "gap")
						p.Register(next)
						registered = append(registered, next)
					}
				case 2:
					if open := slices.DeleteFunc(slices.Clone(registered), func(o int64) bool { return completed[o] }); len(open) > 0 {
						o := open[rapid.IntRange(0, len(open)-1).Draw(rt, "which")]
						p.Complete(o)
						completed[o] = true
						done = append(done, o)
					}
				case 3:
					st.mu.Lock()
					st.fail = nil
					if rapid.Bool().Draw(rt, "fail") {
						st.fail = errors.New("refused")
					}
					st.mu.Unlock()
				case 4:
					time.Sleep(time.Duration(rapid.IntRange(1, 30).Draw(rt, "sleep")) * time.Millisecond)
				}
				p.Send()
				synctest.Wait()
			}
			st.mu.Lock()
			st.fail = nil
			st.mu.Unlock()
			require.NoError(t, p.Close(context.Background()))
			commits := st.all()
			// The watermark: the lowest registered offset not completed, or
			// one past the last when all are.
			want := int64(0)
			for _, o := range registered {
				if !completed[o] {
					want = o
					break
				}
				want = o + 1
			}
			if want > 0 {
				require.NotEmpty(t, commits)
				require.Equal(t, want, commits[len(commits)-1], "the final commit is the watermark")
			}
			for i, c := range commits {
				if i > 0 && c < commits[i-1] {
					t.Fatalf("commit %d went back from %d", c, commits[i-1])
				}
				for _, o := range registered {
					if o < c && !completed[o] {
						t.Fatalf("commit %d passed offset %d, which was never completed", c, o)
					}
				}
			}
		})
	})
}
