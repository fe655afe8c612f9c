package orderlysarama_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

func TestNewProducerMessage(t *testing.T) {
	m := orderlysarama.NewProducerMessage("t", []byte("k"), []byte("v"),
		orderly.Header{Key: "a", Value: []byte("1")}, orderly.Header{Key: "a", Value: []byte("2")})
	require.Equal(t, "t", m.Topic)
	require.Equal(t, sarama.ByteEncoder("k"), m.Key)
	require.Equal(t, sarama.ByteEncoder("v"), m.Value)
	require.Equal(t, []sarama.RecordHeader{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("a"), Value: []byte("2")}}, m.Headers)

	m = orderlysarama.NewProducerMessage("t", nil, nil)
	require.Nil(t, m.Key, "a nil key stays null")
	require.Nil(t, m.Value, "a nil value is a tombstone")
	require.Nil(t, m.Headers)
}

func TestProducerHeadersCarrier(t *testing.T) {
	m := orderlysarama.NewProducerMessage("t", nil, nil,
		orderly.Header{Key: "x", Value: []byte("1")}, orderly.Header{Key: "tp", Value: []byte("old")},
		orderly.Header{Key: "y", Value: []byte("2")}, orderly.Header{Key: "tp", Value: []byte("older")})
	h := orderlysarama.ProducerHeaders{Msg: m}
	require.Equal(t, "older", h.Get("tp"), "the last one wins, as Record.Header")
	require.Equal(t, "", h.Get("missing"))
	require.Equal(t, []string{"x", "tp", "y"}, h.Keys())

	h.Set("tp", "new")
	require.Equal(t, "new", h.Get("tp"))
	require.Equal(t, []sarama.RecordHeader{
		{Key: []byte("x"), Value: []byte("1")}, {Key: []byte("tp"), Value: []byte("new")}, {Key: []byte("y"), Value: []byte("2")},
	}, m.Headers, "replaced in place, duplicates removed, order kept")

	h.Set("baggage", "b")
	require.Equal(t, []string{"x", "tp", "y", "baggage"}, h.Keys())
}

// Produce injects headers from its context and they reach the consumer's
// Record, next to the ones given.
func TestProducerInjectsHeaders(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	type traceKey struct{}
	cfg := orderlysarama.DefaultConfig()
	p, err := orderlysarama.NewProducer(c.ListenAddrs(), cfg, orderlysarama.WithInject(func(ctx context.Context, h orderlysarama.ProducerHeaders) {
		if v, ok := ctx.Value(traceKey{}).(string); ok {
			h.Set("traceparent", v)
		}
	}))
	require.NoError(t, err)
	defer p.Close()
	ctx := context.WithValue(context.Background(), traceKey{}, "00-abc-def-01")
	part, off, err := p.Produce(ctx, "t", []byte("k"), []byte("v"), orderly.Header{Key: "h", Value: []byte("1")})
	require.NoError(t, err)
	require.Equal(t, int32(0), part)
	require.Equal(t, int64(0), off)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = p.Produce(cancelled, "t", nil, nil)
	require.ErrorIs(t, err, context.Canceled)

	cs := newClaims()
	consuming(t, newSource(t, c, "g", config(nil), "t"), cs.serve)
	r := receive(t, cs.next(t))
	require.Equal(t, []orderly.Header{{Key: "h", Value: []byte("1")}, {Key: "traceparent", Value: []byte("00-abc-def-01")}}, r.Headers)
	require.Equal(t, "k", string(r.Key))
	require.Equal(t, "v", string(r.Value))
	require.WithinDuration(t, time.Now(), r.Timestamp, time.Minute)
}
