package main

import (
	"fmt"
	"io"
	"sync"
)

// finished is, per partition, the offsets of this run's events that are
// done for good: handled, or written to the dead-letter sink. Safe for
// concurrent use; each partition has its own lock, so that handlers of
// different partitions do not contend.
type finished struct {
	parts []finishedPartition
}

type finishedPartition struct {
	mu      sync.Mutex
	offsets map[int64]struct{} // guarded by mu
}

func newFinished(partitions int) *finished {
	f := &finished{parts: make([]finishedPartition, partitions)}
	for i := range f.parts {
		f.parts[i].offsets = make(map[int64]struct{})
	}
	return f
}

func (f *finished) add(partition int32, offset int64) {
	if int(partition) >= len(f.parts) || partition < 0 {
		return // a partition the demo did not produce to
	}
	p := &f.parts[partition]
	p.mu.Lock()
	p.offsets[offset] = struct{}{}
	p.mu.Unlock()
}

// count is how many of partition's events are finished.
func (f *finished) count(partition int) int {
	p := &f.parts[partition]
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.offsets)
}

// unfinishedBelow returns the first offset in [from, to) of partition that
// is not finished, or -1 when every one is.
func (f *finished) unfinishedBelow(partition int, from, to int64) int64 {
	p := &f.parts[partition]
	p.mu.Lock()
	defer p.mu.Unlock()
	for o := from; o < to; o++ {
		if _, ok := p.offsets[o]; !ok {
			return o
		}
	}
	return -1
}

// commitReport is what the group committed, read back from where the
// events live once the engine has stopped, set against what this run
// produced and finished.
type commitReport struct {
	group      string
	committed  []int64 // per partition; -1: nothing committed
	first, end []int64 // per partition: this run's first offset (-1: none) and end
	fin        *finished
}

// events is how many of this run's events lie below the committed
// offsets.
func (r commitReport) events() int64 {
	var n int64
	for p, c := range r.committed {
		if p < len(r.first) && r.first[p] >= 0 {
			n += max(0, min(c, r.end[p])-r.first[p])
		}
	}
	return n
}

// print writes one line per partition: its committed offset, this run's
// offsets there and how many of them finished.
func (r commitReport) print(out io.Writer) {
	fmt.Fprintf(out, "committed offsets of group %q, read back after the engine stopped:\n", r.group)
	for p, c := range r.committed {
		produced := "no events produced this run"
		if p < len(r.first) && r.first[p] >= 0 {
			produced = fmt.Sprintf("this run produced offsets %d..%d, %d finished", r.first[p], r.end[p]-1, r.fin.count(p))
		}
		fmt.Fprintf(out, "  %s/%d  committed %d  (%s)\n", topic, p, c, produced)
	}
}

// check returns an error when a committed offset passes an event that was
// not finished, or an offset this run never produced: at-least-once means
// a commit only ever covers finished events.
func (r commitReport) check() error {
	for p, c := range r.committed {
		if c < 0 || p >= len(r.first) || r.first[p] < 0 {
			continue
		}
		if c > r.end[p] {
			return fmt.Errorf("%s/%d committed %d, past the last event produced (%d)", topic, p, c, r.end[p]-1)
		}
		if o := r.fin.unfinishedBelow(p, r.first[p], c); o >= 0 {
			return fmt.Errorf("%s/%d committed %d, but the event at offset %d was not finished", topic, p, c, o)
		}
	}
	return nil
}
