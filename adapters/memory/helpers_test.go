package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	require.TestingT
	Helper()
}

// running is a Member whose Consume runs on a goroutine of the test.
type running struct {
	cancel context.CancelFunc
	done   chan error // receives Consume's result
}

// consume starts m.Consume(serve) on a new goroutine.
func consume(m *memory.Member, serve func(orderly.Claim)) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Consume(ctx, serve) }()
	return r
}

// stop cancels Consume's context and returns what Consume returned.
func (r *running) stop() error {
	r.cancel()
	return <-r.done
}

// recorder is a tiny engine: its serve reads Records until the channel is
// closed (which the memory log does on revoke) and commits the next offset
// after each record, with its member's ID as metadata. It checks the
// properties a claim must have as it goes and notes every violation:
// records of the claim's partition only, in contiguous offset order from
// Start (from 0 when Start is NoOffset), no partition served by two members
// at once, no failing commit. A member marked with crashing is exempt from
// the last two: its serve call may overlap its partitions' new owners and
// its commits fail with ErrFenced.
type recorder struct {
	mu       sync.Mutex
	seen     map[memory.TopicPartition]map[int64]int // offset → times delivered
	owner    map[memory.TopicPartition]string        // member serving it now
	starts   map[string][]orderly.Position           // "member tp" → Start of each claim
	serves   int                                     // serve calls so far
	crashed  map[string]bool                         // members marked with crashing
	problems []string
}

func newRecorder() *recorder {
	return &recorder{
		seen:    make(map[memory.TopicPartition]map[int64]int),
		owner:   make(map[memory.TopicPartition]string),
		starts:  make(map[string][]orderly.Position),
		crashed: make(map[string]bool),
	}
}

// crashing marks member as about to crash.
func (r *recorder) crashing(member string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crashed[member] = true
}

func (r *recorder) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *recorder) serve(member string) func(orderly.Claim) {
	return func(c orderly.Claim) {
		tp := memory.TopicPartition{Topic: c.Topic(), Partition: c.Partition()}
		r.mu.Lock()
		r.serves++
		// A crashed member's serve goroutine may start after its
		// partition's next owner's: only overlaps of live members count.
		other, ok := r.owner[tp]
		switch {
		case !ok || r.crashed[other]:
			r.owner[tp] = member
		case !r.crashed[member]:
			r.problems = append(r.problems, fmt.Sprintf("%s granted to %s while %s serves it", tp, member, other))
		}
		key := member + " " + tp.String()
		r.starts[key] = append(r.starts[key], c.Start())
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			if r.owner[tp] == member {
				delete(r.owner, tp)
			}
			r.mu.Unlock()
		}()

		next := max(c.Start().Offset, 0)
		for rec := range each(c) {
			if rec.Topic != tp.Topic || rec.Partition != tp.Partition || rec.Offset != next {
				r.problem("%s of %s: got %s/%d@%d, want offset %d", member, tp, rec.Topic, rec.Partition, rec.Offset, next)
			}
			next = rec.Offset + 1
			r.mu.Lock()
			if r.seen[tp] == nil {
				r.seen[tp] = make(map[int64]int)
			}
			r.seen[tp][rec.Offset]++
			r.mu.Unlock()
			err := c.Commit(context.Background(), rec.Offset+1, member)
			r.mu.Lock()
			fenced := r.crashed[member] && errors.Is(err, memory.ErrFenced)
			r.mu.Unlock()
			if err != nil && !fenced {
				r.problem("%s commit %s@%d: %v", member, tp, rec.Offset+1, err)
			}
		}
		select {
		case <-c.Revoked():
		default:
			r.problem("%s: Records of %s closed before Revoked", member, tp)
		}
	}
}

func (r *recorder) lastStart(member string, tp memory.TopicPartition) (orderly.Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.starts[member+" "+tp.String()]
	if len(s) == 0 {
		return orderly.Position{}, false
	}
	return s[len(s)-1], true
}

func (r *recorder) serveCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serves
}

// missing lists the offsets of topic below the end of each partition
// that were never delivered.
func (r *recorder) missing(t tb, l *memory.Log, topic string) []string {
	t.Helper()
	n, err := l.Partitions(topic)
	require.NoError(t, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing []string
	for p := range int32(n) {
		end, err := l.EndOffset(topic, p)
		require.NoError(t, err)
		for off := range end {
			if r.seen[memory.TopicPartition{Topic: topic, Partition: p}][off] == 0 {
				missing = append(missing, fmt.Sprintf("%s/%d@%d", topic, p, off))
			}
		}
	}
	return missing
}

func (r *recorder) check(t tb) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Empty(t, r.problems)
}

// requireMonotonicCommits checks that no partition's committed offset ever
// went backwards.
func requireMonotonicCommits(t tb, l *memory.Log, group, topic string) {
	t.Helper()
	n, err := l.Partitions(topic)
	require.NoError(t, err)
	for p := range int32(n) {
		h := l.CommitHistory(group, topic, p)
		require.True(t, slices.IsSortedFunc(h, func(a, b orderly.Position) int { return int(a.Offset - b.Offset) }),
			"commits of %s/%d went backwards: %v", topic, p, h)
	}
}

func tp(topic string, partition int32) memory.TopicPartition {
	return memory.TopicPartition{Topic: topic, Partition: partition}
}

// each yields the records of c's batches, one by one, checking that no
// batch is empty.
func each(c orderly.Claim) func(yield func(*orderly.Record) bool) {
	return func(yield func(*orderly.Record) bool) {
		for b := range c.Records() {
			if len(b) == 0 {
				panic("memory: an empty batch on Records")
			}
			for _, r := range b {
				if !yield(r) {
					return
				}
			}
		}
	}
}
