package tracing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// A known run through the hooks gives known instrument values.
func TestMetricsAfterAKnownRun(t *testing.T) {
	r := newRig(t)
	h := r.hooks
	bg := context.Background()
	now := time.Now()
	info := func(attempt int) orderly.RecordInfo {
		return orderly.RecordInfo{Group: "g", Dispatched: now.Add(-3 * time.Millisecond), Started: now, Attempt: attempt}
	}
	run := func(rec *orderly.Record, attempt int, err error) context.Context {
		ctx := h.OnAttemptStarted(bg, rec, info(attempt))
		h.OnAttemptFinished(ctx, rec, info(attempt), err)
		return ctx
	}
	a := &orderly.Record{Topic: "orders", Partition: 0, Offset: 0}
	b := &orderly.Record{Topic: "orders", Partition: 0, Offset: 1}
	c := &orderly.Record{Topic: "orders", Partition: 1, Offset: 0}
	for _, rec := range []*orderly.Record{a, b, c} {
		h.OnRecordDispatched(rec, info(0))
	}
	run(a, 1, nil)
	boom := errors.New("boom")
	ctx := run(b, 1, boom)
	h.OnRetryScheduled(ctx, b, info(1), boom, time.Millisecond)
	run(b, 2, nil)
	run(c, 1, orderly.Permanent(boom))
	h.OnDeadLetterEnd(h.OnDeadLetterStart(bg, c, info(1), boom), c, nil)

	inFlight := h.OnAttemptStarted(bg, &orderly.Record{Topic: "orders", Partition: 1, Offset: 1}, info(1)) // still running
	_ = inFlight

	h.OnPartitionPaused("orders", 0, []orderly.PauseReason{orderly.PausePartitionRecords})
	h.OnPartitionPaused("orders", 0, []orderly.PauseReason{orderly.PausePartitionRecords, orderly.PauseEngineBytes}) // no change: still one paused partition
	h.OnPartitionPaused("orders", 1, []orderly.PauseReason{orderly.PauseKey})
	h.OnPartitionResumed("orders", 1)
	h.OnPartitionResumed("orders", 1) // already running

	h.OnCommit(orderly.CommitInfo{Topic: "orders", Partition: 0, Group: "g", From: 0, To: 2, Records: 2, Took: time.Millisecond})
	h.OnCommit(orderly.CommitInfo{Topic: "orders", Partition: 1, Group: "g", From: 0, To: 1, Records: 1, Err: errors.New("rebalancing")})

	m := r.collect(t)
	p0, p1 := semconv.MessagingDestinationPartitionID("0"), semconv.MessagingDestinationPartitionID("1")
	group := semconv.MessagingConsumerGroupName("g")
	assert.Equal(t, int64(3), total(t, m["messaging.client.consumed.messages"], group, semconv.MessagingSystemKafka))
	assert.Equal(t, int64(2), total(t, m["orderly.records.handled"], p0))
	assert.Equal(t, int64(0), total(t, m["orderly.records.handled"], p1))
	assert.Equal(t, int64(2), total(t, m["orderly.records.failed"]))
	assert.Equal(t, int64(1), total(t, m["orderly.records.failed"], p1, semconv.ErrorType(orderly.Permanent(boom))))
	assert.Equal(t, int64(1), total(t, m["orderly.records.retried"], p0))
	assert.Equal(t, int64(1), total(t, m["orderly.records.dead_lettered"], p1))
	assert.Equal(t, uint64(4), count(t, m["messaging.process.duration"]))
	assert.Equal(t, uint64(1), count(t, m["messaging.process.duration"], semconv.ErrorType(boom)), "failures carry error.type")
	assert.Equal(t, uint64(1), count(t, m["messaging.process.duration"], semconv.ErrorType(orderly.Permanent(boom))))
	assert.Equal(t, uint64(4), count(t, m["orderly.mailbox.wait"]), "first attempts only")
	assert.Equal(t, int64(1), total(t, m["orderly.handler.in_flight"]), "the call still running")
	assert.Equal(t, int64(1), total(t, m["orderly.handler.in_flight"], p1))
	assert.Equal(t, int64(1), total(t, m["orderly.partitions.paused"]))
	assert.Equal(t, int64(1), total(t, m["orderly.partitions.paused"], p0))
	assert.Equal(t, int64(2), total(t, m["orderly.partition.pauses"]))
	assert.Equal(t, int64(2), total(t, m["orderly.commits"]))
	assert.Equal(t, int64(1), total(t, m["orderly.commits"], p1, semconv.ErrorType(errors.New(""))))
	assert.Equal(t, int64(2), total(t, m["orderly.commit.records"]), "a failed commit covers nothing")
	assert.Equal(t, int64(2), total(t, m["orderly.partition.committed"], p0))
	assert.Equal(t, int64(0), total(t, m["orderly.partition.committed"], p1), "not committed")
}

func TestRegisterStats(t *testing.T) {
	r := newRig(t)
	stats := orderly.Stats{InFlight: 3, HeldRecords: 10, HeldBytes: 1000, Partitions: []orderly.PartitionStats{
		{Topic: "orders", Partition: 0, InFlight: 2, HeldRecords: 7, Uncommitted: 9, Keys: 4, Watermark: 120, Committed: 100, End: 150, Lag: 50, Paused: true},
		{Topic: "orders", Partition: 1, InFlight: 1, HeldRecords: 3, Uncommitted: 3, Keys: 1, Watermark: -1, Committed: -1, End: -1, Lag: -1},
	}}
	reg, err := r.hooks.RegisterStats(func() orderly.Stats { return stats })
	require.NoError(t, err)
	m := r.collect(t)
	p0, p1 := semconv.MessagingDestinationPartitionID("0"), semconv.MessagingDestinationPartitionID("1")
	assert.Equal(t, int64(3), total(t, m["orderly.engine.in_flight"]))
	assert.Equal(t, int64(10), total(t, m["orderly.engine.held.records"]))
	assert.Equal(t, int64(1000), total(t, m["orderly.engine.held.bytes"]))
	assert.Equal(t, int64(2), total(t, m["orderly.partition.in_flight"], p0))
	assert.Equal(t, int64(3), total(t, m["orderly.partition.held.records"], p1))
	assert.Equal(t, int64(9), total(t, m["orderly.partition.uncommitted"], p0))
	assert.Equal(t, int64(120), total(t, m["orderly.partition.watermark"]), "partition 1's unknown watermark is not reported")
	assert.Equal(t, int64(20), total(t, m["orderly.partition.commit_lag"], p0))
	assert.Equal(t, int64(100), total(t, m["orderly.partition.committed"]), "partition 1 has no committed offset")
	assert.Equal(t, int64(50), total(t, m["orderly.partition.lag"]), "partition 1's end is unknown")
	assert.Equal(t, int64(1), total(t, m["orderly.partition.paused"]))
	assert.Equal(t, int64(5), total(t, m["orderly.partition.keys"]))

	require.NoError(t, reg.Unregister())
	_, err = r.hooks.RegisterStats(nil)
	assert.Error(t, err)
}
