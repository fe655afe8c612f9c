package orderlykgo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

func TestNewRecord(t *testing.T) {
	r := orderlykgo.NewRecord("t", []byte("k"), []byte("v"),
		orderly.Header{Key: "a", Value: []byte("1")}, orderly.Header{Key: "a", Value: []byte("2")})
	require.Equal(t, "t", r.Topic)
	require.Equal(t, []byte("k"), r.Key)
	require.Equal(t, []byte("v"), r.Value)
	require.Equal(t, []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}}, r.Headers)

	r = orderlykgo.NewRecord("t", nil, nil)
	require.Nil(t, r.Key, "a nil key stays null")
	require.Nil(t, r.Value, "a nil value is a tombstone")
	require.Nil(t, r.Headers)
}

func TestRecordHeadersCarrier(t *testing.T) {
	r := orderlykgo.NewRecord("t", nil, nil,
		orderly.Header{Key: "x", Value: []byte("1")}, orderly.Header{Key: "tp", Value: []byte("old")},
		orderly.Header{Key: "y", Value: []byte("2")}, orderly.Header{Key: "tp", Value: []byte("older")})
	h := orderlykgo.RecordHeaders{Rec: r}
	require.Equal(t, "older", h.Get("tp"), "the last one wins, as Record.Header")
	require.Equal(t, "", h.Get("missing"))
	require.Equal(t, []string{"x", "tp", "y"}, h.Keys())

	h.Set("tp", "new")
	require.Equal(t, "new", h.Get("tp"))
	require.Equal(t, []kgo.RecordHeader{
		{Key: "x", Value: []byte("1")}, {Key: "tp", Value: []byte("new")}, {Key: "y", Value: []byte("2")},
	}, r.Headers, "replaced in place, duplicates removed, order kept")

	h.Set("baggage", "b")
	require.Equal(t, []string{"x", "tp", "y", "baggage"}, h.Keys())
}

func TestNewProducerRejectsBadConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		kopts  []kgo.Opt
		opts   []orderlykgo.ProducerOption
		unsafe bool
	}{
		"nil kgo option":    {kopts: []kgo.Opt{nil}},
		"nil option":        {opts: []orderlykgo.ProducerOption{nil}},
		"kgo rejects":       {kopts: []kgo.Opt{kgo.ProducerLinger(time.Hour)}},
		"consumer group":    {kopts: []kgo.Opt{kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t")}},
		"consumes topics":   {kopts: []kgo.Opt{kgo.ConsumeTopics("t")}},
		"consumes parts":    {kopts: []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset()}})}},
		"transactional":     {kopts: []kgo.Opt{kgo.TransactionalID("tx")}, unsafe: true},
		"no record headers": {kopts: []kgo.Opt{kgo.MaxVersions(kversion.V0_10_2())}, unsafe: true},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := orderlykgo.NewProducer(append([]kgo.Opt{kgo.SeedBrokers("b:9092")}, tc.kopts...), tc.opts...)
			require.Nil(t, p)
			require.ErrorIs(t, err, orderlykgo.ErrInvalidConfig)
			if tc.unsafe {
				require.ErrorIs(t, err, orderlykgo.ErrUnsafeConfig)
			} else {
				require.NotErrorIs(t, err, orderlykgo.ErrUnsafeConfig)
			}
		})
	}
}

// Produce injects headers from its context and they reach the consumer's
// Record, after the ones given; a done context sends nothing.
func TestProducerInjectsHeaders(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	type traceKey struct{}
	p := newProducer(t, c, false, orderlykgo.WithInject(func(ctx context.Context, h orderlykgo.RecordHeaders) {
		if v, ok := ctx.Value(traceKey{}).(string); ok {
			h.Set("traceparent", v)
		}
	}))
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
	consuming(t, newSource(t, groupOpts(c, "g", "t")), cs.serve)
	rd := &reader{cl: cs.next(t)}
	r := rd.receive(t)
	require.Equal(t, []orderly.Header{{Key: "h", Value: []byte("1")}, {Key: "traceparent", Value: []byte("00-abc-def-01")}}, r.Headers)
	require.Equal(t, "k", string(r.Key))
	require.Equal(t, "v", string(r.Value))
	require.WithinDuration(t, time.Now(), r.Timestamp, time.Minute)
	ends, err := admin(t, c).ListEndOffsets(context.Background(), "t")
	require.NoError(t, err)
	end, ok := ends.Lookup("t", 0)
	require.True(t, ok)
	require.Equal(t, int64(1), end.Offset, "the cancelled Produce sent nothing")
}
