package tracing

import (
	"context"
	"strconv"
	"time"

	"github.com/orderly-go/orderly"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// OnCommit records the commit: a "commit <topic>" span (unless
// WithCommitSpans(false)) with the watermark's move and the records it
// covers, the commit metrics, and the committed offset gauge.
//
// It also ends the spans of failed records the commit shows are done: the
// watermark only passes finished records, so a failed record below it was
// neither retried nor dead-lettered (a failure handler logged it, say). A
// final commit (revoke or shutdown) ends every open span of the partition.
func (h *Hooks) OnCommit(info orderly.CommitInfo) {
	ctx := context.Background()
	end := time.Now()
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationName("commit"),
		semconv.MessagingDestinationName(info.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(info.Partition))),
	}
	if info.Group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(info.Group))
	}
	set := metric.WithAttributes(attrs...)
	if info.Err != nil {
		h.ins.commits.Add(ctx, 1, metric.WithAttributes(append(attrs[:len(attrs):len(attrs)], semconv.ErrorType(info.Err))...))
	} else {
		h.ins.commits.Add(ctx, 1, set)
		h.ins.commitRecs.Add(ctx, info.Records, set)
		h.ins.committed.Record(ctx, info.To, set)
	}
	h.ins.commitTook.Record(ctx, info.Took.Seconds(), set)

	if h.cfg.commitSpans {
		_, span := h.tracer.Start(ctx, "commit "+info.Topic, trace.WithNewRoot(),
			trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(end.Add(-info.Took)))
		if span.IsRecording() {
			span.SetAttributes(attrs...)
			span.SetAttributes(semconv.MessagingOperationTypeSettle,
				CommitFromKey.Int64(info.From), CommitToKey.Int64(info.To),
				CommitRecordsKey.Int64(info.Records), CommitFinalKey.Bool(info.Final))
			if info.Err != nil {
				span.RecordError(info.Err)
				span.SetStatus(codes.Error, info.Err.Error())
			}
		}
		span.End(trace.WithTimestamp(end))
	}

	if info.Err == nil || info.Final {
		pk := partKey{info.Group, info.Topic, info.Partition}
		for _, st := range h.pending.takeDone(pk, info.To, info.Final) {
			endFailed(st)
		}
	}
}

// OnPartitionPaused counts the pause (orderly.partition.pauses, by its
// first reason) and, on a change from running to paused, the paused
// partitions gauge.
func (h *Hooks) OnPartitionPaused(topic string, partition int32, reasons []orderly.PauseReason) {
	ctx := context.Background()
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingDestinationName(topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(partition))),
	}
	reason := "unknown"
	if len(reasons) > 0 {
		reason = string(reasons[0])
	}
	k := partKey{topic: topic, partition: partition}
	h.pausedMu.Lock()
	was := h.paused[k]
	h.paused[k] = true
	h.pausedMu.Unlock()
	if !was {
		h.ins.paused.Add(ctx, 1, metric.WithAttributes(attrs...))
		h.ins.pauses.Add(ctx, 1, metric.WithAttributes(append(attrs, attribute.String("orderly.pause.reason", reason))...))
	}
}

// OnPartitionResumed undoes OnPartitionPaused's gauge.
func (h *Hooks) OnPartitionResumed(topic string, partition int32) {
	k := partKey{topic: topic, partition: partition}
	h.pausedMu.Lock()
	was := h.paused[k]
	delete(h.paused, k)
	h.pausedMu.Unlock()
	if was {
		h.ins.paused.Add(context.Background(), -1, metric.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingDestinationName(topic),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(partition))),
		))
	}
}
