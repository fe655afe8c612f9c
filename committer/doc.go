// Package committer tracks which dispatched offsets of a partition are done
// and turns that into what a Kafka offset commit can carry: the watermark
// tracker, the commit metadata codec, and the committer actor.
//
// A partition's records are dispatched in offset order but may finish out of
// order (per-key parallelism). Kafka stores one committed offset per
// partition: the next offset to read. A [Tracker] computes that offset, the
// watermark, as the lowest offset that was dispatched but is not done yet.
// Offsets above the watermark that are already done would be processed a
// second time after a restart; to avoid that, [EncodeMetadata] packs them, as
// [Range] values, into the commit's metadata string, and after a restart
// [DecodeMetadata] and a [Skipper] recognise them so they are not handled
// again.
//
// # Guarantees
//
// Delivery is at-least-once. The metadata is an optimisation that can only
// ever reduce duplicates, never lose a record:
//
//   - EncodeMetadata never claims an offset that was not in the completed set
//     it was given. When the ranges do not fit in the size limit (Kafka
//     brokers accept [MaxMetadataBytes] by default), the lowest ranges are
//     kept and the rest dropped, possibly cutting one range short. Offsets
//     left out are merely processed again after a restart.
//   - DecodeMetadata returns ranges only for metadata that this package
//     wrote ([ErrForeignMetadata] otherwise), that is intact
//     ([ErrCorruptMetadata] otherwise: a CRC-32 guards it) and that was
//     written for exactly the committed offset it is checked against
//     ([ErrStaleMetadata] otherwise, e.g. when an operator reset the group's
//     offsets). On any error the caller should skip nothing.
//
// # Format
//
// The metadata is ASCII: the prefix "ol1:" then the unpadded URL-safe base64
// of uvarint(watermark), uvarint(number of ranges), per range uvarint(gap) and
// uvarint(length-1), and a big-endian CRC-32 (IEEE) of those bytes. The gap
// of the first range is First-watermark-1, of later ranges
// First-previous.Last-2, so ranges are strictly above the watermark, ascending,
// disjoint and never adjacent. Varints must be minimal, so every valid
// metadata string has exactly one encoding.
//
// # The committer actor
//
// An [Actor] is one goroutine that owns the offsets of every partition
// opened on it ([Actor.Open]) and advances their watermarks from the
// notices their owners send: [Partition.Register] when a record is
// dispatched, [Partition.Complete] when it is done, gathered and handed
// over by [Partition.Send] as one message per batch. It commits every
// partition that moved on an interval (or sooner, after a number of
// completions), with one request for all of them when given a batch
// function, and synchronously on [Partition.Flush] and [Partition.Close].
// Commits run on goroutines the actor owns and joins, never on its loop, so
// a slow broker delays commits, not the watermark. See [Actor].
//
// # Concurrency
//
// Tracker, Offsets and Skipper are not safe for concurrent use: each is
// owned by one goroutine (in orderly, the Tracker and Offsets by the
// committer actor, the Skipper by a partition's dispatcher). The metadata
// functions are pure and safe to call from any goroutine. Actor and
// Partition say, method by method, who may call them.
//
// This package is v0: its API may change before v1.
package committer
