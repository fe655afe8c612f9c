package orderlykgo_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

// claims serves each claim by handing it to the test and holding it until
// it is revoked: the test reads Records itself.
type claims struct {
	ch     chan orderly.Claim
	served chan orderly.Claim // a claim whose serve call returned
}

func newClaims() *claims {
	return &claims{ch: make(chan orderly.Claim, 16), served: make(chan orderly.Claim, 16)}
}

func (c *claims) serve(cl orderly.Claim) {
	c.ch <- cl
	<-cl.Revoked()
	c.served <- cl
}

func (c *claims) next(t *testing.T) orderly.Claim {
	t.Helper()
	select {
	case cl := <-c.ch:
		return cl
	case <-time.After(30 * time.Second):
		t.Fatal("no claim within 30s")
		return nil
	}
}

// reader reads a claim's records one at a time.
type reader struct {
	cl     orderly.Claim
	unread []*orderly.Record
}

// receive returns the claim's next record: the rest of its last batch
// first.
func (r *reader) receive(t *testing.T) *orderly.Record {
	t.Helper()
	if len(r.unread) == 0 {
		select {
		case b, ok := <-r.cl.Records():
			require.True(t, ok, "Records closed")
			require.NotEmpty(t, b, "an empty batch")
			r.unread = b
		case <-time.After(30 * time.Second):
			t.Fatal("no record within 30s")
		}
	}
	rec := r.unread[0]
	r.unread = r.unread[1:]
	return rec
}

// Start carries the committed offset and its metadata, and the first
// record delivered is at that offset. Commit is synchronous and stores the
// metadata even when the offset does not change. After serve returns,
// Commit fails with ErrClaimEnded.
func TestClaimStartCommitAndEnd(t *testing.T) {
	t.Parallel()
	c := cluster(t, 3, 1, "t")
	p := newProducer(t, c, true)
	for i := range 6 {
		produceTo(t, p, "t", 0, "k", string(rune('a'+i)))
	}
	commitAs(t, c, "g", "t", 0, orderly.Position{Offset: 3, Metadata: "hello"})

	cs := newClaims()
	stop := consuming(t, newSource(t, groupOpts(c, "g", "t")), cs.serve)
	cl := cs.next(t)
	require.Equal(t, "t", cl.Topic())
	require.Equal(t, int32(0), cl.Partition())
	require.Equal(t, orderly.Position{Offset: 3, Metadata: "hello"}, cl.Start())
	r := (&reader{cl: cl}).receive(t)
	require.Equal(t, int64(3), r.Offset, "delivery starts at Start")
	require.Equal(t, "d", string(r.Value))
	require.Equal(t, "k", string(r.Key))
	require.Equal(t, "t", r.Topic)
	require.Equal(t, int64(6), cl.(orderly.EndOffsetter).EndOffset(), "the high watermark of the fetch")

	ctx := context.Background()
	require.NoError(t, cl.Commit(ctx, 5, "first"))
	require.Equal(t, orderly.Position{Offset: 5, Metadata: "first"}, committed(t, c, "g", "t", 1)[0])
	require.NoError(t, cl.Commit(ctx, 5, "second"), "same offset, new metadata")
	require.Equal(t, orderly.Position{Offset: 5, Metadata: "second"}, committed(t, c, "g", "t", 1)[0])
	require.NoError(t, cl.Commit(ctx, 4, "lower"), "lower offsets are accepted, as Kafka does")
	require.Equal(t, orderly.Position{Offset: 4, Metadata: "lower"}, committed(t, c, "g", "t", 1)[0])

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, cl.Commit(cancelled, 6, ""), context.Canceled)

	require.NoError(t, stop())
	select {
	case <-cl.Revoked():
	default:
		t.Fatal("Revoked not closed after Consume returned")
	}
	for range cl.Records() { // closed after the revoke
	}
	require.ErrorIs(t, cl.Commit(ctx, 6, ""), orderlykgo.ErrClaimEnded)
	require.Equal(t, orderly.Position{Offset: 4, Metadata: "lower"}, committed(t, c, "g", "t", 1)[0], "nothing stored after the claim ended")
}

// A fresh group has no committed offset: Start is NoOffset and delivery
// starts at the beginning (kgo's default start offset).
func TestClaimStartWithoutCommitIsNoOffset(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	p := newProducer(t, c, true)
	produceTo(t, p, "t", 0, "k", "v")
	cs := newClaims()
	consuming(t, newSource(t, groupOpts(c, "g", "t")), cs.serve)
	cl := cs.next(t)
	require.Equal(t, orderly.Position{Offset: orderly.NoOffset}, cl.Start())
	require.Equal(t, int64(0), (&reader{cl: cl}).receive(t).Offset)
}

// Pause stops delivery of the partition (after what the claim already
// holds) while the member's other partition keeps flowing; Resume
// restarts it at the next offset.
func TestPauseStopsDeliveryAndResumeRestartsIt(t *testing.T) {
	t.Parallel()
	// One broker: both partitions share one fetch loop, so a record of
	// partition 1 produced after a Pause and then delivered proves that a
	// fetch built after the Pause completed.
	c := cluster(t, 1, 2, "t")
	p := newProducer(t, c, true)
	for i := range 5 {
		produceTo(t, p, "t", 0, "k", "before-"+string(rune('0'+i)))
	}
	cs := newClaims()
	src := newSource(t, groupOpts(c, "g", "t"))
	consuming(t, src, cs.serve)
	byPartition := map[int32]*reader{}
	for range 2 {
		cl := cs.next(t)
		byPartition[cl.Partition()] = &reader{cl: cl}
	}
	paused, flowing := byPartition[0], byPartition[1]
	for i := range 5 {
		require.Equal(t, int64(i), paused.receive(t).Offset)
	}

	paused.cl.Pause()
	paused.cl.Pause() // idempotent
	require.True(t, src.Paused("t", 0))
	require.False(t, src.Paused("t", 1))
	// A fetch in flight at the Pause may still carry partition 0; every
	// fetch that delivers a later marker was built after the Pause.
	produceTo(t, p, "t", 1, "k", "marker-1")
	require.Equal(t, "marker-1", string(flowing.receive(t).Value))
	produceTo(t, p, "t", 0, "k", "while-paused")
	produceTo(t, p, "t", 1, "k", "marker-2")
	require.Equal(t, "marker-2", string(flowing.receive(t).Value))
	produceTo(t, p, "t", 1, "k", "marker-3")
	require.Equal(t, "marker-3", string(flowing.receive(t).Value))
	select {
	case b := <-paused.cl.Records():
		t.Fatalf("record %d of the paused partition delivered", b[0].Offset)
	default:
	}

	paused.cl.Resume()
	paused.cl.Resume() // idempotent
	require.False(t, src.Paused("t", 0))
	r := paused.receive(t)
	require.Equal(t, int64(5), r.Offset)
	require.Equal(t, "while-paused", string(r.Value))
}

// rejectCommits makes the cluster answer the next OffsetCommit with code
// for every partition.
func rejectCommits(c *kfake.Cluster, code int16) {
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// A commit the coordinator rejects because the member's generation is
// over is an error wrapping ErrFenced (and kgo's error); one it rejects
// while a rebalance completes is retried.
func TestCommitRejectedByTheCoordinator(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	cs := newClaims()
	consuming(t, newSource(t, groupOpts(c, "g", "t")), cs.serve)
	cl := cs.next(t)

	rejectCommits(c, kerr.IllegalGeneration.Code)
	err := cl.Commit(context.Background(), 1, "m")
	require.ErrorIs(t, err, orderlykgo.ErrFenced)
	require.ErrorIs(t, err, kerr.IllegalGeneration)
	require.NotEqual(t, orderly.Position{Offset: 1, Metadata: "m"}, committed(t, c, "g", "t", 1)[0])

	rejectCommits(c, kerr.RebalanceInProgress.Code)
	require.NoError(t, cl.Commit(context.Background(), 2, "retried"), "the control rejected one request only")
	require.Equal(t, orderly.Position{Offset: 2, Metadata: "retried"}, committed(t, c, "g", "t", 1)[0])
}

// A member whose session the coordinator no longer knows loses its
// partitions: its claims are revoked and fenced, and a Commit on them
// fails without sending anything. The member then joins again and gets
// a new claim, which commits.
func TestLostPartitionIsFenced(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	var commitsSent atomic.Int64
	c.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		commitsSent.Add(1)
		return nil, nil, false
	})
	var held sync.Mutex // the test's hold on the first claim's serve
	held.Lock()
	cs := newClaims()
	consuming(t, newSource(t, groupOpts(c, "g", "t")), func(cl orderly.Claim) {
		cs.ch <- cl
		<-cl.Revoked()
		held.Lock() // the test commits after the revoke, before serve returns
		held.Unlock()
	})
	first := cs.next(t)
	require.NoError(t, first.Commit(context.Background(), 0, "before"))

	// The coordinator forgets the member: its next heartbeat fails.
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	select {
	case <-first.Revoked():
	case <-time.After(30 * time.Second):
		t.Fatal("the lost claim was not revoked")
	}
	sent := commitsSent.Load()
	err := first.Commit(context.Background(), 1, "after")
	require.ErrorIs(t, err, orderlykgo.ErrFenced)
	require.Equal(t, sent, commitsSent.Load(), "a lost claim sends no commit")
	held.Unlock()

	second := cs.next(t)
	require.Equal(t, orderly.Position{Offset: 0, Metadata: "before"}, second.Start())
	require.NoError(t, second.Commit(context.Background(), 0, "again"))
	require.Equal(t, orderly.Position{Offset: 0, Metadata: "again"}, committed(t, c, "g", "t", 1)[0])
}

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

// CommitBatch stores several partitions' positions, metadata included, in
// one OffsetCommit request and reports each outcome; an ended claim gets
// ErrClaimEnded and a claim wrapped by the caller is committed through its
// own Commit.
func TestCommitBatch(t *testing.T) {
	t.Parallel()
	const partitions = 3
	c := cluster(t, 1, partitions, "t")
	var requests, batched atomic.Int64
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
	cs := newClaims()
	src := newSource(t, groupOpts(c, "g", "t"))
	stop := consuming(t, src, cs.serve)
	byPartition := make([]orderly.Claim, partitions)
	for range partitions {
		cl := cs.next(t)
		byPartition[cl.Partition()] = cl
	}
	commits := make([]orderly.ClaimCommit, partitions)
	for i, cl := range byPartition {
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
	commits[1].Claim = foreignClaim{Claim: byPartition[1], commits: &wrapped}
	commits[1].Next = 21
	errs := src.CommitBatch(context.Background(), commits)
	require.Equal(t, []error{nil, nil, nil}, errs)
	require.Equal(t, int64(1), wrapped.Load(), "the wrapped claim committed through its own Commit")
	require.Equal(t, int64(21), committed(t, c, "g", "t", partitions)[1].Offset)

	require.NoError(t, stop())
	errs = src.CommitBatch(context.Background(), commits[:1])
	require.ErrorIs(t, errs[0], orderlykgo.ErrClaimEnded)
}

// Consume keeps retrying (kgo logs each failed dial as a warning) while no
// broker is reachable, and returns nil once its context is done; a second Consume
// fails.
func TestConsumeRetriesUnreachableBrokersUntilCancelled(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	logs := &logCounter{}
	src, err := orderlykgo.NewSource([]kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		// kgo retries a failed metadata request after its backoff, and
		// asks again no sooner than MetadataMinAge after that.
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.MetadataMinAge(10 * time.Millisecond),
	}, orderlykgo.WithLogger(logs.logger()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Consume(ctx, func(orderly.Claim) { t.Error("no claim expected") }) }()
	require.Eventually(t, func() bool { return logs.warnings() >= 3 }, 30*time.Second, time.Millisecond, "retries are logged")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Consume did not return")
	}
	require.ErrorIs(t, src.Consume(context.Background(), func(orderly.Claim) {}), orderlykgo.ErrConsumed)
	require.ErrorIs(t, src.Consume(context.Background(), nil), orderlykgo.ErrInvalidConfig)
}
