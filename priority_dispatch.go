package orderly

import (
	"fmt"
	"log/slog"
	"time"
)

// partitionPriority is a partition's priority state (WithPriorities),
// owned by its dispatcher.
//
// A record's level is found once, when its credits are taken (take), and
// kept in known until then; the levels of records whose credits are taken
// wait in taken, in dispatch order, until send queues the records (or an
// at-most-once commit fails and they are let go), which is the same
// order.
type partitionPriority struct {
	topicKnown bool
	topicLevel int // the level of the partition's topic (PriorityByTopic); -1 if not mapped

	known     []recordLevel // levels found and not yet taken, in dispatch order
	knownHead int
	taken     []levelRun // levels of records taken and not yet queued, in dispatch order
	takenHead int

	warned     time.Time // the last warning about undetermined levels
	undetected int       // records undetermined since then
}

type recordLevel struct {
	r     *Record
	level int
}

type levelRun struct {
	level uint8
	n     int
}

// levelAt finds the level of b[i], or returns the one already found. b
// starts at the next record to take, so b[i] is known[knownHead+i] once
// found.
func (p *partition) levelAt(b []*Record, i int) int {
	pp := &p.d.prio
	if k := pp.knownHead + i; k < len(pp.known) {
		if pp.known[k].r == b[i] {
			return pp.known[k].level
		}
		// Not the records found before (cannot happen: the dispatcher
		// takes in order); find them again.
		clear(pp.known)
		pp.known, pp.knownHead = pp.known[:0], 0
		for j := range i {
			pp.known = append(pp.known, recordLevel{b[j], p.findLevel(b[j])})
		}
	}
	l := p.findLevel(b[i])
	pp.known = append(pp.known, recordLevel{b[i], l})
	return l
}

// forget drops the found levels of the first n records of the queue of
// known ones: their credits are taken.
func (pp *partitionPriority) forget(n int) {
	end := min(pp.knownHead+n, len(pp.known))
	clear(pp.known[pp.knownHead:end])
	pp.knownHead = end
	if pp.knownHead == len(pp.known) {
		pp.known, pp.knownHead = pp.known[:0], 0
	}
}

func (p *partition) findLevel(r *Record) int {
	pr := p.e.prio
	of := &pr.of
	switch {
	case of.topics != nil:
		pp := &p.d.prio
		if !pp.topicKnown {
			pp.topicKnown, pp.topicLevel = true, -1
			if l, ok := of.topics[p.topic]; ok {
				pp.topicLevel = l
			}
		}
		if pp.topicLevel >= 0 {
			return pp.topicLevel
		}
		return p.undetermined(r, "topic not in PriorityByTopic")
	case of.fn != nil:
		var (
			l  int
			ok bool
		)
		err := protect("PriorityFunc", func() error { l, ok = of.fn(r); return nil })
		switch {
		case err != nil:
			return p.undetermined(r, err.Error())
		case !ok:
			return p.undetermined(r, "PriorityFunc returned ok == false")
		case l < 0 || l >= pr.n:
			return p.undetermined(r, fmt.Sprintf("PriorityFunc returned level %d, which does not exist", l))
		}
		return l
	default:
		v, ok := r.Header(of.header)
		if !ok {
			return p.undetermined(r, "no "+of.header+" header")
		}
		l, ok := of.values[string(v)]
		if !ok {
			return p.undetermined(r, of.header+" header value not in PriorityByHeader")
		}
		return l
	}
}

// undetermined gives r the lowest level, logging it at most once every
// undeterminedEvery per partition.
func (p *partition) undetermined(r *Record, why string) int {
	pp := &p.d.prio
	pp.undetected++
	if now := time.Now(); pp.warned.IsZero() || now.Sub(pp.warned) >= undeterminedEvery {
		// records: this one and those since the last warning.
		p.log.Warn("orderly: record priority undetermined; it runs at the lowest level",
			slog.Int64("offset", r.Offset), slog.String("reason", why), slog.Int("records", pp.undetected))
		pp.warned, pp.undetected = now, 0
	}
	return p.e.prio.n - 1
}

// tookLevel notes that the credits of the next n records were taken at
// level (their levels wait in taken for send).
func (p *partition) tookLevel(level, n int) {
	if p.e.prio == nil {
		return
	}
	p.d.prio.forget(n)
	p.d.prio.taken = append(p.d.prio.taken, levelRun{uint8(level), n})
}

// nextLevel returns the level of the next record taken and not yet
// queued: send calls it for each record it queues, in dispatch order.
func (pp *partitionPriority) nextLevel() uint8 {
	run := &pp.taken[pp.takenHead]
	l := run.level
	if run.n--; run.n == 0 {
		pp.takenHead++
		if pp.takenHead == len(pp.taken) {
			pp.taken, pp.takenHead = pp.taken[:0], 0
		}
	}
	return l
}

// rereadLevel is a re-read record's level (see spill.go): findLevel
// without the dispatcher's caches and warning counters, which the
// re-reader, another goroutine, must not touch. A level it cannot
// determine is the lowest, silently (the dispatcher warned of the record
// when it first read it).
func (p *partition) rereadLevel(r *Record) int {
	pr := p.e.prio
	of := &pr.of
	lowest := pr.n - 1
	switch {
	case of.topics != nil:
		if l, ok := of.topics[p.topic]; ok {
			return l
		}
	case of.fn != nil:
		var (
			l  int
			ok bool
		)
		if err := protect("PriorityFunc", func() error { l, ok = of.fn(r); return nil }); err == nil && ok && l >= 0 && l < pr.n {
			return l
		}
	default:
		if v, ok := r.Header(of.header); ok {
			if l, ok := of.values[string(v)]; ok {
				return l
			}
		}
	}
	return lowest
}
