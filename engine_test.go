package orderly_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// running starts eng and returns a function that stops it and returns Run's
// error.
func running(t *testing.T, eng *orderly.Engine) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
}

func produce(t *testing.T, log *memory.Log, topic string, p int32, keys ...string) {
	t.Helper()
	for i, k := range keys {
		var key []byte
		if k != "" {
			key = []byte(k)
		}
		_, err := log.ProduceTo(topic, p, key, []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
}

// A record that was still running at shutdown holds the watermark back,
// but the records completed above it are written into the commit metadata
// and skipped after a restart: only the unfinished one is handled again.
func TestRestartSkipsOffsetsCompletedAboveTheWatermark(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "slow", "a", "b", "c", "d", "e")

	var handled sync.Map
	var count atomic.Int32
	five := make(chan struct{})
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if string(r.Key) == "slow" {
			<-ctx.Done() // outlives the drain timeout
			return ctx.Err()
		}
		handled.Store(r.Offset, true)
		if count.Add(1) == 5 {
			close(five)
		}
		return nil
	}), orderly.WithDrainTimeout(50*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	<-five
	require.NoError(t, stop())

	pos, ok := log.Committed("g", "t", 0)
	require.True(t, ok)
	require.Equal(t, int64(0), pos.Offset, "the unfinished record holds the watermark")
	require.NotEmpty(t, pos.Metadata, "offsets 1-5 are done above the watermark")

	var again []int64
	var mu sync.Mutex
	first := make(chan struct{})
	eng2, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		mu.Lock()
		again = append(again, r.Offset)
		mu.Unlock()
		close(first)
		return nil
	}), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop = running(t, eng2)
	<-first
	require.Eventually(t, func() bool {
		p, _ := log.Committed("g", "t", 0)
		return p.Offset == 6
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int64{0}, again, "only the unfinished record is handled again")
}

// Metadata that is not orderly's, or is corrupt, or belongs to another
// offset is ignored: nothing is skipped, nothing crashes.
func TestForeignAndCorruptMetadataAreIgnored(t *testing.T) {
	for name, meta := range map[string]string{
		"foreign": "written by some other client",
		"corrupt": "ol1:AAAA!!not-base64",
		"stale":   "", // filled below: valid metadata for another offset
	} {
		t.Run(name, func(t *testing.T) {
			log := memory.NewLog()
			require.NoError(t, log.CreateTopic("t", 1))
			produce(t, log, "t", 0, "a", "b", "c", "d")
			if name == "stale" {
				meta = staleMetadata(t)
			}
			log.SetCommitted("g", "t", 0, orderly.Position{Offset: 1, Metadata: meta})
			var got []int64
			var mu sync.Mutex
			eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				mu.Lock()
				got = append(got, r.Offset)
				mu.Unlock()
				return nil
			}), orderly.WithOrdering(orderly.Serial()), orderly.WithLogger(quiet))
			require.NoError(t, err)
			stop := running(t, eng)
			require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 4 }, 10*time.Second, time.Millisecond)
			require.NoError(t, stop())
			require.Equal(t, []int64{1, 2, 3}, got)
		})
	}
}

// staleMetadata makes real orderly metadata committed with offset 0 (offset
// 1 done above it), which is stale for a committed offset of 1.
func staleMetadata(t *testing.T) string {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "slow", "x", "y")
	done := make(chan struct{}, 2)
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if string(r.Key) == "slow" {
			<-ctx.Done()
			return ctx.Err()
		}
		done <- struct{}{}
		return nil
	}), orderly.WithDrainTimeout(20*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	<-done
	<-done
	require.NoError(t, stop())
	p, _ := log.Committed("g", "t", 0)
	require.Equal(t, int64(0), p.Offset)
	require.NotEmpty(t, p.Metadata)
	return p.Metadata
}

// A handler that panics or fails does not stop the engine: the record
// goes to the recovery function (without one, to the log), counts as done,
// and the key moves on.
func TestHandlerPanicsAndErrorsDoNotStopTheEngine(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "k", "k", "k", "k")
	var failures []error
	var mu sync.Mutex
	var calls atomic.Int32
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		calls.Add(1)
		switch r.Offset {
		case 1:
			panic("boom")
		case 2:
			return fmt.Errorf("bad record")
		}
		return nil
	}), orderly.WithFallback(func(ctx context.Context, r *orderly.Record, err error) error {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
		return nil
	}))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 4 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Equal(t, int32(4), calls.Load())
	require.Len(t, failures, 2)
	var pe *orderly.PanicError
	require.ErrorAs(t, failures[0], &pe)
	require.Equal(t, "boom", pe.Value)
	require.EqualError(t, failures[1], "bad record")
	s := eng.Stats()
	require.Equal(t, uint64(2), s.RecordsHandled)
	require.Equal(t, uint64(2), s.AttemptsFailed)
}

// On revoke, a handler that outlives the revoke timeout has its context
// cancelled; its record is not committed (the next owner handles it), and
// the handover is not held up longer than the timeout.
func TestRevokeTimeoutCancelsHandlersAndFencesTheirCompletion(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 2))
	produce(t, log, "t", 0, "stuck")
	produce(t, log, "t", 1, "x")

	started := make(chan struct{})
	cancelled := make(chan struct{})
	a := log.Member("g", []string{"t"})
	engA, err := orderly.New(a, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if r.Partition == 1 {
			close(started)
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		}
		return nil
	}), orderly.WithRevokeTimeout(50*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stopA := running(t, engA)
	<-started

	// B joins: partition 1 moves to it, A's handler is stuck on it.
	var seenByB sync.Map
	engB, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		seenByB.Store(fmt.Sprint(r.Partition, "/", r.Offset), true)
		return nil
	}), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stopB := running(t, engB)
	<-cancelled
	require.Eventually(t, func() bool { _, ok := seenByB.Load("1/0"); return ok }, 10*time.Second, time.Millisecond,
		"the record whose handler was cancelled is handled by the next owner")
	require.NoError(t, stopB())
	require.NoError(t, stopA())
	for _, pos := range log.CommitHistory("g", "t", 1) {
		if pos.Offset > 0 {
			// Only B may have committed past it.
			_, ok := seenByB.Load("1/0")
			require.True(t, ok)
		}
	}
}

// At-most-once commits a record's offset before its handler runs.
func TestAtMostOnceCommitsBeforeHandling(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "a", "b", "c")
	var mu sync.Mutex
	var commitsSeen []int64
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		p, _ := log.Committed("g", "t", 0)
		mu.Lock()
		commitsSeen = append(commitsSeen, p.Offset-r.Offset)
		mu.Unlock()
		return nil
	}), orderly.WithAtMostOnce(), orderly.WithOrdering(orderly.Serial()))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(commitsSeen) == 3 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	for _, d := range commitsSeen {
		require.Positive(t, d, "the committed offset was already past the record when its handler ran")
	}
}

// newOneRecordRun runs an engine over one record until it is committed.
func newOneRecordRun(t *testing.T, h orderly.Handler, opts ...orderly.Option) (*memory.Log, func()) {
	t.Helper()
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "k")
	eng, err := orderly.New(log.Member("g", []string{"t"}), h,
		append([]orderly.Option{orderly.WithLogger(quiet), orderly.WithCommitInterval(5 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 1 }, 10*time.Second, time.Millisecond)
	return log, func() { require.NoError(t, stop()) }
}
