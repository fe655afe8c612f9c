package backpressure

import "strconv"

// Reason says why a partition is held back. A [Valve] counts holds per reason.
type Reason uint8

const (
	// ReasonKey: a key's mailbox is over its high mark.
	ReasonKey Reason = iota + 1
	// ReasonPartitionRecords: the partition holds too many buffered records.
	ReasonPartitionRecords
	// ReasonPartitionBytes: the partition holds too many buffered bytes.
	ReasonPartitionBytes
	// ReasonEngineRecords: the whole engine holds too many buffered records.
	ReasonEngineRecords
	// ReasonEngineBytes: the whole engine holds too many buffered bytes.
	ReasonEngineBytes
	// ReasonUncommitted: the partition's uncommitted window is full (the
	// watermark is held back by an unfinished record).
	ReasonUncommitted
	// ReasonBreaker: the engine's circuit breaker is open.
	ReasonBreaker
)

// reasonLevel is the first of the priority levels' reasons, two per
// level (records, bytes); see ReasonLevelRecords.
const reasonLevel Reason = 32

// maxLevels is the most priority levels with reasons of their own.
const maxLevels = 8

// ReasonLevelRecords is the reason of a partition waiting for the record
// credits of priority level l's slice of the engine buffer; level l's
// slice has its own reason so that its low water mark lifts only what it
// caused. l must be in [0, 8).
func ReasonLevelRecords(l int) Reason { return reasonLevel + Reason(2*l) }

// ReasonLevelBytes is ReasonLevelRecords for the slice's bytes.
func ReasonLevelBytes(l int) Reason { return reasonLevel + Reason(2*l+1) }

// Level reports whether r is a priority level's reason, which level, and
// whether it is about bytes (rather than records).
func (r Reason) Level() (level int, bytes, ok bool) {
	if r < reasonLevel || r >= reasonLevel+2*maxLevels {
		return 0, false, false
	}
	d := int(r - reasonLevel)
	return d / 2, d%2 == 1, true
}

var reasonNames = [...]string{
	ReasonKey:              "key",
	ReasonPartitionRecords: "partition-records",
	ReasonPartitionBytes:   "partition-bytes",
	ReasonEngineRecords:    "engine-records",
	ReasonEngineBytes:      "engine-bytes",
	ReasonUncommitted:      "uncommitted",
	ReasonBreaker:          "breaker",
}

// String returns the reason's short kebab-case name, such as
// "partition-bytes", or "reason(N)" for a value without a name.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	if l, bytes, ok := r.Level(); ok {
		if bytes {
			return "level-" + strconv.Itoa(l) + "-bytes"
		}
		return "level-" + strconv.Itoa(l) + "-records"
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}
