package orderlysarama_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// claims serves each claim by handing it to the test and holding it until
// it is revoked (or the test lets it go): the test reads Records itself.
type claims struct {
	ch      chan orderly.Claim
	release chan struct{}
	served  chan orderly.Claim // a claim whose serve call returned
}

func newClaims() *claims {
	return &claims{ch: make(chan orderly.Claim, 16), release: make(chan struct{}), served: make(chan orderly.Claim, 16)}
}

func (c *claims) serve(cl orderly.Claim) {
	c.ch <- cl
	select {
	case <-cl.Revoked():
	case <-c.release:
	}
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

// unread holds, per claim read with receive, the rest of its last batch.
var unread = struct {
	sync.Mutex
	m map[orderly.Claim][]*orderly.Record
}{m: make(map[orderly.Claim][]*orderly.Record)}

// receive returns cl's next record: the rest of its last batch first.
func receive(t *testing.T, cl orderly.Claim) *orderly.Record {
	t.Helper()
	unread.Lock()
	rest := unread.m[cl]
	if len(rest) > 0 {
		unread.m[cl] = rest[1:]
	}
	unread.Unlock()
	if len(rest) > 0 {
		return rest[0]
	}
	select {
	case b, ok := <-cl.Records():
		require.True(t, ok, "Records closed")
		require.NotEmpty(t, b, "an empty batch")
		unread.Lock()
		unread.m[cl] = b[1:]
		unread.Unlock()
		return b[0]
	case <-time.After(30 * time.Second):
		t.Fatal("no record within 30s")
		return nil
	}
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
	stop := consuming(t, newSource(t, c, "g", config(nil), "t"), cs.serve)
	cl := cs.next(t)
	require.Equal(t, "t", cl.Topic())
	require.Equal(t, int32(0), cl.Partition())
	require.Equal(t, orderly.Position{Offset: 3, Metadata: "hello"}, cl.Start())
	r := receive(t, cl)
	require.Equal(t, int64(3), r.Offset, "delivery starts at Start")
	require.Equal(t, "d", string(r.Value))

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
	require.ErrorIs(t, cl.Commit(ctx, 6, ""), orderlysarama.ErrClaimEnded)
	require.Equal(t, orderly.Position{Offset: 4, Metadata: "lower"}, committed(t, c, "g", "t", 1)[0], "nothing stored after the claim ended")
}

// A fresh group has no committed offset: Start is NoOffset and delivery
// starts at Consumer.Offsets.Initial (oldest here).
func TestClaimStartWithoutCommitIsNoOffset(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	p := newProducer(t, c, true)
	produceTo(t, p, "t", 0, "k", "v")
	cs := newClaims()
	consuming(t, newSource(t, c, "g", config(nil), "t"), cs.serve)
	cl := cs.next(t)
	require.Equal(t, orderly.Position{Offset: orderly.NoOffset}, cl.Start())
	require.Equal(t, int64(0), receive(t, cl).Offset)
}

// Pause stops delivery of the partition (after what was already fetched)
// while the member's other partition keeps flowing; Resume restarts it.
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
	consuming(t, newSource(t, c, "g", config(sarama.NewBalanceStrategyRange), "t"), cs.serve)
	byPartition := map[int32]orderly.Claim{}
	for range 2 {
		cl := cs.next(t)
		byPartition[cl.Partition()] = cl
	}
	paused, flowing := byPartition[0], byPartition[1]
	for i := range 5 {
		require.Equal(t, int64(i), receive(t, paused).Offset)
	}

	paused.Pause()
	paused.Pause() // idempotent
	// The fetch in flight at the Pause may still carry partition 0; the
	// one that delivers this record may be it, but every later fetch is
	// built after it returned.
	produceTo(t, p, "t", 1, "k", "marker-1")
	require.Equal(t, "marker-1", string(receive(t, flowing).Value))
	produceTo(t, p, "t", 0, "k", "while-paused")
	produceTo(t, p, "t", 1, "k", "marker-2")
	require.Equal(t, "marker-2", string(receive(t, flowing).Value))
	produceTo(t, p, "t", 1, "k", "marker-3")
	require.Equal(t, "marker-3", string(receive(t, flowing).Value))
	select {
	case b := <-paused.Records():
		t.Fatalf("record %d of the paused partition delivered", b[0].Offset)
	default:
	}

	paused.Resume()
	paused.Resume() // idempotent
	r := receive(t, paused)
	require.Equal(t, int64(5), r.Offset)
	require.Equal(t, "while-paused", string(r.Value))
}

// offsetCommitAnswer answers every partition of an OffsetCommit with code.
func offsetCommitAnswer(req kmsg.Request, code int16) kmsg.Response {
	r := req.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// A commit the coordinator rejects for its generation while the member's
// session lives (what a rejoin under way looks like) is sent again, and
// stored once the coordinator accepts it.
func TestCommitRejectedForItsGenerationIsSentAgainWhileTheSessionLives(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	cs := newClaims()
	consuming(t, newSource(t, c, "g", config(nil), "t"), cs.serve)
	cl := cs.next(t)

	var commits atomic.Int32
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if commits.Add(1) == 1 {
			c.KeepControl() // to count the next one
			return offsetCommitAnswer(req, kerr.IllegalGeneration.Code), nil, true
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, cl.Commit(ctx, 1, "m"))
	require.Equal(t, int32(2), commits.Load(), "rejected once, then sent again")
	require.Equal(t, orderly.Position{Offset: 1, Metadata: "m"}, committed(t, c, "g", "t", 1)[0])
}

// A member the coordinator no longer counts (its heartbeat answered
// UNKNOWN_MEMBER_ID, so sarama ends its session) gets an error wrapping
// ErrFenced for a commit rejected for its generation, and nothing is
// stored.
func TestCommitFromAFencedMemberFails(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	commitAs(t, c, "g", "t", 0, orderly.Position{Offset: 0, Metadata: "before"})
	cs := newClaims()
	consuming(t, newSource(t, c, "g", config(nil), "t"), cs.serve)
	cl := cs.next(t)

	// The heartbeats are answered UNKNOWN_MEMBER_ID only once the commit
	// has reached the coordinator: a session ended before Commit started
	// would end the claim first, and Commit would rightly answer
	// ErrClaimEnded.
	var fenced, expelled atomic.Bool
	fenced.Store(true)
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !fenced.Load() {
			return nil, nil, false
		}
		c.KeepControl()
		expelled.Store(true)
		return offsetCommitAnswer(req, kerr.IllegalGeneration.Code), nil, true
	})
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !expelled.Load() {
			c.KeepControl() // for the next heartbeat
			return nil, nil, false
		}
		resp := req.(*kmsg.HeartbeatRequest).ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cl.Commit(ctx, 1, "m")
	fenced.Store(false)
	require.ErrorIs(t, err, orderlysarama.ErrFenced)
	require.ErrorIs(t, err, sarama.ErrIllegalGeneration)
	require.Equal(t, orderly.Position{Offset: 0, Metadata: "before"}, committed(t, c, "g", "t", 1)[0], "nothing stored")
}

// Consume keeps retrying (and logging) while no broker is reachable, and
// returns nil once its context is done.
func TestConsumeRetriesUnreachableBrokersUntilCancelled(t *testing.T) {
	t.Parallel()
	logs := &logCounter{}
	cfg := config(nil)
	cfg.Metadata.Retry.Max = 0
	cfg.Net.DialTimeout = 100 * time.Millisecond
	src, err := orderlysarama.NewSource([]string{"127.0.0.1:1"}, "g", []string{"t"}, cfg,
		orderlysarama.WithLogger(logs.logger()), orderlysarama.WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
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
	require.ErrorIs(t, src.Consume(context.Background(), func(orderly.Claim) {}), orderlysarama.ErrConsumed)
}

var _ = errors.New
