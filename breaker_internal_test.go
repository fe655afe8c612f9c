package orderly

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/orderly-go/orderly/backpressure"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/require"
)

// A breaker that opens while a claim is being set up (after the partition
// was made, before it joined the engine's list) still pauses that claim;
// one that closes again lifts the pause. The state change is gobreaker's
// callback, called directly at that exact moment.
func TestBreakerOpeningAsAClaimStartsPausesIt(t *testing.T) {
	eng, err := New(&oneClaimSource{}, HandlerFunc(func(context.Context, *Record) error { return nil }),
		WithCircuitBreaker(BreakerPolicy{}), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	eng.beforeJoin = func() { eng.breaker.changed("orderly", gobreaker.StateClosed, gobreaker.StateOpen) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	var p *partition
	require.Eventually(t, func() bool {
		ps := eng.partitions()
		if len(ps) == 1 {
			p = ps[0]
		}
		return p != nil && p.valve.Holds(backpressure.ReasonBreaker) == 1
	}, 10*time.Second, time.Millisecond, "the claim is paused for the open breaker")
	p.valve.Flush()
	eng.breaker.changed("orderly", gobreaker.StateOpen, gobreaker.StateHalfOpen)
	require.Zero(t, p.valve.Holds(backpressure.ReasonBreaker), "lifted when the breaker stops being open")
	cancel()
	require.NoError(t, <-done)
}

// oneClaimSource grants one empty claim and revokes it when Consume's
// context ends. (The memory adapter imports this package, so an internal
// test cannot use it.)
type oneClaimSource struct{}

func (oneClaimSource) Consume(ctx context.Context, serve func(Claim)) error {
	c := &emptyClaim{records: make(chan []*Record), revoked: make(chan struct{})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		serve(c)
	}()
	<-ctx.Done()
	close(c.revoked)
	close(c.records)
	<-served
	return nil
}

type emptyClaim struct {
	records chan []*Record
	revoked chan struct{}
}

func (c *emptyClaim) Topic() string                               { return "t" }
func (c *emptyClaim) Partition() int32                            { return 0 }
func (c *emptyClaim) Start() Position                             { return Position{Offset: NoOffset} }
func (c *emptyClaim) Records() <-chan []*Record                   { return c.records }
func (c *emptyClaim) Revoked() <-chan struct{}                    { return c.revoked }
func (c *emptyClaim) Pause()                                      {}
func (c *emptyClaim) Resume()                                     {}
func (c *emptyClaim) Commit(context.Context, int64, string) error { return nil }
