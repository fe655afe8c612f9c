package orderly_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// filteringHook keeps the records whose offset keep says, and counts
// every record hook it gets, per offset.
type filteringHook struct {
	keep  func(*orderly.Record) bool
	panic bool

	mu    sync.Mutex
	calls map[int64][]string
	asked int
}

func (f *filteringHook) ObserveRecords(_ context.Context, b []*orderly.Record, keep []bool) {
	f.mu.Lock()
	f.asked += len(b)
	f.mu.Unlock()
	if f.panic {
		panic("filter")
	}
	for i, r := range b {
		keep[i] = f.keep(r)
	}
}

func (f *filteringHook) note(r *orderly.Record, what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[int64][]string{}
	}
	f.calls[r.Offset] = append(f.calls[r.Offset], what)
}

func (f *filteringHook) OnRecordDispatched(r *orderly.Record, _ orderly.RecordInfo) {
	f.note(r, "dispatched")
}
func (f *filteringHook) OnAttemptStarted(ctx context.Context, r *orderly.Record, _ orderly.RecordInfo) context.Context {
	f.note(r, "started")
	return ctx
}
func (f *filteringHook) OnAttemptFinished(_ context.Context, r *orderly.Record, _ orderly.RecordInfo, _ error) {
	f.note(r, "finished")
}
func (f *filteringHook) OnRetryScheduled(_ context.Context, r *orderly.Record, _ orderly.RecordInfo, _ error, _ time.Duration) {
	f.note(r, "retry")
}
func (f *filteringHook) OnRecordDone(r *orderly.Record, _ orderly.RecordInfo, _ orderly.Outcome, _ error) {
	f.note(r, "done")
}

func (f *filteringHook) seen() map[int64][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int64][]string{}
	for k, v := range f.calls {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// A hook that filters hears of the records it keeps, every one of their
// hooks (retries included), and of no other; a hook that does not filter,
// beside it, hears of every record.
func TestHookRecordFilter(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	const n = 40
	for i := range n {
		_, err := log.ProduceTo("t", 0, []byte{byte('a' + i%5)}, nil)
		require.NoError(t, err)
	}
	even := &filteringHook{keep: func(r *orderly.Record) bool { return r.Offset%2 == 0 }}
	all := &filteringHook{keep: func(*orderly.Record) bool { return true }}
	plain := &countingDone{}
	var tries sync.Map
	h := orderly.HandlerFunc(func(_ context.Context, r *orderly.Record) error {
		if r.Offset%4 < 2 {
			if _, again := tries.LoadOrStore(r.Offset, true); !again {
				return errors.New("once")
			}
		}
		return nil
	})
	eng, err := orderly.New(log.Member("g", []string{"t"}), h, orderly.WithHooks(even, plain, all),
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond}), orderly.WithLogger(quiet),
		orderly.WithCommitInterval(5*time.Millisecond))
	require.NoError(t, err)
	stop := running(t, eng)
	waitCommittedToEnd(t, log, 1)
	require.NoError(t, stop())

	seen := even.seen()
	for o := range int64(n) {
		want := []string{"dispatched", "started", "finished", "done"}
		if o%4 < 2 {
			want = []string{"dispatched", "started", "finished", "retry", "started", "finished", "done"}
		}
		if o%2 == 1 {
			assert.Empty(t, seen[o], "offset %d was left out by the filter", o)
			continue
		}
		assert.Equal(t, want, seen[o], "offset %d", o)
		assert.Equal(t, want, all.seen()[o], "offset %d, the hook that keeps all", o)
	}
	assert.Equal(t, n, len(all.seen()))
	assert.Equal(t, int64(n), plain.n.Load(), "a hook without a filter hears of every record")
}

// A filter that panics keeps every record of its batch: its hooks are
// called as without it.
func TestHookRecordFilterPanicKeepsAll(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	for range 10 {
		_, err := log.ProduceTo("t", 0, []byte("k"), nil)
		require.NoError(t, err)
	}
	f := &filteringHook{panic: true}
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }),
		orderly.WithHooks(f), orderly.WithLogger(quiet), orderly.WithCommitInterval(5*time.Millisecond))
	require.NoError(t, err)
	stop := running(t, eng)
	waitCommittedToEnd(t, log, 1)
	require.NoError(t, stop())
	assert.Len(t, f.seen(), 10)
	for o, calls := range f.seen() {
		assert.Equal(t, []string{"dispatched", "started", "finished", "done"}, calls, "offset %d", o)
	}
}

// countingDone counts OnRecordDone calls.
type countingDone struct{ n atomic.Int64 }

func (c *countingDone) OnRecordDone(*orderly.Record, orderly.RecordInfo, orderly.Outcome, error) {
	c.n.Add(1)
}
