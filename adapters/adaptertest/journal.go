package adaptertest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/orderly-go/orderly"
)

// workFunc is what a test's handler does with a record, after the journal
// noted the call. A nil workFunc succeeds at once. leaving is closed when
// the member is leaving the group (see gate.pass).
type workFunc func(ctx context.Context, leaving <-chan struct{}, r *orderly.Record) error

// at names one record of the test's topic.
type at struct {
	p int32
	o int64
}

// attempt is one handler call for a key.
type attempt struct {
	member string
	offset int64
	ok     bool // returned nil
	ended  bool
}

// journal records every handler call of every engine in a test: what it
// was given, when it ran relative to other calls of its key, and which
// member completed which record. Handlers run on the engines' goroutines;
// the test reads the journal from its own.
type journal struct {
	// producing is held for writing while the test produces and notes
	// what it produced, and for reading while a handler call checks its
	// record against that: a record may reach a handler before Produce
	// returns its offset. It is taken before mu.
	producing sync.RWMutex

	mu        sync.Mutex
	expected  map[at]Message
	attempts  map[string][]*attempt // "partition/key" → calls in start order
	running   map[string]string     // "partition/key" → member running one now
	overlaps  []overlap
	done      map[at][]string // record → members whose call returned nil, in order
	doneCount int
	inFlight  int
	maxFlight int // the most handler calls ever running at once
	problems  []string

	// poke gets a value, without blocking, whenever a handler call ends,
	// so that waiters re-check their condition.
	poke chan struct{}
}

type overlap struct {
	slot     string
	a, b     string // members
	offA, ob int64
}

func newJournal() *journal {
	return &journal{
		expected: make(map[at]Message),
		attempts: make(map[string][]*attempt),
		running:  make(map[string]string),
		done:     make(map[at][]string),
		poke:     make(chan struct{}, 1),
	}
}

func (j *journal) expect(p int32, o int64, m Message) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.expected[at{p, o}] = m
}

// handler returns the handler of member: it notes the call, runs work and
// notes the outcome.
func (j *journal) handler(member string, leaving <-chan struct{}, work workFunc) orderly.Handler {
	return orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		a := j.begin(member, r)
		var err error
		if work != nil {
			err = work(ctx, leaving, r)
		}
		j.end(member, r, a, err == nil)
		return err
	})
}

func slotOf(r *orderly.Record) string {
	if r.Key == nil {
		return ""
	}
	return fmt.Sprintf("%d/%s", r.Partition, r.Key)
}

func (j *journal) begin(member string, r *orderly.Record) *attempt {
	j.producing.RLock()
	defer j.producing.RUnlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	want, ok := j.expected[at{r.Partition, r.Offset}]
	switch {
	case !ok:
		j.problems = append(j.problems, fmt.Sprintf("%s handled %s/%d@%d, which the test never produced", member, r.Topic, r.Partition, r.Offset))
	case !bytes.Equal(want.Key, r.Key) || !bytes.Equal(want.Value, r.Value):
		j.problems = append(j.problems, fmt.Sprintf("%s handled %d@%d with key %q value %q; produced key %q value %q",
			member, r.Partition, r.Offset, r.Key, r.Value, want.Key, want.Value))
	}
	j.inFlight++
	j.maxFlight = max(j.maxFlight, j.inFlight)
	a := &attempt{member: member, offset: r.Offset}
	if slot := slotOf(r); slot != "" {
		if other, busy := j.running[slot]; busy {
			prev := j.attempts[slot][len(j.attempts[slot])-1]
			j.overlaps = append(j.overlaps, overlap{slot, other, member, prev.offset, r.Offset})
		}
		j.running[slot] = member
		j.attempts[slot] = append(j.attempts[slot], a)
	}
	return a
}

func (j *journal) end(member string, r *orderly.Record, a *attempt, ok bool) {
	j.mu.Lock()
	j.inFlight--
	a.ok, a.ended = ok, true
	if slot := slotOf(r); slot != "" && j.running[slot] == member {
		delete(j.running, slot)
	}
	if ok {
		j.done[at{r.Partition, r.Offset}] = append(j.done[at{r.Partition, r.Offset}], member)
		j.doneCount++
	}
	j.mu.Unlock()
	select {
	case j.poke <- struct{}{}:
	default:
	}
}

func (j *journal) problemList() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.problems)
}

// completions returns how many handler calls returned nil.
func (j *journal) completions() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.doneCount
}

// doneBy returns the members whose handler completed the record, in order.
func (j *journal) doneBy(p int32, o int64) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.done[at{p, o}])
}

// doneByMember returns the records member completed, and how often.
func (j *journal) doneByMember(member string) map[at]int {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[at]int)
	for rec, members := range j.done {
		for _, m := range members {
			if m == member {
				out[rec]++
			}
		}
	}
	return out
}

// missing describes a produced record that no handler completed yet, or
// returns "".
func (j *journal) missing() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	first := at{}
	for rec := range j.expected {
		if len(j.done[rec]) == 0 {
			if n == 0 || rec.p < first.p || (rec.p == first.p && rec.o < first.o) {
				first = rec
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d records not handled yet, the first at partition %d offset %d", n, len(j.expected), first.p, first.o)
}

// requireExactlyOnce checks that every produced record was completed
// once, except those tolerate accepts, and returns those. history describes a
// partition's claims and commits for the failure message.
func (j *journal) requireExactlyOnce(t *testing.T, history func(p int32) string, tolerate func(p int32, o int64) bool) map[at]bool {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	recs := make([]at, 0, len(j.expected))
	for rec := range j.expected {
		recs = append(recs, rec)
	}
	sortAt(recs)
	tolerated := make(map[at]bool)
	for _, rec := range recs {
		by := j.done[rec]
		if len(by) == 1 {
			continue
		}
		if len(by) > 1 && tolerate != nil && tolerate(rec.p, rec.o) {
			tolerated[rec] = true
			continue
		}
		t.Fatalf("partition %d offset %d: completed by %v; want exactly once (no crash, no failure)\n%s", rec.p, rec.o, by, history(rec.p))
	}
	return tolerated
}

// requireOrder checks that the completed calls of each key ran in strictly
// increasing offset order: over all members (global) or within each
// member's run. A call that did not complete (cut short by a revoke or
// drain timeout) may be followed by another call for the same record.
//
// Records in exempt are left out of the check.
func (j *journal) requireOrder(t *testing.T, global bool, exempt map[at]bool) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	for slot, as := range j.attempts {
		var p int32
		fmt.Sscanf(slot, "%d/", &p)
		last := make(map[string]int64)
		for _, a := range as {
			if !a.ok || exempt[at{p, a.offset}] {
				continue
			}
			who := a.member
			if global {
				who = ""
			}
			if prev, seen := last[who]; seen && a.offset <= prev {
				t.Fatalf("key %s: %s handled offset %d after offset %d; a key's records must be handled in offset order (sequence: %s)",
					slot, a.member, a.offset, prev, describe(as))
			}
			last[who] = a.offset
		}
	}
}

// requireNoOverlap checks that no two calls of a key ever ran at once,
// except where a crashed member was one of them (its handlers may still
// run while the partition's next owner starts, as with Kafka).
func (j *journal) requireNoOverlap(t *testing.T, crashed ...string) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, o := range j.overlaps {
		if slices.Contains(crashed, o.a) || slices.Contains(crashed, o.b) {
			continue
		}
		t.Fatalf("key %s: %s started offset %d while %s was still handling offset %d; a key's records run one at a time",
			o.slot, o.b, o.ob, o.a, o.offA)
	}
}

func describe(as []*attempt) string {
	var b bytes.Buffer
	for i, a := range as {
		if i == 20 {
			fmt.Fprintf(&b, " … (%d more)", len(as)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s@%d", a.member, a.offset)
		if !a.ok {
			b.WriteString("(not completed)")
		}
	}
	return b.String()
}

func sortAt(recs []at) {
	sort.Slice(recs, func(i, k int) bool {
		if recs[i].p != recs[k].p {
			return recs[i].p < recs[k].p
		}
		return recs[i].o < recs[k].o
	})
}

// gate holds handlers back so that a test decides how far a stream has
// got when it changes the group: a handler passes only with a token.
type gate struct {
	tokens chan struct{}
	open   chan struct{}
	once   sync.Once
}

// newGate returns a closed gate with room for capacity tokens; the env's
// cleanup opens it.
func (e *env) newGate(capacity int) *gate {
	g := &gate{tokens: make(chan struct{}, capacity), open: make(chan struct{})}
	e.gates = append(e.gates, g)
	return g
}

// release lets n more handler calls pass. It never blocks as long as the
// gate's capacity is not exceeded.
func (g *gate) release(n int) {
	for range n {
		g.tokens <- struct{}{}
	}
}

// openAll lets every handler call pass from now on.
func (g *gate) openAll() { g.once.Do(func() { close(g.open) }) }

// pass waits for a token, for the gate to open, for the member to leave
// (so that its revoked partitions drain without waiting for the test) or
// for ctx.
func (g *gate) pass(ctx context.Context, leaving <-chan struct{}) error {
	select {
	case <-g.tokens:
		return nil
	case <-g.open:
		return nil
	case <-leaving:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
