package orderly

import (
	"context"
	"time"
)

// Hook is anything given to WithHooks. The engine calls each hook through
// whichever of the Hook* interfaces below it implements; one value may
// implement several. Hooks are how observability plugs in (see package
// tracing): the engine itself imports no exporter.
//
// Per record, hooks are called in this order: OnRecordDispatched once (twice
// for a record of a spilled key: when the dispatcher drops it, and with
// RecordInfo.Reread when it is read back; see Reread); then for each
// attempt OnAttemptStarted and OnAttemptFinished, with
// OnRetryScheduled after a failed attempt that will be retried; then, for
// a record that goes to the dead-letter sink, OnDeadLetterStart and
// OnDeadLetterEnd around each write; and OnRecordDone once, last, with the
// outcome. "Attempt" hooks are per handler call, "record" hooks per
// record.
//
// Hooks run on the engine's goroutines, on the hot path (OnRecordDispatched
// on the partition's dispatcher, attempt and record-done hooks on the
// worker running the record): they must be quick, must not block, and must
// be safe for concurrent use. They are called with no engine lock held, so
// a hook may call any Engine method (Stats, say). A hook that panics is
// logged and ignored: the record's journey goes on. A hook that wants only
// some records implements HookRecordFilter.
type Hook any

// RecordInfo describes one handling of a record, for hooks.
type RecordInfo struct {
	// Group is the consumer group, when the source knows it (see
	// GroupNamer); empty otherwise.
	Group string
	// Dispatched is when the record was handed to its key actor; Started -
	// Dispatched is the time it waited in the mailbox for its key and for a
	// concurrency slot.
	Dispatched time.Time
	// Started is when the current attempt began; zero when no attempt
	// hook wanted it (see HookStartTime).
	Started time.Time
	// Attempt counts handler calls for the record, from 1.
	Attempt int
	// DeadLetterTopic is where a dead-letter write goes, when the sink
	// names it (see DeadLetterTopicNamer); set for dead-letter hooks only.
	DeadLetterTopic string
	// Priority is the record's priority level (WithPriorities; 0 is the
	// highest). It is 0 without priorities.
	Priority int
	// RunPriority is the level the current step runs at: Priority, or a
	// higher level (a lower number) inherited from a record that waits
	// for this one on its keys. At dispatch it is Priority.
	RunPriority int
	// Reread: the record was read a second time from the log, its key
	// having spilled (KeyOverflowSpill). Such a record is dispatched
	// twice: OnRecordDispatched without Reread when the dispatcher drops
	// it, then with Reread when it is handed back; every later hook has
	// Reread set.
	Reread bool
}

// Outcome is how a record's journey through the engine ended.
type Outcome uint8

const (
	OutcomeHandled      Outcome = iota + 1 // the handler succeeded
	OutcomeRecovered                       // the fallback (WithFallback) declared it done
	OutcomeDeadLettered                    // written to the dead-letter sink
	OutcomeFailed                          // failed for good and logged (no sink)
	OutcomeAbandoned                       // its claim ended first: not done, the next owner handles it
)

func (o Outcome) String() string {
	switch o {
	case OutcomeHandled:
		return "handled"
	case OutcomeRecovered:
		return "recovered"
	case OutcomeDeadLettered:
		return "dead_lettered"
	case OutcomeFailed:
		return "failed"
	case OutcomeAbandoned:
		return "abandoned"
	}
	return "unknown"
}

// HookRecordDone is called once per record whose journey ended: handled,
// recovered, dead-lettered or failed, with the last error (nil when
// handled); and for a record abandoned at a revoke or shutdown after its
// first attempt started (OutcomeAbandoned). A record abandoned before any
// attempt (its claim ended while it waited) and a record skipped after a
// restart (done before it) never reach it.
type HookRecordDone interface {
	OnRecordDone(r *Record, info RecordInfo, outcome Outcome, err error)
}

// HookRecordDispatched is called when the dispatcher hands a record to its
// key actor.
type HookRecordDispatched interface {
	OnRecordDispatched(r *Record, info RecordInfo)
}

// HookAttemptStarted is called before each attempt's handler call. The
// context it returns is the one the handler gets (a tracing hook returns a
// context carrying the record's span); returning ctx unchanged is fine.
type HookAttemptStarted interface {
	OnAttemptStarted(ctx context.Context, r *Record, info RecordInfo) context.Context
}

// HookAttemptFinished is called after each attempt's handler call with its
// context and result (nil, an error, or a *PanicError). It is called once
// per attempt, including attempts that will be retried.
type HookAttemptFinished interface {
	OnAttemptFinished(ctx context.Context, r *Record, info RecordInfo, err error)
}

// HookRetryScheduled is called when a failed attempt will be retried after
// delay.
type HookRetryScheduled interface {
	OnRetryScheduled(ctx context.Context, r *Record, info RecordInfo, err error, delay time.Duration)
}

// HookDeadLetter is called around a record's dead-letter write: the
// context returned by OnDeadLetterStart is passed to the sink (a tracing hook
// starts a producer span there) and to OnDeadLetterEnd with the write's
// result.
type HookDeadLetter interface {
	OnDeadLetterStart(ctx context.Context, r *Record, info RecordInfo, cause error) context.Context
	OnDeadLetterEnd(ctx context.Context, r *Record, err error)
}

// HookStartTime may be implemented by a hook whose attempt hooks read
// RecordInfo.Started only some of the time (a tracing hook needs it for a
// sampled record or a duration metric), to spare the engine a read of the
// clock per attempt (tens of nanoseconds: a sizeable share of the engine's
// own cost per record). Before each attempt the engine asks each
// attempt hook (HookAttemptStarted, HookAttemptFinished,
// HookRetryScheduled) that implements HookStartTime; if every attempt hook
// implements it and none wants the time, the engine does not read the
// clock, and Started is zero in that attempt's calls. An attempt hook that
// does not implement HookStartTime always gets Started. Dispatched is set
// either way.
//
// WantsStartTime is called before OnAttemptStarted, on the hot path: it
// must be quick, must not block, and must be safe for concurrent use. A
// panic in it is logged and counts as wanting the time.
type HookStartTime interface {
	WantsStartTime(r *Record) bool
}

// HookPartitionPaused is called when a partition's fetching is paused or
// resumed; a pause comes with every reason in force at that moment. Calls
// for one partition never overlap and alternate between paused and
// resumed; they come from a goroutine of the engine's, shortly after the
// state changed (a pause lifted at once may be reported as no change).
type HookPartitionPaused interface {
	OnPartitionPaused(topic string, partition int32, reasons []PauseReason)
	OnPartitionResumed(topic string, partition int32)
}

// HookSpill is told when keys spill and when re-reads end (see
// KeyOverflowSpill). Both methods run on the partition's dispatcher, with
// no engine lock held.
type HookSpill interface {
	// OnKeySpilled is called when record r spills its keys: r and the
	// later records of its keys are dropped from memory, to be read again
	// from the log.
	OnKeySpilled(r *Record)
	// OnReread is called when a re-read of a partition for its spilled
	// keys ends.
	OnReread(info RereadInfo)
}

// RereadInfo describes one re-read of a partition for its spilled keys.
type RereadInfo struct {
	Topic     string
	Partition int32
	// From and Next: the re-read covered offsets From up to, not
	// including, Next.
	From, Next int64
	Read       int64 // records read from the log: the price of spilling
	Delivered  int64 // records handed back to their keys
	// Back is how many keys are back in memory: the re-read caught up
	// with the dispatcher, so their next records are queued again. Keys
	// that filled up again during the re-read stay spilled for a later
	// one.
	Back int
	// Err is what ended the re-read early: the stream's error, or the
	// claim's end (a context error); nil when it caught up or had
	// nothing left to do.
	Err  error
	Took time.Duration
}

// CommitInfo describes one commit attempt.
type CommitInfo struct {
	Topic     string
	Partition int32
	Group     string
	From, To  int64 // committed next offset before and after
	Records   int64 // records the watermark passed since the previous commit
	Final     bool  // the synchronous commit of a revoke or shutdown
	Err       error
	Took      time.Duration
}

// HookCommit is called after every commit attempt, and after a
// partition's final commit even when there was nothing new to commit, on
// the committer's goroutine that made the commit (its commit goroutine for
// interval commits, the goroutine of a revoke's or shutdown's final
// commit), with no engine lock held.
type HookCommit interface {
	OnCommit(info CommitInfo)
}

// HookRecordFilter may be implemented by a hook that wants to hear about
// only some records: a tracing hook that samples, whose records left out
// should cost nothing. The engine asks it once per batch of records, on
// the partition's dispatcher, before any record hook runs for them:
// ObserveRecords sets keep[i] for the records of b it wants. The records
// it does not keep get none of this hook's record and attempt calls
// (HookRecordDispatched, HookAttemptStarted, HookAttemptFinished,
// HookRetryScheduled, HookDeadLetter, HookRecordDone, HookStartTime), on
// any attempt, and when no hook wants a record the engine does not read
// the clock for it either. Its commit, pause and spill hooks are not
// affected.
//
// ctx is the context the records' handler contexts derive from (Run's,
// without its cancellation): a record left out gets its handler context
// from it untouched. keep has b's length and is all false on entry.
// ObserveRecords must be quick, must not block, must not keep b or keep,
// and must be safe for concurrent use (partitions ask at once). A panic
// counts as keeping every record of the batch. At most 64 hooks filter; a
// 65th is asked nothing and gets every record.
type HookRecordFilter interface {
	ObserveRecords(ctx context.Context, b []*Record, keep []bool)
}

// hooked is a hook with its filter bit: set in a record's quiet mask when
// the hook's filter left the record out (0 for a hook that keeps every
// record).
type hooked[T any] struct {
	h   T
	bit uint64
}

// hooks holds the hooks sorted by the interfaces they implement, so the hot
// path pays only for the kinds in use.
type hooks struct {
	dispatched []hooked[HookRecordDispatched]
	started    []hooked[HookAttemptStarted]
	finished   []hooked[HookAttemptFinished]
	retried    []hooked[HookRetryScheduled]
	dead       []hooked[HookDeadLetter]
	done       []hooked[HookRecordDone]
	paused     []HookPartitionPaused
	commit     []HookCommit

	// startTime are the attempt hooks that say when they need
	// RecordInfo.Started; startAlways is set when an attempt hook that
	// keeps every record does not, and startBits holds the bits of the
	// filtering attempt hooks that do not.
	startTime   []hooked[HookStartTime]
	startAlways bool
	startBits   uint64
	spill       []HookSpill

	// filters are the hooks that filter records (HookRecordFilter);
	// recordBits the bits of those with record or attempt hooks, and
	// unfiltered says whether some record or attempt hook keeps every
	// record.
	filters    []hooked[HookRecordFilter]
	recordBits uint64
	unfiltered bool
}

func (h *hooks) add(x Hook) bool {
	ok := false
	var bit uint64
	if f, is := x.(HookRecordFilter); is && len(h.filters) < 64 {
		bit = 1 << len(h.filters)
		h.filters = append(h.filters, hooked[HookRecordFilter]{f, bit})
	}
	record := false
	if v, is := x.(HookRecordDispatched); is {
		h.dispatched, ok, record = append(h.dispatched, hooked[HookRecordDispatched]{v, bit}), true, true
	}
	if v, is := x.(HookAttemptStarted); is {
		h.started, ok, record = append(h.started, hooked[HookAttemptStarted]{v, bit}), true, true
	}
	if v, is := x.(HookAttemptFinished); is {
		h.finished, ok, record = append(h.finished, hooked[HookAttemptFinished]{v, bit}), true, true
	}
	if v, is := x.(HookRetryScheduled); is {
		h.retried, ok, record = append(h.retried, hooked[HookRetryScheduled]{v, bit}), true, true
	}
	if v, is := x.(HookDeadLetter); is {
		h.dead, ok, record = append(h.dead, hooked[HookDeadLetter]{v, bit}), true, true
	}
	if v, is := x.(HookRecordDone); is {
		h.done, ok, record = append(h.done, hooked[HookRecordDone]{v, bit}), true, true
	}
	if v, is := x.(HookPartitionPaused); is {
		h.paused, ok = append(h.paused, v), true
	}
	if v, is := x.(HookCommit); is {
		h.commit, ok = append(h.commit, v), true
	}
	_, started := x.(HookAttemptStarted)
	_, finished := x.(HookAttemptFinished)
	_, retried := x.(HookRetryScheduled)
	if started || finished || retried {
		switch v, is := x.(HookStartTime); {
		case is:
			h.startTime = append(h.startTime, hooked[HookStartTime]{v, bit})
		case bit != 0:
			h.startBits |= bit
		default:
			h.startAlways = true
		}
	}
	if v, is := x.(HookSpill); is {
		h.spill, ok = append(h.spill, v), true
	}
	if record {
		if bit != 0 {
			h.recordBits |= bit
		} else {
			h.unfiltered = true
		}
	}
	if bit != 0 && !record {
		// A filter with no record hook to filter: nothing to ask.
		h.filters = h.filters[:len(h.filters)-1]
	}
	return ok
}

// silent reports whether no record or attempt hook wants a record with
// the given quiet mask.
func (h *hooks) silent(quiet uint64) bool {
	return !h.unfiltered && h.recordBits&^quiet == 0
}

// WithHooks adds hooks. A value that implements none of the Hook*
// interfaces is invalid.
func WithHooks(hs ...Hook) Option {
	return func(c *config) {
		for i, h := range hs {
			if h == nil || !c.hooks.add(h) {
				c.fail(invalid("WithHooks: hook %d (%T) implements no Hook interface", i, h))
			}
		}
	}
}
