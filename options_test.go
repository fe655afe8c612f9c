package orderly_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	src := memory.NewLog().Member("g", []string{"t"})
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil })
	cases := map[string][]orderly.Option{
		"concurrency -1":           {orderly.WithMaxConcurrency(-1)},
		"key buffer -1":            {orderly.WithKeyBuffer(-1, 1)},
		"key bytes -1":             {orderly.WithKeyBuffer(1, -1)},
		"partition buffer -1":      {orderly.WithPartitionBuffer(-1, 10)},
		"engine bytes -1":          {orderly.WithEngineBuffer(10, -1)},
		"low mark 1":               {orderly.WithLowWaterMark(1)},
		"low mark negative":        {orderly.WithLowWaterMark(-0.1)},
		"uncommitted -1":           {orderly.WithMaxUncommitted(-1)},
		"commit interval -1s":      {orderly.WithCommitInterval(-time.Second)},
		"commit every -2":          {orderly.WithCommitEvery(-2)},
		"commit timeout -1s":       {orderly.WithCommitTimeout(-time.Second)},
		"revoke timeout -1s":       {orderly.WithRevokeTimeout(-time.Second)},
		"drain timeout -1s":        {orderly.WithDrainTimeout(-time.Second)},
		"nil logger":               {orderly.WithLogger(nil)},
		"nil middleware":           {orderly.WithMiddleware(nil)},
		"nil fallback":             {orderly.WithFallback(nil)},
		"nil dead-letter sink":     {orderly.WithDeadLetter(nil)},
		"parking without sink":     {orderly.WithKeyParking(time.Second)},
		"negative parking":         {orderly.WithKeyParking(-time.Second)},
		"retry negative delay":     {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, InitialDelay: -time.Second})},
		"retry max below init":     {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, MaxDelay: time.Millisecond})},
		"retry multiplier 0.5":     {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, Multiplier: 0.5})},
		"retry jitter 2":           {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, Jitter: 2})},
		"retry attempts -2":        {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: -2})},
		"breaker ratio 2":          {orderly.WithCircuitBreaker(orderly.BreakerPolicy{FailureRatio: 2})},
		"breaker negative cool":    {orderly.WithCircuitBreaker(orderly.BreakerPolicy{CoolDown: -time.Second})},
		"attempt timeout -1s":      {orderly.WithAttemptTimeout(-time.Second)},
		"rate 0":                   {orderly.WithRateLimit(0, 1)},
		"partition burst negative": {orderly.WithPartitionRateLimit(10, -1)},
		"hook of no kind":          {orderly.WithHooks(struct{}{})},
		"zero ordering":            {orderly.WithOrdering(orderly.Ordering{})},
		"nil option":               {nil},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			eng, err := orderly.New(src, h, opts...)
			require.Nil(t, eng)
			require.ErrorIs(t, err, orderly.ErrInvalidOption)
		})
	}
	_, err := orderly.New(nil, h)
	require.ErrorIs(t, err, orderly.ErrInvalidOption)
	_, err = orderly.New(src, nil)
	require.ErrorIs(t, err, orderly.ErrInvalidOption)

	// Every bad option is reported, not just the first.
	_, err = orderly.New(src, h, orderly.WithMaxConcurrency(-1), orderly.WithMaxUncommitted(-1))
	require.ErrorContains(t, err, "WithMaxConcurrency")
	require.ErrorContains(t, err, "WithMaxUncommitted")

	eng, err := orderly.New(src, h, orderly.WithOrdering(orderly.Serial()), orderly.WithLowWaterMark(0))
	require.NoError(t, err)
	require.NotNil(t, eng)
}

// Zero values mean the documented defaults: policies and options given
// zero are valid, and "forever" is a named constant.
func TestZeroValuesAreDefaults(t *testing.T) {
	src := memory.NewLog().Member("g", []string{"t"})
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil })
	sink := orderly.DeadLetterFunc(func(context.Context, *orderly.Record, orderly.DeadLetter) error { return nil })
	eng, err := orderly.New(src, h,
		orderly.WithRetry(orderly.RetryPolicy{}),
		orderly.WithCircuitBreaker(orderly.BreakerPolicy{}),
		orderly.WithMaxConcurrency(0),
		orderly.WithKeyBuffer(0, 0),
		orderly.WithPartitionBuffer(0, 1<<20), // bytes alone
		orderly.WithEngineBuffer(500, 0),      // records alone
		orderly.WithMaxUncommitted(0),
		orderly.WithCommitInterval(0),
		orderly.WithCommitEvery(0),
		orderly.WithCommitTimeout(0),
		orderly.WithRevokeTimeout(0),
		orderly.WithDrainTimeout(0),
		orderly.WithAttemptTimeout(0),
		orderly.WithRateLimit(100, 0),
		orderly.WithDeadLetter(sink),
		orderly.WithKeyParking(0),
	)
	require.NoError(t, err)
	s := eng.Stats()
	require.Equal(t, orderly.Limits{Records: 500, Bytes: 128 << 20}, s.EngineLimits, "a zero bytes keeps the default")

	for _, opts := range [][]orderly.Option{
		{orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: orderly.UnlimitedAttempts, Jitter: orderly.NoJitter})},
		{orderly.WithDeadLetter(sink), orderly.WithKeyParking(orderly.ParkUntilReleased)},
		{orderly.WithCommitEvery(orderly.CommitIntervalOnly)},
	} {
		_, err := orderly.New(src, h, opts...)
		require.NoError(t, err)
	}
}

func TestRunTwiceFails(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, eng.Run(ctx))
	require.True(t, errors.Is(eng.Run(ctx), orderly.ErrAlreadyRunning))
}
