package tracing

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/orderly-go/orderly"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// recordKey names a record as consumed by one group.
type recordKey struct {
	partKey
	offset int64
}

// recordState is a sampled record's tracing state from its first attempt to
// its end. It is also the span the first attempt's handler context carries
// (it embeds the process span), which saves a context and an allocation;
// later attempts carry an attemptSpan. Owned by the record's key actor
// while an attempt runs; between a failed attempt and what follows it, it
// sits in Hooks.pending and belongs to whoever takes it out.
type recordState struct {
	trace.Span // the process span; never reassigned
	key        recordKey
	part       *partInfo
	attempt    trace.Span  // the running retry attempt's span; nil for the first attempt
	finished   time.Time   // when the last attempt ended
	err        error       // the last attempt's error
	retrying   atomic.Bool // a retry was announced: a non-final commit must not end the span
}

// attemptSpan is what a retry attempt's handler context carries: the
// attempt's span, and the record it belongs to.
type attemptSpan struct {
	trace.Span
	st *recordState
}

// stateFrom returns the record state that ctx's span belongs to, if the
// context came from OnAttemptStarted of a sampled record.
func stateFrom(ctx context.Context) *recordState {
	switch s := trace.SpanFromContext(ctx).(type) {
	case *recordState:
		return s
	case *attemptSpan:
		return s.st
	}
	return nil
}

// pendingRecords holds the states of sampled records whose last attempt
// failed, until a retry starts, the dead-letter write succeeds, or a commit
// shows the record is done (see OnCommit). Only failed records pass through
// it, so the map stays small and one mutex is enough.
type pendingRecords struct {
	mu sync.Mutex // guards m
	m  map[recordKey]*recordState
}

func (p *pendingRecords) put(st *recordState) {
	p.mu.Lock()
	p.m[st.key] = st
	p.mu.Unlock()
}

func (p *pendingRecords) get(k recordKey) *recordState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[k]
}

func (p *pendingRecords) take(k recordKey) *recordState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.m[k]
	delete(p.m, k)
	return st
}

// takeDone removes and returns the states of partition pk below offset to,
// or all of them when final; states whose retry was announced stay unless
// final.
func (p *pendingRecords) takeDone(pk partKey, to int64, final bool) []*recordState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var done []*recordState
	for k, st := range p.m {
		if k.partKey != pk || !(final || (k.offset < to && !st.retrying.Load())) {
			continue
		}
		done = append(done, st)
		delete(p.m, k)
	}
	return done
}

func keyOf(r *orderly.Record, group string) recordKey {
	return recordKey{partKey{group, r.Topic, r.Partition}, r.Offset}
}

// OnRecordDispatched counts the record as consumed
// (messaging.client.consumed.messages). Spans start later, at the first
// attempt, timestamped back to the dispatch.
func (h *Hooks) OnRecordDispatched(r *orderly.Record, info orderly.RecordInfo) {
	ctx := context.Background()
	if !h.ins.consumed.Enabled(ctx) {
		return
	}
	h.ins.consumed.Add(ctx, 1, h.part(info.Group, r.Topic, r.Partition).add...)
}

// WantsStartTime reports whether an attempt's start time is needed before
// the attempt starts: only for the mailbox wait and duration histograms. A
// sampled record's span reads the clock itself when the engine did not.
func (h *Hooks) WantsStartTime(*orderly.Record) bool {
	ctx := context.Background()
	return h.ins.wait.Enabled(ctx) || h.ins.duration.Enabled(ctx)
}

// OnAttemptStarted starts the record's process span at its first attempt,
// or a retry span under it at a later one, and returns ctx carrying it.
func (h *Hooks) OnAttemptStarted(ctx context.Context, r *orderly.Record, info orderly.RecordInfo) context.Context {
	p := h.part(info.Group, r.Topic, r.Partition)
	if h.ins.inFlight.Enabled(ctx) {
		h.ins.inFlight.Add(ctx, 1, p.add...)
	}
	if info.Attempt <= 1 {
		if !info.Dispatched.IsZero() && !info.Started.IsZero() && h.ins.wait.Enabled(ctx) {
			h.ins.wait.Record(ctx, info.Started.Sub(info.Dispatched).Seconds(), p.rec...)
		}
		return h.startProcess(ctx, r, info, p)
	}
	st := h.pending.take(keyOf(r, info.Group))
	if st == nil {
		// Not sampled, or its state was ended by a commit: trace this
		// attempt as a record of its own.
		return h.startProcess(ctx, r, info, p)
	}
	st.retrying.Store(false)
	start := info.Started
	if start.IsZero() {
		start = time.Now()
	}
	_, span := h.tracer.Start(trace.ContextWithSpan(ctx, st.Span), p.retryName,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(start))
	if span.IsRecording() {
		span.SetAttributes(AttemptKey.Int(info.Attempt), semconv.MessagingKafkaOffset(int(r.Offset)))
	}
	st.attempt = span
	return trace.ContextWithSpan(ctx, &attemptSpan{Span: span, st: st})
}

// Span options that never change, built once: passing them in a slice
// built once saves the allocation of a variadic argument on each start.
var (
	consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)
	newRoot      = trace.WithNewRoot()
	childOpts    = []trace.SpanStartOption{consumerKind}
	rootOpts     = []trace.SpanStartOption{consumerKind, newRoot}
)

// startOpts are the start options of the process spans of the records
// dispatched at one moment (one batch of one partition): the kind, the
// dispatch time as the span's start, and a new root or not.
type startOpts struct {
	at    time.Time
	child [2]trace.SpanStartOption // kind, timestamp
	root  [3]trace.SpanStartOption // kind, new root, timestamp
}

// startSlots is the size of a partition's cache of start options. The
// records of a batch share one dispatch time, and a few dozen batches of a
// partition may be waiting for their first attempt at once.
const startSlots = 64

// startOptions returns the start options for a span that starts at at, a
// new root or not. Records dispatched together share them, so a span start
// allocates no options of its own (a timestamp option would be an
// allocation per record).
func (p *partInfo) startOptions(at time.Time, root bool) []trace.SpanStartOption {
	if at.IsZero() {
		if root {
			return rootOpts
		}
		return childOpts
	}
	ns := uint64(at.UnixNano())
	slot := &p.starts[(ns^ns>>16)%startSlots]
	o := slot.Load()
	if o == nil || !o.at.Equal(at) {
		ts := trace.WithTimestamp(at)
		o = &startOpts{at: at, child: [2]trace.SpanStartOption{consumerKind, ts},
			root: [3]trace.SpanStartOption{consumerKind, newRoot, ts}}
		slot.Store(o)
	}
	if root {
		return o.root[:]
	}
	return o.child[:]
}

// startProcess starts the consumer span of a record, a child of the trace
// context in its headers, or a new root when there is none (never a child
// of whatever span ctx carries: that would be Run's caller).
func (h *Hooks) startProcess(ctx context.Context, r *orderly.Record, info orderly.RecordInfo, p *partInfo) context.Context {
	// A new root is only asked for when ctx carries a span: without one,
	// the span is a root anyway, and asking would cost the SDK a context.
	before := trace.SpanContextFromContext(ctx)
	parent, root := ctx, before.IsValid()
	var producer trace.SpanContext
	if len(r.Headers) > 0 {
		parent = h.cfg.prop.Extract(ctx, RecordCarrier(r))
		if sc := trace.SpanContextFromContext(parent); sc.IsValid() && !sc.Equal(before) {
			root = false // a parent from the producer
			producer = sc
		}
	}
	if h.cfg.sampling && !h.sampledIn(p, r, producer) {
		// Left out (WithRecordSampling): no span. The handler gets the
		// producer's context, or none (not Run's caller's span).
		if root {
			return trace.ContextWithSpanContext(parent, trace.SpanContext{})
		}
		return parent
	}
	start := info.Dispatched
	if start.IsZero() {
		start = info.Started
	}
	spanCtx, span := h.tracer.Start(parent, p.processName, p.startOptions(start, root)...)
	if !span.IsRecording() {
		// Unsampled: no state and no attributes; the handler still gets
		// the span context so what it produces carries the trace id.
		return spanCtx
	}
	if info.Started.IsZero() {
		info.Started = time.Now() // the engine did not read the clock (WantsStartTime)
	}
	span.SetAttributes(p.spanAttrs...)
	span.SetAttributes(semconv.MessagingKafkaOffset(int(r.Offset)), semconv.MessagingMessageBodySize(len(r.Value)),
		PriorityKey.Int(info.Priority))
	if r.Key != nil && utf8.Valid(r.Key) {
		span.SetAttributes(semconv.MessagingKafkaMessageKey(string(r.Key)))
	}
	if r.Value == nil {
		span.SetAttributes(semconv.MessagingKafkaMessageTombstone(true))
	}
	if info.Reread {
		span.SetAttributes(RereadKey.Bool(true))
	}
	if !info.Dispatched.IsZero() && !info.Started.IsZero() {
		span.AddEvent("enqueue", trace.WithTimestamp(info.Dispatched))
		span.AddEvent("dequeue", trace.WithTimestamp(info.Started), trace.WithAttributes(
			MailboxWaitKey.Float64(float64(info.Started.Sub(info.Dispatched))/float64(time.Millisecond))))
	}
	st := &recordState{Span: span, key: keyOf(r, info.Group), part: p}
	return trace.ContextWithSpan(parent, st)
}

// sampledIn is WithRecordSampling's decision for r: the producer's when
// its headers carried a trace context, the ratio's otherwise.
func (h *Hooks) sampledIn(p *partInfo, r *orderly.Record, producer trace.SpanContext) bool {
	if producer.IsValid() {
		return producer.IsSampled()
	}
	return h.traced(p, r.Offset)
}

// OnAttemptFinished ends the attempt. A success ends the record's span; a
// failure is recorded on it (an exception event with the attempt number)
// and leaves it open for what follows: a retry, a dead-letter write, or
// the commit that shows the record done.
func (h *Hooks) OnAttemptFinished(ctx context.Context, r *orderly.Record, info orderly.RecordInfo, err error) {
	st := stateFrom(ctx)
	timed := h.ins.duration.Enabled(ctx)
	var now time.Time
	if st != nil || timed {
		now = time.Now() // only when a span or the duration histogram records the time
	}
	if timed || h.ins.inFlight.Enabled(ctx) || h.ins.handled.Enabled(ctx) || h.ins.failed.Enabled(ctx) {
		h.measureAttempt(ctx, r, info, err, now)
	}
	if st == nil {
		return
	}
	if st.attempt != nil {
		if err != nil {
			st.attempt.RecordError(err)
			st.attempt.SetStatus(codes.Error, err.Error())
		}
		st.attempt.End(trace.WithTimestamp(now))
		st.attempt = nil
	}
	if err == nil {
		st.SetAttributes(OutcomeKey.String("handled"), AttemptKey.Int(info.Attempt))
		st.End(trace.WithTimestamp(now))
		return
	}
	st.RecordError(err, trace.WithTimestamp(now), trace.WithAttributes(AttemptKey.Int(info.Attempt)))
	st.finished, st.err = now, err
	st.SetAttributes(AttemptKey.Int(info.Attempt))
	h.pending.put(st)
}

// measureAttempt records a finished attempt's metrics: in-flight calls,
// its duration, and the handled or failed count.
func (h *Hooks) measureAttempt(ctx context.Context, r *orderly.Record, info orderly.RecordInfo, err error, now time.Time) {
	p := h.part(info.Group, r.Topic, r.Partition)
	h.ins.inFlight.Add(ctx, -1, p.add...)
	var took float64
	if !info.Started.IsZero() && !now.IsZero() {
		took = now.Sub(info.Started).Seconds()
	}
	if err == nil {
		h.ins.duration.Record(ctx, took, p.rec...)
		h.ins.handled.Add(ctx, 1, p.add...)
		return
	}
	withErr := p.withError(err)
	h.ins.duration.Record(ctx, took, withErr)
	h.ins.failed.Add(ctx, 1, withErr)
}

// OnRetryScheduled adds a "retry" event (attempt, delay, error) to the
// record's span and counts the retry.
func (h *Hooks) OnRetryScheduled(ctx context.Context, r *orderly.Record, info orderly.RecordInfo, err error, delay time.Duration) {
	p := h.part(info.Group, r.Topic, r.Partition)
	h.ins.retried.Add(ctx, 1, p.add...)
	st := stateFrom(ctx)
	if st == nil {
		st = h.pending.get(keyOf(r, info.Group))
	}
	if st == nil {
		return
	}
	st.retrying.Store(true)
	attrs := []attribute.KeyValue{
		AttemptKey.Int(info.Attempt),
		RetryDelayKey.Float64(float64(delay) / float64(time.Millisecond)),
	}
	if err != nil {
		attrs = append(attrs, semconv.ExceptionMessage(err.Error()), semconv.ErrorType(err))
	}
	st.AddEvent("retry", trace.WithAttributes(attrs...))
}

// OnDeadLetterStart starts the producer span of the dead-letter write,
// "send <dead-letter topic>", as a child of the record's span, and returns
// ctx carrying it: the sink injects it into the dead-letter record with
// Inject.
func (h *Hooks) OnDeadLetterStart(ctx context.Context, r *orderly.Record, info orderly.RecordInfo, cause error) context.Context {
	parent := ctx
	if st := stateFrom(ctx); st != nil {
		parent = trace.ContextWithSpan(ctx, st.Span)
	} else if st := h.pending.get(keyOf(r, info.Group)); st != nil {
		parent = trace.ContextWithSpan(ctx, st.Span)
	} else {
		var producer trace.SpanContext
		if len(r.Headers) > 0 {
			parent = h.cfg.prop.Extract(ctx, RecordCarrier(r)) // unsampled record: follow its producer's decision
			if sc := trace.SpanContextFromContext(parent); sc.IsValid() && !sc.Equal(trace.SpanContextFromContext(ctx)) {
				producer = sc
			}
		}
		if h.cfg.sampling && !h.sampledIn(h.part(info.Group, r.Topic, r.Partition), r, producer) {
			// Left out, as its attempts were: no span, and none of ctx's
			// for OnDeadLetterEnd to end.
			return trace.ContextWithSpanContext(parent, producer)
		}
	}
	topic := info.DeadLetterTopic
	if topic == "" {
		topic = h.cfg.deadLetter(r)
	}
	_, span := h.tracer.Start(parent, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(topic),
			OriginalTopicKey.String(r.Topic),
			OriginalPartitionKey.Int(int(r.Partition)),
			OriginalOffsetKey.Int64(r.Offset),
			AttemptKey.Int(info.Attempt),
		)
		if r.Key != nil && utf8.Valid(r.Key) {
			span.SetAttributes(semconv.MessagingKafkaMessageKey(string(r.Key)))
		}
		if cause != nil {
			span.SetAttributes(DeadLetterCauseKey.String(cause.Error()), semconv.ErrorType(cause))
		}
	}
	return trace.ContextWithSpan(parent, &deadLetterSpan{Span: span, key: keyOf(r, info.Group)})
}

// deadLetterSpan is the producer span of a dead-letter write, with the
// record it writes, for OnDeadLetterEnd (which is given no RecordInfo, so
// no group).
type deadLetterSpan struct {
	trace.Span
	key recordKey
}

// OnDeadLetterEnd ends the dead-letter span with the write's result. A
// successful write ends the record's span too (outcome dead_lettered,
// status Error); after a failed one the record's span stays open for the
// write's retry.
func (h *Hooks) OnDeadLetterEnd(ctx context.Context, r *orderly.Record, err error) {
	span := trace.SpanFromContext(ctx)
	key := keyOf(r, "")
	if dl, ok := span.(*deadLetterSpan); ok {
		key = dl.key
	}
	p := h.part(key.group, r.Topic, r.Partition)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		h.ins.deadLettered.Add(ctx, 1, p.withError(err))
	} else {
		h.ins.deadLettered.Add(ctx, 1, p.add...)
	}
	span.End()
	if err != nil {
		return
	}
	st := h.pending.take(key)
	if st == nil {
		return
	}
	msg := "dead-lettered"
	if st.err != nil {
		msg += ": " + st.err.Error()
	}
	st.SetStatus(codes.Error, msg)
	st.SetAttributes(OutcomeKey.String("dead_lettered"))
	st.End()
}

// OnRecordDone ends the span of a record whose journey ended other than
// by a successful attempt or dead-letter write (those ended it already):
// recovered by the fallback (orderly.WithFallback), failed and logged, or abandoned
// because its claim ended.
func (h *Hooks) OnRecordDone(r *orderly.Record, info orderly.RecordInfo, outcome orderly.Outcome, err error) {
	if outcome == orderly.OutcomeHandled || outcome == orderly.OutcomeDeadLettered {
		return
	}
	if st := h.pending.take(keyOf(r, info.Group)); st != nil {
		endWith(st, outcome.String(), outcome != orderly.OutcomeRecovered)
	}
}

// endFailed ends the span of a record that failed and is done without a
// dead-letter write, when only a commit tells (a safety net: OnRecordDone
// normally ends it first): status Error, outcome failed.
func endFailed(st *recordState) { endWith(st, "failed", true) }

// endWith ends a failed record's span, when its last attempt ended.
func endWith(st *recordState, outcome string, isErr bool) {
	if st.attempt != nil {
		st.attempt.End(trace.WithTimestamp(st.finished))
	}
	if isErr && st.err != nil {
		st.SetStatus(codes.Error, st.err.Error())
	}
	st.SetAttributes(OutcomeKey.String(outcome))
	if st.finished.IsZero() {
		st.End()
		return
	}
	st.End(trace.WithTimestamp(st.finished))
}

// ObserveRecords keeps, of a batch, the records the hooks have anything to
// do with (orderly.HookRecordFilter): with WithRecordSampling and no
// per-record metric enabled, a record left out by the ratio and carrying
// no headers (so no producer's trace context to hand to its handler) is
// not kept, and costs nothing more, as long as Run's context carries no
// span (its handler must not see that span as its parent). Every other
// record is kept.
func (h *Hooks) ObserveRecords(ctx context.Context, b []*orderly.Record, keep []bool) {
	if !h.cfg.sampling || h.recordMetrics() || len(b) == 0 || trace.SpanContextFromContext(ctx).IsValid() {
		for i := range keep {
			keep[i] = true
		}
		return
	}
	seed, topic, partition := uint64(0), "", int32(-1)
	for i, r := range b {
		if len(r.Headers) > 0 {
			keep[i] = true
			continue
		}
		if r.Topic != topic || r.Partition != partition || i == 0 {
			topic, partition = r.Topic, r.Partition
			seed = partitionSeed(topic, partition)
		}
		keep[i] = h.pick(seed, r.Offset)
	}
}

// recordMetrics reports whether an instrument measured per record is
// enabled.
func (h *Hooks) recordMetrics() bool {
	ctx := context.Background()
	in := &h.ins
	return in.consumed.Enabled(ctx) || in.duration.Enabled(ctx) || in.handled.Enabled(ctx) || in.failed.Enabled(ctx) ||
		in.retried.Enabled(ctx) || in.deadLettered.Enabled(ctx) || in.wait.Enabled(ctx) || in.inFlight.Enabled(ctx)
}
