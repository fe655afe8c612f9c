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
		"concurrency 0":         {orderly.WithMaxConcurrency(0)},
		"key buffer 0":          {orderly.WithKeyBuffer(0, 1)},
		"key bytes 0":           {orderly.WithKeyBuffer(1, 0)},
		"partition buffer -1":   {orderly.WithPartitionBuffer(-1, 10)},
		"engine bytes 0":        {orderly.WithEngineBuffer(10, 0)},
		"low mark 1":            {orderly.WithLowWaterMark(1)},
		"low mark negative":     {orderly.WithLowWaterMark(-0.1)},
		"uncommitted 0":         {orderly.WithMaxUncommitted(0)},
		"commit interval 0":     {orderly.WithCommitInterval(0)},
		"commit every negative": {orderly.WithCommitEvery(-1)},
		"revoke timeout 0":      {orderly.WithRevokeTimeout(0)},
		"drain timeout -1s":     {orderly.WithDrainTimeout(-time.Second)},
		"nil logger":            {orderly.WithLogger(nil)},
		"nil middleware":        {orderly.WithMiddleware(nil)},
		"nil recover":           {orderly.WithRecover(nil)},
		"nil dead-letter sink":  {orderly.WithDeadLetter(nil)},
		"parking without sink":  {orderly.WithKeyParking(time.Second)},
		"negative parking":      {orderly.WithKeyParking(-time.Second)},
		"retry zero attempts":   {orderly.WithRetry(orderly.RetryPolicy{})},
		"retry negative delay":  {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, InitialDelay: -time.Second})},
		"retry max below init":  {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, MaxDelay: time.Millisecond})},
		"retry multiplier 0.5":  {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, Multiplier: 0.5})},
		"retry jitter 2":        {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, Jitter: 2})},
		"retry attempts -2":     {orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: -2})},
		"breaker ratio 2":       {orderly.WithCircuitBreaker(orderly.BreakerPolicy{FailureRatio: 2})},
		"breaker negative cool": {orderly.WithCircuitBreaker(orderly.BreakerPolicy{CoolDown: -time.Second})},
		"attempt timeout 0":     {orderly.WithAttemptTimeout(0)},
		"rate 0":                {orderly.WithRateLimit(0, 1)},
		"partition burst 0":     {orderly.WithPartitionRateLimit(10, 0)},
		"hook of no kind":       {orderly.WithHooks(struct{}{})},
		"zero ordering":         {orderly.WithOrdering(orderly.Ordering{})},
		"nil option":            {nil},
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
	_, err = orderly.New(src, h, orderly.WithMaxConcurrency(0), orderly.WithMaxUncommitted(0))
	require.ErrorContains(t, err, "WithMaxConcurrency")
	require.ErrorContains(t, err, "WithMaxUncommitted")

	eng, err := orderly.New(src, h, orderly.WithOrdering(orderly.Serial()), orderly.WithLowWaterMark(0))
	require.NoError(t, err)
	require.NotNil(t, eng)
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
