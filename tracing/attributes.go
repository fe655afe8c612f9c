package tracing

import "go.opentelemetry.io/otel/attribute"

// Attribute keys of orderly's own, beside the messaging semantic
// conventions.
const (
	AttemptKey     = attribute.Key("orderly.attempt")         // handler call number, from 1
	MailboxWaitKey = attribute.Key("orderly.mailbox.wait_ms") // dispatch to first handler call, milliseconds
	RetryDelayKey  = attribute.Key("orderly.retry.delay_ms")  // backoff before the next attempt, milliseconds
	OutcomeKey     = attribute.Key("orderly.outcome")         // handled, dead_lettered or failed
	PriorityKey    = attribute.Key("orderly.priority")        // the record's priority level (orderly.WithPriorities; 0 highest)
	RereadKey      = attribute.Key("orderly.reread")          // true: read a second time from the log, its key having spilled

	CommitFromKey    = attribute.Key("orderly.commit.from")    // committed next offset before the commit
	CommitToKey      = attribute.Key("orderly.commit.to")      // and after it
	CommitRecordsKey = attribute.Key("orderly.commit.records") // records the watermark passed
	CommitFinalKey   = attribute.Key("orderly.commit.final")   // the synchronous commit of a revoke or shutdown

	OriginalTopicKey     = attribute.Key("orderly.original.topic") // on the dead-letter span: the record's origin
	OriginalPartitionKey = attribute.Key("orderly.original.partition")
	OriginalOffsetKey    = attribute.Key("orderly.original.offset")
	DeadLetterCauseKey   = attribute.Key("orderly.dead_letter.cause") // the error that sent it there
)
