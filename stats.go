package orderly

import (
	"sort"
	"time"
)

// Stats is a snapshot of an engine's state, for dashboards and tests.
// Counters are named for what they count: attempts (handler calls) or
// records (each counted once, when its journey ends).
type Stats struct {
	InFlight    int64 // handler calls running now
	HeldRecords int64 // records held by the engine (dispatched, not finished)
	HeldBytes   int64 // their bytes (Record.Size)

	RecordsHandled      uint64 // records whose handler succeeded, since New
	RecordsRecovered    uint64 // records the fallback declared done (WithFallback)
	RecordsDeadLettered uint64 // records written to the dead-letter sink
	RecordsFailed       uint64 // records that failed for good with no sink: logged and counted as done
	AttemptsFailed      uint64 // handler calls that returned an error or panicked
	AttemptsRetried     uint64 // failed handler calls that were retried

	Stuck        int64         // handler calls running past twice their attempt timeout now
	StuckRecords []StuckRecord // which records those are, longest running first
	BreakerOpen  bool          // the circuit breaker is open
	ReadyActors  int           // key actors with work waiting for a concurrency slot
	Partitions   []PartitionStats
	PausedTotal  int    // partitions paused now
	EngineLimits Limits // the engine buffer (WithEngineBuffer)
	// Levels describes each priority level, highest first
	// (WithPriorities); nil without priorities.
	Levels []LevelStats

	// Spilled keys (KeyOverflowSpill), over every partition.
	SpilledKeys   int    // keys spilled now
	Rereading     int    // partitions re-reading for their spilled keys now
	RecordsReread uint64 // records read a second time from the log, since New: the price of spilling
}

// StuckRecord is a handler call running past twice its attempt timeout
// (WithAttemptTimeout): the engine cannot stop it, only report it.
type StuckRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // the record's key; do not modify
	Attempt   int
	Running   time.Duration // since the attempt started
}

// Limits is a pair of record and byte limits.
type Limits struct {
	Records int64
	Bytes   int64
}

// PartitionStats describes one claimed partition.
type PartitionStats struct {
	Topic       string
	Partition   int32
	InFlight    int64         // handler calls running for this partition
	HeldRecords int64         // records dispatched and not finished
	HeldBytes   int64         // their bytes
	Uncommitted int64         // records dispatched the watermark has not passed
	Keys        int           // keys with queued or running records
	Watermark   int64         // next offset to commit; -1 when unknown
	Committed   int64         // last committed next offset; -1 when none
	End         int64         // the partition's end (next offset to be written), when the claim knows it; -1 otherwise
	Lag         int64         // End - Committed: records not yet committed by this group; -1 when unknown
	Paused      bool          // fetching paused by backpressure
	Reasons     []PauseReason // every reason the partition is paused for; nil when it is not
	Parked      int           // keys parked after a dead-letter
	Retrying    int           // records waiting for their next attempt (or dead-letter write)

	KeyOverflow   KeyOverflow // what a key over its buffer does here: spill, or pause the partition
	SpilledKeys   int         // keys spilled now: their later records are dropped, to be read again
	Rereading     bool        // a re-read for the spilled keys is running
	RecordsReread uint64      // records read a second time from the log by this claim
}

// Stats returns a snapshot. It is safe to call at any time from any
// goroutine; the numbers are each consistent, not with each other.
func (e *Engine) Stats() Stats {
	s := Stats{
		InFlight:        e.running(nil),
		HeldRecords:     e.records.Held(),
		HeldBytes:       e.bytes.Held(),
		AttemptsFailed:  e.failed.Load(),
		AttemptsRetried: e.retried.Load(),
		Stuck:           e.stuck.Load(),
		ReadyActors:     e.sched.Ready(),
	}
	s.EngineLimits = Limits{Records: e.records.High(), Bytes: e.bytes.High()}
	s.StuckRecords = e.stuckRecords(time.Now())
	s.BreakerOpen = e.breaker != nil && e.breaker.isOpen()
	s.Levels = e.levelStats()
	// The counters of live partitions and of ended ones, under e.mu: a
	// partition moves its counts to e.ended as it leaves the list, under
	// the same lock, so none is counted twice or missed.
	var c counts
	e.mu.Lock()
	parts := e.partitions()
	for _, p := range parts {
		c.add(p.counts.load())
	}
	c.add(e.ended)
	e.mu.Unlock()
	for _, p := range parts {
		ps := p.stats()
		if ps.Paused {
			s.PausedTotal++
		}
		s.SpilledKeys += ps.SpilledKeys
		if ps.Rereading {
			s.Rereading++
		}
		s.Partitions = append(s.Partitions, ps)
	}
	s.RecordsReread = c.reread
	s.RecordsHandled, s.RecordsRecovered, s.RecordsDeadLettered, s.RecordsFailed = c.handled, c.recovered, c.deadLettered, c.failed
	sort.Slice(s.Partitions, func(i, j int) bool {
		a, b := s.Partitions[i], s.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return s
}

// stuckRecords lists the attempts running past twice their deadline.
func (e *Engine) stuckRecords(now time.Time) []StuckRecord {
	calls := e.stuckCalls.list(now)
	if len(calls) == 0 {
		return nil
	}
	out := make([]StuckRecord, len(calls))
	for i, c := range calls {
		out[i] = StuckRecord{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset, Attempt: c.Attempt, Running: c.Running}
		if c.HasKey {
			out[i].Key = []byte(c.Key)
		}
	}
	return out
}

// stats describes the partition for Stats.
func (p *partition) stats() PartitionStats {
	ps := PartitionStats{
		Topic:       p.topic,
		Partition:   p.id,
		InFlight:    p.e.running(p),
		HeldRecords: p.records.Held(),
		HeldBytes:   p.bytes.Held(),
		Uncommitted: p.window.Held(),
		Keys:        p.group.Keys(),
		Watermark:   p.cp.Watermark(),
		Committed:   p.cp.Committed(),
		Paused:      p.valve.Paused(),
		Parked:      p.parked.Len(time.Now()),
		End:         -1,
		Lag:         -1,
		Retrying:    p.group.Delayed(),
	}
	if eo, ok := p.claim.(EndOffsetter); ok {
		ps.End = eo.EndOffset()
		if ps.End >= 0 && ps.Committed >= 0 {
			ps.Lag = max(ps.End-ps.Committed, 0)
		}
	}
	ps.Reasons = pauseReasonsOf(p.valve.Reasons())
	p.spillStats(&ps)
	return ps
}
