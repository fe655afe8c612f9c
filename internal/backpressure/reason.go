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
	return "reason(" + strconv.Itoa(int(r)) + ")"
}
