package orderlysarama_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

var _ orderly.BatchCommitter = (*orderlysarama.Source)(nil)

// foreignClaim wraps a claim the way a caller might; CommitBatch commits
// it through its own Commit.
type foreignClaim struct {
	orderly.Claim
	commits *atomic.Int64
}

func (f foreignClaim) Commit(ctx context.Context, next int64, metadata string) error {
	f.commits.Add(1)
	return f.Claim.Commit(ctx, next, metadata)
}

// servedClaims starts a Source on a cluster of one topic with n
// partitions and returns it with its claims, indexed by partition.
func servedClaims(t *testing.T, n int32, control func(c *kfake.Cluster)) (*orderlysarama.Source, []orderly.Claim, *kfake.Cluster, func() error) {
	t.Helper()
	c := cluster(t, 1, n, "t")
	if control != nil {
		control(c)
	}
	cs := newClaims()
	src := newSource(t, c, "g", config(nil), "t")
	stop := consuming(t, src, cs.serve)
	byPartition := make([]orderly.Claim, n)
	for range n {
		cl := cs.next(t)
		byPartition[cl.Partition()] = cl
	}
	return src, byPartition, c, stop
}

// CommitBatch stores several partitions' positions, metadata included, in
// one OffsetCommit request and reports each outcome; a claim wrapped by
// the caller is committed through its own Commit, and an ended claim gets
// ErrClaimEnded.
func TestCommitBatch(t *testing.T) {
	t.Parallel()
	const partitions = 3
	var requests, batched atomic.Int64
	src, claims, c, stop := servedClaims(t, partitions, func(c *kfake.Cluster) {
		c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			requests.Add(1)
			n := 0
			for _, t := range req.(*kmsg.OffsetCommitRequest).Topics {
				n += len(t.Partitions)
			}
			if n == partitions {
				batched.Add(1)
			}
			return nil, nil, false
		})
	})
	commits := make([]orderly.ClaimCommit, partitions)
	for i, cl := range claims {
		commits[i] = orderly.ClaimCommit{Claim: cl, Next: int64(10 + i), Metadata: "m" + string(rune('0'+i))}
	}
	before := requests.Load()
	require.Equal(t, []error{nil, nil, nil}, src.CommitBatch(context.Background(), commits))
	require.Equal(t, before+1, requests.Load(), "one request for the batch")
	require.Equal(t, int64(1), batched.Load(), "carrying every partition")
	for i, pos := range committed(t, c, "g", "t", partitions) {
		require.Equal(t, orderly.Position{Offset: int64(10 + i), Metadata: "m" + string(rune('0'+i))}, pos)
	}

	var wrapped atomic.Int64
	commits[1].Claim = foreignClaim{Claim: claims[1], commits: &wrapped}
	commits[1].Next = 21
	require.Equal(t, []error{nil, nil, nil}, src.CommitBatch(context.Background(), commits))
	require.Equal(t, int64(1), wrapped.Load(), "the wrapped claim committed through its own Commit")
	require.Equal(t, int64(21), committed(t, c, "g", "t", partitions)[1].Offset)

	require.NoError(t, stop())
	errs := src.CommitBatch(context.Background(), []orderly.ClaimCommit{{Claim: claims[0], Next: 30}, {Claim: claims[2], Next: 32}})
	require.ErrorIs(t, errs[0], orderlysarama.ErrClaimEnded)
	require.ErrorIs(t, errs[1], orderlysarama.ErrClaimEnded)
	require.Equal(t, int64(10), committed(t, c, "g", "t", partitions)[0].Offset, "nothing stored after the claims ended")
}

// A batch the coordinator rejects for its generation (a rejoin under way)
// is sent again partition by partition through Commit's path, and every
// partition is stored.
func TestCommitBatchRejectedIsSentAgainPerClaim(t *testing.T) {
	t.Parallel()
	const partitions = 3
	var requests atomic.Int64
	src, claims, c, _ := servedClaims(t, partitions, nil)
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if requests.Add(1) == 1 {
			return offsetCommitAnswer(req, kerr.IllegalGeneration.Code), nil, true
		}
		return nil, nil, false
	})
	commits := make([]orderly.ClaimCommit, partitions)
	for i, cl := range claims {
		commits[i] = orderly.ClaimCommit{Claim: cl, Next: int64(5 + i), Metadata: "again"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.Equal(t, []error{nil, nil, nil}, src.CommitBatch(ctx, commits))
	require.Equal(t, int64(1+partitions), requests.Load(), "the batch, then one request per claim")
	for i, pos := range committed(t, c, "g", "t", partitions) {
		require.Equal(t, orderly.Position{Offset: int64(5 + i), Metadata: "again"}, pos)
	}
}

// CommitBatch returns by its deadline while the coordinator holds the
// connection open and never answers, and the claims' later commits are
// sent after the abandoned batch: the committed positions never go back.
func TestCommitBatchReturnsByItsDeadlineWhileTheCoordinatorHangs(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 2, "t")
	link := newFaultDialer()
	cfg := link.use(config(nil))
	cfg.Net.ReadTimeout = 5 * time.Minute
	cfg.Consumer.Group.Session.Timeout = 5 * time.Minute // the group keeps the member while its connections are held
	cfg.Consumer.Group.Rebalance.Timeout = 5 * time.Minute
	cs := newClaims()
	src := newSource(t, c, "g", cfg, "t")
	consuming(t, src, cs.serve)
	claims := make([]orderly.Claim, 2)
	for range 2 {
		cl := cs.next(t)
		claims[cl.Partition()] = cl
	}
	batch := func(d time.Duration, next int64, metadata string) []error {
		return within(t, d, fmt.Sprintf("CommitBatch(%d)", next), func(ctx context.Context) []error {
			return src.CommitBatch(ctx, []orderly.ClaimCommit{
				{Claim: claims[0], Next: next, Metadata: metadata},
				{Claim: claims[1], Next: next, Metadata: metadata},
			})
		})
	}
	require.Equal(t, []error{nil, nil}, batch(30*time.Second, 1, "stored"))

	link.Hold()
	for _, err := range batch(300*time.Millisecond, 2, "held") {
		require.ErrorIs(t, err, context.DeadlineExceeded, "the request is sent and never answered")
	}
	require.ErrorIs(t, commitWithin(t, claims[1], 300*time.Millisecond, 3, "queued"), context.DeadlineExceeded,
		"a claim's next commit waits for the abandoned batch, within its own deadline")

	link.Restore()
	require.NoError(t, commitWithin(t, claims[0], 30*time.Second, 4, "after"))
	require.NoError(t, commitWithin(t, claims[1], 30*time.Second, 4, "after"))
	for _, pos := range committed(t, c, "g", "t", 2) {
		require.Equal(t, orderly.Position{Offset: 4, Metadata: "after"}, pos, "the abandoned batch (2) landed before the later commits")
	}
}
