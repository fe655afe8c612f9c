package orderly

import "sort"

// Stats is a snapshot of an engine's state, for dashboards and tests.
type Stats struct {
	InFlight     int64  // handler calls running now
	HeldRecords  int64  // records held by the engine (dispatched, not finished)
	HeldBytes    int64  // their bytes (Record.Size)
	Handled      uint64 // handler calls that returned nil, since New
	Failed       uint64 // handler calls that returned an error or panicked
	Retried      uint64 // failed attempts that were retried
	Recovered    uint64 // records the recovery function declared done
	DeadLettered uint64 // records written to the dead-letter sink
	Stuck        int64  // handler calls running past twice their attempt timeout now
	BreakerOpen  bool   // the circuit breaker is open
	ReadyActors  int    // key actors with work waiting for a concurrency slot
	Partitions   []PartitionStats
	PausedTotal  int // partitions paused now
	EngineLimits struct{ Records, Bytes int64 }
}

// PartitionStats describes one claimed partition.
type PartitionStats struct {
	Topic       string
	Partition   int32
	InFlight    int64    // handler calls running for this partition
	HeldRecords int64    // records dispatched and not finished
	HeldBytes   int64    // their bytes
	Uncommitted int64    // records dispatched the watermark has not passed
	Keys        int      // live key actors (keys with queued or running records)
	Watermark   int64    // next offset to commit; -1 when unknown
	Committed   int64    // last committed next offset; -1 when none
	End         int64    // the partition's end (next offset to be written), when the claim knows it; -1 otherwise
	Lag         int64    // End - Committed: records not yet committed by this group; -1 when unknown
	Paused      bool     // fetching paused by backpressure
	Reasons     []string // why it is paused: "key", "partition-records", "partition-bytes", "engine-records", "engine-bytes", "uncommitted", "breaker"
	Parked      int      // keys parked after a dead-letter
	Retrying    int      // records waiting for their next attempt (or dead-letter write)
}

// Stats returns a snapshot. It is safe to call at any time from any
// goroutine; the numbers are each consistent, not with each other.
func (e *Engine) Stats() Stats {
	s := Stats{
		InFlight:    e.inFlight.Load(),
		HeldRecords: e.records.Held(),
		HeldBytes:   e.bytes.Held(),
		Failed:      e.failed.Load(),
		Retried:     e.retried.Load(),
		Stuck:       e.stuck.Load(),
		ReadyActors: e.sched.Ready(),
	}
	s.EngineLimits.Records, s.EngineLimits.Bytes = e.records.High(), e.bytes.High()
	s.BreakerOpen = e.breaker != nil && e.breaker.isOpen()
	// The counters of live partitions and of ended ones, under e.mu: a
	// partition moves its counts to e.ended as it leaves the list, under
	// the same lock, so none is counted twice or missed.
	var c counts
	e.mu.Lock()
	parts := e.partitions()
	for _, p := range parts {
		p.group.Lock()
		c.add(p.counts)
		p.group.Unlock()
	}
	c.add(e.ended)
	e.mu.Unlock()
	for _, p := range parts {
		ps := p.stats()
		if ps.Paused {
			s.PausedTotal++
		}
		s.Partitions = append(s.Partitions, ps)
	}
	s.Handled, s.Recovered, s.DeadLettered = c.handled, c.recovered, c.deadLettered
	sort.Slice(s.Partitions, func(i, j int) bool {
		a, b := s.Partitions[i], s.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return s
}
