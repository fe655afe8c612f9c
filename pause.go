package orderly

import (
	"slices"

	"github.com/orderly-go/orderly/backpressure"
)

// PauseReason says why a partition's fetching is paused. Stats and
// HookPartitionPaused report every reason in force. The values are short
// kebab-case names, stable for dashboards and logs.
type PauseReason string

// The reasons a partition is paused.
const (
	// PauseKey: a key holds more than its key buffer (WithKeyBuffer).
	PauseKey PauseReason = "key"
	// PausePartitionRecords: the partition holds its buffer's worth of
	// records (WithPartitionBuffer).
	PausePartitionRecords PauseReason = "partition-records"
	// PausePartitionBytes: the partition holds its buffer's worth of
	// bytes.
	PausePartitionBytes PauseReason = "partition-bytes"
	// PauseEngineRecords: the engine holds its buffer's worth of records
	// (WithEngineBuffer).
	PauseEngineRecords PauseReason = "engine-records"
	// PauseEngineBytes: the engine holds its buffer's worth of bytes.
	PauseEngineBytes PauseReason = "engine-bytes"
	// PauseUncommitted: the partition's uncommitted window is full: an
	// unfinished record holds the watermark back (WithMaxUncommitted).
	PauseUncommitted PauseReason = "uncommitted"
	// PauseBreaker: the circuit breaker is open (WithCircuitBreaker).
	PauseBreaker PauseReason = "breaker"
	// PausePriorityRecords: a priority level's slice of the engine
	// buffer holds its records' worth (WithPriorities, PriorityLevel's
	// Buffer). Stats.Levels shows which level is full.
	PausePriorityRecords PauseReason = "priority-records"
	// PausePriorityBytes: a priority level's slice holds its bytes' worth.
	PausePriorityBytes PauseReason = "priority-bytes"
)

// pauseReasons maps the internal reasons to the public ones.
var pauseReasons = [...]PauseReason{
	backpressure.ReasonKey:              PauseKey,
	backpressure.ReasonPartitionRecords: PausePartitionRecords,
	backpressure.ReasonPartitionBytes:   PausePartitionBytes,
	backpressure.ReasonEngineRecords:    PauseEngineRecords,
	backpressure.ReasonEngineBytes:      PauseEngineBytes,
	backpressure.ReasonUncommitted:      PauseUncommitted,
	backpressure.ReasonBreaker:          PauseBreaker,
}

func pauseReasonsOf(rs []backpressure.Reason) []PauseReason {
	if len(rs) == 0 {
		return nil
	}
	out := make([]PauseReason, 0, len(rs))
	for _, r := range rs {
		var pr PauseReason
		if int(r) < len(pauseReasons) && pauseReasons[r] != "" {
			pr = pauseReasons[r]
		} else if _, bytes, ok := r.Level(); ok {
			pr = PausePriorityRecords
			if bytes {
				pr = PausePriorityBytes
			}
			if slices.Contains(out, pr) {
				continue // several levels' slices: one reason
			}
		} else {
			pr = PauseReason(r.String())
		}
		out = append(out, pr)
	}
	return out
}
