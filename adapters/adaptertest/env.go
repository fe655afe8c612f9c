package adaptertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
)

// quiet is the engines' logger: the suite prints nothing unless it fails.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is one test's world: its cluster, topic and group, the observer of
// every claim and commit, the journal of every handler call, and the
// engines it started (stopped by a cleanup if the test ends early).
//
// Everything but the journal and the observer is used by the test
// goroutine only.
type env struct {
	t     *testing.T
	s     settings
	c     Cluster
	topic string
	group string
	obs   *observer
	j     *journal
	end   map[int32]int64 // next offset after the last produced record, per partition
	runs  []*run
	gates []*gate

	// unread holds, per claim read record by record (claim_tests.go), the
	// rest of the last batch received; last is the last offset received.
	unread map[orderly.Claim][]*orderly.Record
	last   map[orderly.Claim]int64
}

func newEnv(t *testing.T, s settings, c Cluster, name string) *env {
	e := &env{
		t: t, s: s, c: c,
		topic: freshName("topic", name),
		group: freshName("group", name),
		obs:   newObserver(),
		j:     newJournal(),
		end:   make(map[int32]int64),

		unread: make(map[orderly.Claim][]*orderly.Record),
		last:   make(map[orderly.Claim]int64),
	}
	t.Cleanup(e.cleanup)
	return e
}

// cleanup stops whatever a failed test left running, so that no engine
// outlives its test.
func (e *env) cleanup() {
	for _, g := range e.gates {
		g.openAll()
	}
	for _, r := range e.runs {
		r.cancel()
	}
	for _, r := range e.runs {
		select {
		case <-r.exited:
		case <-time.After(e.s.wait):
			e.t.Errorf("engine %s did not return from Run within %v of its context's cancellation", r.id, e.s.wait)
		}
	}
}

func (e *env) createTopic(partitions int) {
	e.t.Helper()
	e.c.CreateTopic(e.t, e.topic, partitions)
}

// produce appends msgs to the partition and notes what each offset holds.
func (e *env) produce(p int32, msgs ...Message) []int64 {
	e.t.Helper()
	if len(msgs) == 0 {
		return nil
	}
	e.j.producing.Lock()
	defer e.j.producing.Unlock()
	offsets := e.c.Produce(e.t, e.topic, p, msgs...)
	require.Len(e.t, offsets, len(msgs), "Cluster.Produce must return one offset per message")
	for i, o := range offsets {
		require.Greater(e.t, o, e.end[p]-1, "Cluster.Produce returned offset %d at or below an earlier one", o)
		e.j.expect(p, o, msgs[i])
		e.end[p] = o + 1
	}
	return offsets
}

// keyed makes n messages with keys drawn from keys names prefixed with
// prefix (the same draw every run; records of a key are often adjacent, so
// that misordered delivery shows as misordered keys); the value says where
// the message is in the batch.
func keyed(prefix string, keys, n int) []Message {
	rng := rand.New(rand.NewPCG(uint64(keys), uint64(n)))
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Key: fmt.Appendf(nil, "%s%d", prefix, rng.IntN(keys)), Value: fmt.Appendf(nil, "%s#%d", prefix, i)}
	}
	return msgs
}

// keyIndex returns the number keyed put after prefix in m's key.
func keyIndex(prefix string, m Message) int {
	var k int
	fmt.Sscanf(strings.TrimPrefix(string(m.Key), prefix), "%d", &k)
	return k
}

// partitions returns the partitions produced to, ascending.
func (e *env) partitions() []int32 {
	ps := make([]int32, 0, len(e.end))
	for p := range e.end {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// baseOptions are the engine options every test uses: fast commits, a
// quiet logger, some concurrency, and drain and revoke timeouts long enough
// that no handler of the suite meets them unless a test wants it to.
func (e *env) baseOptions() []orderly.Option {
	return []orderly.Option{
		orderly.WithLogger(quiet),
		orderly.WithCommitInterval(10 * time.Millisecond),
		orderly.WithMaxConcurrency(8),
		orderly.WithDrainTimeout(e.s.wait / 4),
		orderly.WithRevokeTimeout(e.s.wait / 4),
	}
}

// run is one engine running on one member.
type run struct {
	id     string
	member *observedMember
	eng    *orderly.Engine
	cancel context.CancelFunc
	// leaving is closed by stop before the context is cancelled: gated
	// handlers of this run pass their gate, so a leaving member drains at
	// once.
	leaving   chan struct{}
	leaveOnce sync.Once
	exited    chan struct{} // closed when Run returned; err is then set
	err       error
}

// start makes a member called id, an engine on it whose handler journals
// every call and runs work (nil: succeed at once), and runs it.
func (e *env) start(id string, work workFunc, opts ...orderly.Option) *run {
	e.t.Helper()
	m := &observedMember{Member: e.c.NewMember(e.t, e.group, e.topic), id: id, obs: e.obs}
	r := &run{id: id, member: m, leaving: make(chan struct{}), exited: make(chan struct{})}
	eng, err := orderly.New(m, e.j.handler(id, r.leaving, work), append(e.baseOptions(), opts...)...)
	require.NoError(e.t, err)
	r.eng = eng
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	e.runs = append(e.runs, r)
	// Owned by the run; cleanup and wait wait for it.
	go func() {
		defer close(r.exited)
		r.err = eng.Run(ctx)
	}()
	return r
}

// leave cancels the run's context without waiting: the member leaves the
// group, its engine drains and commits.
func (r *run) leave() {
	r.leaveOnce.Do(func() { close(r.leaving) })
	r.cancel()
}

// wait returns Run's error once Run returned; the test fails if it does
// not return within the suite's bound.
func (e *env) wait(r *run) error {
	e.t.Helper()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(e.s.wait):
		e.t.Fatalf("engine %s: Run did not return within %v", r.id, e.s.wait)
		return nil
	}
}

// stop makes the run leave and returns Run's error.
func (e *env) stop(r *run) error {
	e.t.Helper()
	r.leave()
	return e.wait(r)
}

// waitFor waits until cond holds, re-checking it whenever a handler call
// ends and every few milliseconds (the cluster's committed positions have
// no notification). It fails the test after the suite's bound with cond's
// last status, or at once if a handler saw something wrong.
func (e *env) waitFor(what string, cond func() (ok bool, status string)) {
	e.t.Helper()
	deadline := time.NewTimer(e.s.wait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if p := e.j.problemList(); len(p) > 0 {
			e.t.Fatalf("while waiting for %s: %s", what, p[0])
		}
		ok, status := cond()
		if ok {
			return
		}
		select {
		case <-e.j.poke:
		case <-tick.C:
		case <-deadline.C:
			e.t.Fatalf("timed out after %v waiting for %s: %s", e.s.wait, what, status)
		}
	}
}

// committedAtEnd reports whether every partition produced to has its
// committed offset at its end.
func (e *env) committedAtEnd() (bool, string) {
	for _, p := range e.partitions() {
		pos, ok := e.c.Committed(e.t, e.group, e.topic, p)
		if !ok || pos.Offset != e.end[p] {
			return false, fmt.Sprintf("partition %d: committed %v (present %v), end %d", p, pos.Offset, ok, e.end[p])
		}
	}
	return true, ""
}

// waitAllDone waits until every produced record was handled at least once
// and every partition is committed to its end.
func (e *env) waitAllDone() {
	e.t.Helper()
	e.waitFor("every record handled and every partition committed to its end", func() (bool, string) {
		if missing := e.j.missing(); missing != "" {
			return false, missing
		}
		return e.committedAtEnd()
	})
}

// requireCommittedAtEnd checks, after the engines stopped, that every
// partition's committed offset is its end: the final commits were stored.
func (e *env) requireCommittedAtEnd() {
	e.t.Helper()
	ok, status := e.committedAtEnd()
	require.True(e.t, ok, "final committed offsets: %s", status)
}

// requireClean checks what every engine test checks at its end: no
// handler problem, per-key order (globally or per member), no two records
// of a key at once (crashed members exempt), commits that never go back,
// and committed offsets at the partitions' ends.
// Records in exempt are left out of the order check.
func (e *env) requireClean(globalOrder bool, exempt map[at]bool, crashed ...string) {
	e.t.Helper()
	require.Empty(e.t, e.j.problemList(), "handler saw wrong records")
	e.j.requireOrder(e.t, globalOrder, exempt)
	e.j.requireNoOverlap(e.t, crashed...)
	e.obs.requireMonotonic(e.t, crashed...)
	e.requireCommittedAtEnd()
}
