package orderly_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/committer"
)

// A claim whose Start carries metadata (offsets done above the watermark)
// but that ends before it has dispatched past those offsets must carry the
// metadata on in its commits. (A regression: the committer used to encode
// only what its own tracker saw completed, so such a claim committed its
// start offset with empty metadata and the next owner handled the listed
// records a second time although nothing failed or crashed. The
// conformance suite's rebalance test found it.)
func TestClaimKeepsInheritedSkipMetadataItHasNotReached(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	for _, k := range []string{"slow", "a", "b", "c", "d", "e"} {
		_, err := log.ProduceTo("t", 0, []byte(k), []byte(k))
		require.NoError(t, err)
	}
	run := func(h orderly.HandlerFunc, until func(), opts ...orderly.Option) {
		eng, err := orderly.New(log.Member("g", []string{"t"}), h, append([]orderly.Option{orderly.WithLogger(quiet),
			orderly.WithDrainTimeout(50 * time.Millisecond), orderly.WithCommitInterval(10 * time.Millisecond)}, opts...)...)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		until()
		cancel()
		require.NoError(t, <-done)
	}
	blockSlow := func(started chan<- struct{}, handled *sync.Map) orderly.HandlerFunc {
		return func(ctx context.Context, r *orderly.Record) error {
			handled.Store(r.Offset, true)
			if string(r.Key) == "slow" {
				close(started)
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
	}

	// Run 1: offset 0 outlives the drain timeout, 1-5 complete.
	var first sync.Map
	started := make(chan struct{})
	run(blockSlow(started, &first), func() {
		<-started
		require.Eventually(t, func() bool {
			n := 0
			first.Range(func(any, any) bool { n++; return true })
			return n == 6
		}, 10*time.Second, time.Millisecond)
	})
	pos, _ := log.Committed("g", "t", 0)
	ranges, err := committer.DecodeMetadata(pos.Offset, pos.Metadata)
	require.NoError(t, err)
	require.Equal(t, []committer.Range{{First: 1, Last: 5}}, ranges, "run 1 commits 0 with 1-5 done")

	// Run 2: offset 0 blocks again and fills the uncommitted window of 1,
	// so the claim ends before it reaches 1-5. Nothing was handled.
	var second sync.Map
	started = make(chan struct{})
	run(blockSlow(started, &second), func() { <-started }, orderly.WithMaxUncommitted(1))
	pos, _ = log.Committed("g", "t", 0)
	ranges, err = committer.DecodeMetadata(pos.Offset, pos.Metadata)
	require.NoError(t, err)
	require.Equal(t, []committer.Range{{First: 1, Last: 5}}, ranges,
		"run 2 completed nothing, yet its final commit %+v dropped the metadata it started from", pos)
}
