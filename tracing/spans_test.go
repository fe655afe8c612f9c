package tracing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A record whose headers carry a producer's context is processed in a
// CONSUMER span that is the producer span's child, with the messaging
// attributes, the mailbox wait, and a handler context that carries it.
func TestProcessSpanContinuesTheProducersTrace(t *testing.T) {
	r := newRig(t)
	rec, producer := r.produced(t, "orders", 3, 42, "order-7")
	dispatched := time.Now().Add(-time.Second)
	info := orderly.RecordInfo{Group: "billing", Dispatched: dispatched, Started: dispatched.Add(5 * time.Millisecond), Attempt: 1}

	r.hooks.OnRecordDispatched(rec, info)
	ctx := r.hooks.OnAttemptStarted(context.Background(), rec, info)
	_, child := r.tp.Tracer("handler").Start(ctx, "db")
	child.End()
	require.Empty(t, r.ended("process orders"), "the span lasts until the record is done")
	r.hooks.OnAttemptFinished(ctx, rec, info, nil)

	s := r.one(t, "process orders")
	assert.Equal(t, trace.SpanKindConsumer, s.SpanKind())
	assert.Equal(t, producer.TraceID(), s.SpanContext().TraceID(), "producer and consumer are one trace")
	assert.Equal(t, producer.SpanID(), s.Parent().SpanID(), "the producer span is the parent")
	assert.True(t, s.Parent().IsRemote())
	assert.Equal(t, dispatched, s.StartTime(), "the span starts at dispatch")
	assert.Equal(t, codes.Unset, s.Status().Code)

	a := attrs(s.Attributes())
	assert.Equal(t, "kafka", a["messaging.system"].AsString())
	assert.Equal(t, "process", a["messaging.operation.type"].AsString())
	assert.Equal(t, "process", a["messaging.operation.name"].AsString())
	assert.Equal(t, "orders", a["messaging.destination.name"].AsString())
	assert.Equal(t, "3", a["messaging.destination.partition.id"].AsString())
	assert.Equal(t, int64(42), a["messaging.kafka.offset"].AsInt64())
	assert.Equal(t, "order-7", a["messaging.kafka.message.key"].AsString())
	assert.Equal(t, "billing", a["messaging.consumer.group.name"].AsString())
	assert.Equal(t, "handled", a[tracing.OutcomeKey].AsString())

	enq, deq := events(s, "enqueue"), events(s, "dequeue")
	require.Len(t, enq, 1)
	require.Len(t, deq, 1)
	assert.Equal(t, dispatched, enq[0].Time)
	assert.Equal(t, info.Started, deq[0].Time)
	assert.InDelta(t, 5.0, attrs(deq[0].Attributes)[tracing.MailboxWaitKey].AsFloat64(), 1e-9)

	db := r.one(t, "db")
	assert.Equal(t, s.SpanContext().SpanID(), db.Parent().SpanID(), "the handler context carries the process span")
}

// Without a trace context in its headers a record starts a new trace,
// even when the engine's context carries a span (Run's caller's).
func TestRecordWithoutContextStartsANewTrace(t *testing.T) {
	r := newRig(t)
	outer, run := r.tp.Tracer("app").Start(context.Background(), "run")
	defer run.End()
	rec := &orderly.Record{Topic: "orders", Offset: 1, Headers: []orderly.Header{{Key: "other", Value: []byte("x")}}}
	info := orderly.RecordInfo{Started: time.Now(), Dispatched: time.Now(), Attempt: 1}
	ctx := r.hooks.OnAttemptStarted(outer, rec, info)
	r.hooks.OnAttemptFinished(ctx, rec, info, nil)

	s := r.one(t, "process orders")
	assert.False(t, s.Parent().IsValid(), "a root span")
	assert.NotEqual(t, run.SpanContext().TraceID(), s.SpanContext().TraceID())
}

// Each failed attempt is visible with its error, each retry as an event
// with its delay and each later attempt as a child span; the record's span
// ends once, at the attempt that succeeds.
func TestRetriesAreVisible(t *testing.T) {
	r := newRig(t)
	rec, producer := r.produced(t, "orders", 0, 7, "k")
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Attempt: 1}
	errs := []error{errors.New("db down"), errors.New("db still down")}

	var handlerSpans []trace.SpanContext
	for i := range 3 {
		info.Attempt, info.Started = i+1, time.Now()
		ctx := r.hooks.OnAttemptStarted(context.Background(), rec, info)
		handlerSpans = append(handlerSpans, trace.SpanContextFromContext(ctx))
		if i == 2 {
			r.hooks.OnAttemptFinished(ctx, rec, info, nil)
			break
		}
		r.hooks.OnAttemptFinished(ctx, rec, info, errs[i])
		r.hooks.OnRetryScheduled(ctx, rec, info, errs[i], 10*time.Millisecond)
		require.Empty(t, r.ended("process orders"), "not done after attempt %d", i+1)
	}

	s := r.one(t, "process orders")
	assert.Equal(t, producer.TraceID(), s.SpanContext().TraceID())
	assert.Equal(t, codes.Unset, s.Status().Code, "the record succeeded in the end")
	assert.Equal(t, int64(3), attrs(s.Attributes())[tracing.AttemptKey].AsInt64())

	exc := events(s, "exception")
	require.Len(t, exc, 2)
	for i, e := range exc {
		a := attrs(e.Attributes)
		assert.Equal(t, errs[i].Error(), a["exception.message"].AsString())
		assert.Equal(t, int64(i+1), a[tracing.AttemptKey].AsInt64())
	}
	retries := events(s, "retry")
	require.Len(t, retries, 2)
	for i, e := range retries {
		a := attrs(e.Attributes)
		assert.Equal(t, int64(i+1), a[tracing.AttemptKey].AsInt64())
		assert.InDelta(t, 10.0, a[tracing.RetryDelayKey].AsFloat64(), 1e-9)
		assert.Equal(t, errs[i].Error(), a["exception.message"].AsString())
	}

	attempts := r.ended("retry orders")
	require.Len(t, attempts, 2)
	for i, a := range attempts {
		assert.Equal(t, s.SpanContext().SpanID(), a.Parent().SpanID(), "attempt spans are children of the record's span")
		assert.Equal(t, int64(i+2), attrs(a.Attributes())[tracing.AttemptKey].AsInt64())
		assert.Equal(t, handlerSpans[i+1].SpanID(), a.SpanContext().SpanID(), "attempt %d's handler context carries its span", i+2)
	}
	assert.Equal(t, codes.Error, attempts[0].Status().Code, "attempt 2 failed")
	assert.Equal(t, codes.Unset, attempts[1].Status().Code, "attempt 3 succeeded")
	assert.Equal(t, s.SpanContext().SpanID(), handlerSpans[0].SpanID(), "attempt 1 runs in the record's span")
}

// The dead-letter write is a PRODUCER span under the record's span, its
// context is what the sink injects into the dead-letter record, a failed
// write leaves the record's span open, and a successful one ends it as
// dead-lettered.
func TestDeadLetterIsAProducerSpanInjectedIntoTheRecord(t *testing.T) {
	r := newRig(t)
	rec, producer := r.produced(t, "orders", 1, 9, "k")
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Started: time.Now(), Attempt: 1}
	cause := orderly.Permanent(errors.New("bad payload"))

	ctx := r.hooks.OnAttemptStarted(context.Background(), rec, info)
	r.hooks.OnAttemptFinished(ctx, rec, info, cause)

	// The engine's context here is not the handler's: the hooks find the
	// record by its group, topic, partition and offset.
	dctx := r.hooks.OnDeadLetterStart(context.Background(), rec, info, cause)
	r.hooks.OnDeadLetterEnd(dctx, rec, errors.New("broker unavailable"))
	require.Empty(t, r.ended("process orders"), "a failed dead-letter write is retried: the record is not done")

	dctx = r.hooks.OnDeadLetterStart(context.Background(), rec, info, cause)
	msg := propagation.MapCarrier{"x-error": "bad payload"}
	tracing.Inject(dctx, msg)
	r.hooks.OnDeadLetterEnd(dctx, rec, nil)

	s := r.one(t, "process orders")
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.Contains(t, s.Status().Description, "bad payload")
	assert.Equal(t, "dead_lettered", attrs(s.Attributes())[tracing.OutcomeKey].AsString())

	sends := r.ended("send orders.dlq")
	require.Len(t, sends, 2)
	assert.Equal(t, codes.Error, sends[0].Status().Code, "the failed write")
	send := sends[1]
	assert.Equal(t, trace.SpanKindProducer, send.SpanKind())
	assert.Equal(t, s.SpanContext().SpanID(), send.Parent().SpanID())
	assert.Equal(t, producer.TraceID(), send.SpanContext().TraceID())
	a := attrs(send.Attributes())
	assert.Equal(t, "orders.dlq", a["messaging.destination.name"].AsString())
	assert.Equal(t, "send", a["messaging.operation.type"].AsString())
	assert.Equal(t, int64(9), a[tracing.OriginalOffsetKey].AsInt64())
	assert.Contains(t, a[tracing.DeadLetterCauseKey].AsString(), "bad payload")

	injected := trace.SpanContextFromContext(tracing.Extract(context.Background(), msg))
	assert.Equal(t, send.SpanContext().TraceID(), injected.TraceID())
	assert.Equal(t, send.SpanContext().SpanID(), injected.SpanID(), "the dead-letter record carries the send span")
	assert.Len(t, msg, 2, "the existing header is kept, traceparent added")
}

// WithDeadLetterTopic names the dead-letter span.
func TestDeadLetterTopicOption(t *testing.T) {
	r := newRig(t, tracing.WithDeadLetterTopic(func(*orderly.Record) string { return "parked" }))
	rec := &orderly.Record{Topic: "orders"}
	info := orderly.RecordInfo{Attempt: 1}
	r.hooks.OnDeadLetterEnd(r.hooks.OnDeadLetterStart(context.Background(), rec, info, errors.New("x")), rec, nil)
	r.one(t, "send parked")
}

// Every commit is a span with the watermark's move; a failed record that
// was neither retried nor dead-lettered is ended by the commit that passes
// it, with the end time of its last attempt.
func TestCommitSpanAndTheEndOfFailedRecords(t *testing.T) {
	r := newRig(t)
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Started: time.Now(), Attempt: 1}
	fail := func(offset int64) (*orderly.Record, time.Time) {
		rec := &orderly.Record{Topic: "orders", Partition: 2, Offset: offset}
		ctx := r.hooks.OnAttemptStarted(context.Background(), rec, info)
		r.hooks.OnAttemptFinished(ctx, rec, info, errors.New("boom"))
		return rec, time.Now()
	}
	_, failedAt := fail(5)
	retried, _ := fail(6)
	r.hooks.OnRetryScheduled(context.Background(), retried, info, errors.New("boom"), time.Second)

	r.hooks.OnCommit(orderly.CommitInfo{Topic: "orders", Partition: 2, Group: "g", From: 0, To: 5, Records: 5, Took: 2 * time.Millisecond})
	require.Empty(t, r.ended("process orders"), "offset 5 is not below the watermark yet")
	r.hooks.OnCommit(orderly.CommitInfo{Topic: "orders", Partition: 2, Group: "other", From: 0, To: 100})
	require.Empty(t, r.ended("process orders"), "another group's commit")
	r.hooks.OnCommit(orderly.CommitInfo{Topic: "orders", Partition: 2, Group: "g", From: 5, To: 7, Records: 2})

	s := r.one(t, "process orders")
	assert.Equal(t, int64(5), attrs(s.Attributes())["messaging.kafka.offset"].AsInt64(), "the retried record stays open")
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.Equal(t, "failed", attrs(s.Attributes())[tracing.OutcomeKey].AsString())
	assert.False(t, s.EndTime().After(failedAt), "it ends when its last attempt ended")

	r.hooks.OnCommit(orderly.CommitInfo{Topic: "orders", Partition: 2, Group: "g", From: 7, To: 7, Final: true})
	assert.Len(t, r.ended("process orders"), 2, "the final commit ends every open span of the partition")

	commits := r.ended("commit orders")
	require.Len(t, commits, 4)
	c := commits[0]
	assert.Equal(t, trace.SpanKindClient, c.SpanKind())
	assert.False(t, c.Parent().IsValid())
	assert.Equal(t, 2*time.Millisecond, c.EndTime().Sub(c.StartTime()))
	a := attrs(c.Attributes())
	assert.Equal(t, int64(0), a[tracing.CommitFromKey].AsInt64())
	assert.Equal(t, int64(5), a[tracing.CommitToKey].AsInt64())
	assert.Equal(t, int64(5), a[tracing.CommitRecordsKey].AsInt64())
	assert.Equal(t, "2", a["messaging.destination.partition.id"].AsString())
	assert.Equal(t, "g", a["messaging.consumer.group.name"].AsString())
	assert.True(t, attrs(commits[3].Attributes())[tracing.CommitFinalKey].AsBool())

	r.hooks.OnCommit(orderly.CommitInfo{Topic: "orders", Err: errors.New("not coordinator")})
	assert.Equal(t, codes.Error, r.ended("commit orders")[4].Status().Code)
}

func TestCommitSpansCanBeTurnedOff(t *testing.T) {
	r := newRig(t, tracing.WithCommitSpans(false))
	r.hooks.OnCommit(orderly.CommitInfo{Topic: "orders", To: 1})
	assert.Empty(t, r.spans.Ended())
}

// The user's sampler decides: an unsampled record records nothing but its
// handler still carries the trace context onwards.
func TestUnsampledRecordsRecordNothingButPropagate(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sdktrace.NeverSample()))
	h := tracing.New(tracing.WithTracerProvider(tp))
	rec := &orderly.Record{Topic: "orders", Offset: 1, Headers: []orderly.Header{{
		Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")}}}
	info := orderly.RecordInfo{Dispatched: time.Now(), Started: time.Now(), Attempt: 1}

	ctx := h.OnAttemptStarted(context.Background(), rec, info)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", trace.SpanContextFromContext(ctx).TraceID().String())
	out := &orderly.Record{}
	tracing.Inject(ctx, tracing.RecordCarrier(out))
	v, ok := out.Header("traceparent")
	require.True(t, ok)
	assert.Contains(t, string(v), "0af7651916cd43dd8448eb211c80319c")

	h.OnAttemptFinished(ctx, rec, info, errors.New("x"))
	h.OnRetryScheduled(ctx, rec, info, errors.New("x"), time.Millisecond)
	info.Attempt = 2
	ctx = h.OnAttemptStarted(context.Background(), rec, info)
	h.OnAttemptFinished(ctx, rec, info, nil)
	assert.Empty(t, spans.Started())
}

func TestCarriers(t *testing.T) {
	rec := &orderly.Record{Headers: []orderly.Header{{Key: "a", Value: []byte("1")}, {Key: "traceparent", Value: []byte("old")}, {Key: "traceparent", Value: []byte("older")}}}
	c := tracing.RecordCarrier(rec)
	assert.Equal(t, "older", c.Get("traceparent"), "the last header wins, as in Record.Header")
	c.Set("traceparent", "new")
	assert.Equal(t, []orderly.Header{{Key: "a", Value: []byte("1")}, {Key: "traceparent", Value: []byte("new")}}, rec.Headers)
	c.Set("b", "2")
	assert.Equal(t, []string{"a", "traceparent", "b"}, c.Keys())
	assert.Equal(t, "", c.Get("missing"))

	// Extract without a context in the carrier is a no-op.
	ctx := context.Background()
	assert.Equal(t, ctx, tracing.Extract(ctx, tracing.RecordCarrier(&orderly.Record{})))
}

// A record read a second time from the log (its key spilled) is marked on
// its process span; others are not.
func TestRereadRecordIsMarked(t *testing.T) {
	r := newRig(t)
	for _, reread := range []bool{false, true} {
		rec := &orderly.Record{Topic: "orders", Offset: 7}
		info := orderly.RecordInfo{Started: time.Now(), Dispatched: time.Now(), Attempt: 1, Reread: reread}
		ctx := r.hooks.OnAttemptStarted(context.Background(), rec, info)
		r.hooks.OnAttemptFinished(ctx, rec, info, nil)
	}
	spans := r.ended("process orders")
	require.Len(t, spans, 2)
	_, marked := attrs(spans[0].Attributes())[tracing.RereadKey]
	assert.False(t, marked, "a record read once carries no mark")
	assert.True(t, attrs(spans[1].Attributes())[tracing.RereadKey].AsBool(), "a re-read record is marked")
}
