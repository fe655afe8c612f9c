package orderly_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/orderly-go/orderly"
	"github.com/stretchr/testify/require"
)

func TestPipelineComposesAndDecodeErrorsArePermanent(t *testing.T) {
	var applied []int
	h := orderly.Pipeline[int, int]{
		Decode: func(r *orderly.Record) (int, error) { return strconv.Atoi(string(r.Value)) },
		Handle: func(ctx context.Context, n int) (int, error) {
			if n < 0 {
				return 0, errors.New("downstream refused")
			}
			return n * 2, nil
		},
		Interpret: func(ctx context.Context, n int) error { applied = append(applied, n); return nil },
	}.Handler()

	require.NoError(t, h.Handle(context.Background(), &orderly.Record{Value: []byte("21")}))
	require.Equal(t, []int{42}, applied)

	err := h.Handle(context.Background(), &orderly.Record{Value: []byte("x")})
	require.True(t, orderly.IsPermanent(err), "decode errors are permanent")
	var de *orderly.DecodeError
	require.ErrorAs(t, err, &de)

	err = h.Handle(context.Background(), &orderly.Record{Value: []byte("-1")})
	require.EqualError(t, err, "downstream refused")
	require.False(t, orderly.IsPermanent(err), "handle errors may be retried")
	require.Equal(t, []int{42}, applied, "interpret runs only after a successful handle")
}

func TestMiddlewareFirstRegisteredRunsOutermost(t *testing.T) {
	var trace []string
	mw := func(name string) orderly.Middleware {
		return func(next orderly.Handler) orderly.Handler {
			return orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				trace = append(trace, name+">")
				err := next.Handle(ctx, r)
				trace = append(trace, "<"+name)
				return err
			})
		}
	}
	log, stop := newOneRecordRun(t, orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
		trace = append(trace, "handler")
		return nil
	}), orderly.WithMiddleware(mw("a"), mw("b")), orderly.WithMiddleware(mw("c")))
	_ = log
	stop()
	require.Equal(t, []string{"a>", "b>", "c>", "handler", "<c", "<b", "<a"}, trace)
}
