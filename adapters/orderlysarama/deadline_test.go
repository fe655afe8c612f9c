package orderlysarama_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
)

// within calls f with a context whose deadline is d away and returns its
// result, failing the test if f has not returned 20s after the deadline:
// far sooner than the 5 minutes sarama itself would wait for an answer in
// these tests.
func within[T any](t *testing.T, d time.Duration, what string, f func(context.Context) T) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan T, 1)
	go func() { done <- f(ctx) }()
	select {
	case v := <-done:
		return v
	case <-time.After(d + 20*time.Second):
		t.Fatalf("%s did not return after its deadline", what)
		var zero T
		return zero
	}
}

// commitWithin calls cl.Commit within d (see within).
func commitWithin(t *testing.T, cl orderly.Claim, d time.Duration, next int64, metadata string) error {
	t.Helper()
	return within(t, d, fmt.Sprintf("Commit(%d)", next), func(ctx context.Context) error { return cl.Commit(ctx, next, metadata) })
}

// Commit honours its context's deadline while the coordinator holds the
// connection open and never answers: sarama's request takes no context,
// and would wait Net.ReadTimeout (5 minutes here). The request abandoned
// at the deadline may still be stored later; the claim's next commit is
// sent after it, so the committed position never goes back.
func TestCommitReturnsByItsDeadlineWhileTheCoordinatorHangs(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	link := newFaultDialer()
	cfg := link.use(config(nil))
	cfg.Net.ReadTimeout = 5 * time.Minute
	cfg.Consumer.Group.Session.Timeout = 5 * time.Minute // the group keeps the member while its connections are held
	cfg.Consumer.Group.Rebalance.Timeout = 5 * time.Minute
	cs := newClaims()
	consuming(t, newSource(t, c, "g", cfg, "t"), cs.serve)
	cl := cs.next(t)
	require.NoError(t, commitWithin(t, cl, 30*time.Second, 1, "stored"))

	link.Hold()
	require.ErrorIs(t, commitWithin(t, cl, 300*time.Millisecond, 2, "held"), context.DeadlineExceeded,
		"the request is sent and never answered")
	require.ErrorIs(t, commitWithin(t, cl, 300*time.Millisecond, 3, "queued"), context.DeadlineExceeded,
		"the next commit waits for the abandoned one, within its own deadline")

	link.Restore()
	require.NoError(t, commitWithin(t, cl, 30*time.Second, 4, "after"))
	require.Equal(t, orderly.Position{Offset: 4, Metadata: "after"}, committed(t, c, "g", "t", 1)[0],
		"the abandoned commit (2) landed before the later one")
}

// Consume returns, once every claim is handed back, within the session
// timeout even while the coordinator holds every connection open without
// answering: sarama's heartbeat and LeaveGroup take no context and would
// each wait Net.ReadTimeout (5 minutes here).
func TestConsumeReturnsWhileTheCoordinatorHangs(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 2, "t")
	link := newFaultDialer()
	cfg := link.use(config(nil))
	cfg.Net.ReadTimeout = 5 * time.Minute
	cfg.Consumer.Group.Session.Timeout = time.Second
	cs := newClaims()
	stop := consuming(t, newSource(t, c, "g", cfg, "t"), cs.serve)
	cs.next(t)
	cs.next(t)

	link.Hold()
	require.NoError(t, stop(), "Consume returns (within untilStopped's 30s)")
	for range 2 {
		select {
		case <-cs.served:
		default:
			t.Fatal("Consume returned before every serve call did")
		}
	}
}
