package adaptertest

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/committer"
)

// jitter is handler work that takes a few hundred microseconds, varying
// with the record, so that keys interleave.
func jitter(_ context.Context, _ <-chan struct{}, r *orderly.Record) error {
	time.Sleep(time.Duration(r.Offset*7919%250) * time.Microsecond)
	return nil
}

// produceKeyed spreads n records over keys keys and partitions partitions,
// each key always on the same partition (as a key-hashing producer does).
func (e *env) produceKeyed(prefix string, partitions, keys, n int) {
	e.t.Helper()
	batches := make([][]Message, partitions)
	for _, m := range keyed(prefix, keys, n) {
		p := keyIndex(prefix, m) % partitions
		batches[p] = append(batches[p], m)
	}
	for p, b := range batches {
		e.produce(int32(p), b...)
	}
}

// testPerKeyOrder: one member, several partitions, many keys, concurrency
// above one. Every record is handled exactly once; a key's records in
// offset order, never two at once; commits never go back and reach every
// partition's end.
func testPerKeyOrder(e *env) {
	const partitions, keys = 4, 24
	e.createTopic(partitions)
	e.produceKeyed("key-", partitions, keys, e.s.records)

	r := e.start("A", jitter)
	e.waitAllDone()
	require.NoError(e.t, e.stop(r))

	e.j.requireExactlyOnce(e.t, e.obs.history, nil)
	e.requireClean(true, nil)
	e.j.mu.Lock()
	maxFlight := e.j.maxFlight
	e.j.mu.Unlock()
	require.Greater(e.t, maxFlight, 1, "no two handler calls ever ran at once: the test did not exercise concurrency")
}

// testResumeFromCommitted: a member handles everything and leaves; more is
// produced; a new member of the group handles only the new records. The
// leaving member's final commit is at each partition's end.
func testResumeFromCommitted(e *env) {
	const partitions, keys = 2, 8
	e.createTopic(partitions)
	half := max(e.s.records/2, partitions)
	e.produceKeyed("old-", partitions, keys, half)
	first := e.start("first", nil)
	e.waitAllDone()
	require.NoError(e.t, e.stop(first))
	e.requireCommittedAtEnd()
	firstEnd := make(map[int32]int64)
	for p, end := range e.end {
		firstEnd[p] = end
	}

	e.produceKeyed("new-", partitions, keys, half)
	second := e.start("second", nil)
	e.waitAllDone()
	require.NoError(e.t, e.stop(second))

	for rec, n := range e.j.doneByMember("second") {
		require.GreaterOrEqual(e.t, rec.o, firstEnd[rec.p],
			"partition %d offset %d was committed before the restart but handled again after it", rec.p, rec.o)
		require.Equal(e.t, 1, n, "partition %d offset %d handled %d times", rec.p, rec.o, n)
	}
	for rec, n := range e.j.doneByMember("first") {
		require.Less(e.t, rec.o, firstEnd[rec.p], "the first member handled a record produced after it left")
		require.Equal(e.t, 1, n)
	}
	e.j.requireExactlyOnce(e.t, e.obs.history, nil)
	e.requireClean(true, nil)
}

// testRestartSkipsDone: the first record of a partition blocks past the
// drain timeout while the others complete. The final commit holds the
// watermark at the blocked record and lists the others in its metadata;
// after a restart only the blocked record is handled again. The adapter
// must store commit metadata verbatim and hand it back in Start.
func testRestartSkipsDone(e *env) {
	e.createTopic(1)
	msgs := append([]Message{{Key: []byte("slow"), Value: []byte("slow")}}, keyed("k", 4, 20)...)
	offsets := e.produce(0, msgs...)
	slow := offsets[0]

	started := make(chan struct{})
	first := e.start("first", func(ctx context.Context, _ <-chan struct{}, r *orderly.Record) error {
		if string(r.Key) == "slow" {
			close(started)
			<-ctx.Done() // outlives the drain timeout
			return ctx.Err()
		}
		return nil
	}, orderly.WithDrainTimeout(e.s.drain))
	e.waitFor("the slow record to start and the others to complete", func() (bool, string) {
		select {
		case <-started:
		default:
			return false, "the slow record has not started"
		}
		n := len(e.j.doneByMember("first"))
		return n == len(offsets)-1, fmt.Sprintf("%d of %d completed", n, len(offsets)-1)
	})
	require.NoError(e.t, e.stop(first))

	pos, ok := e.c.Committed(e.t, e.group, e.topic, 0)
	require.True(e.t, ok, "the shutdown commit was not stored")
	require.Equal(e.t, slow, pos.Offset, "the unfinished record must hold the committed offset back")
	ranges, err := committer.DecodeMetadata(pos.Offset, pos.Metadata)
	require.NoError(e.t, err, "the commit metadata did not come back as the engine wrote it")
	require.Equal(e.t, []committer.Range{{First: offsets[1], Last: offsets[len(offsets)-1]}}, ranges,
		"the commit metadata must list every offset completed above the watermark")

	second := e.start("second", nil)
	e.waitAllDone()
	require.NoError(e.t, e.stop(second))
	require.Equal(e.t, map[at]int{{0, slow}: 1}, e.j.doneByMember("second"),
		"after the restart only the unfinished record may be handled again")
}

// testRebalance: three members join and leave one after another while
// records flow (a gate lets a fifth of them through per step, so every
// change happens mid-stream). Nothing is lost or handled twice, a key's
// records stay in order and never run at once across members (the old
// owner finishes and commits before the new owner starts), commits never
// go back and end at each partition's end.
//
// Handlers waiting at the gate when their partition is revoked are cut
// short by a short revoke timeout (their records are not completed, and
// the next owner handles them): with the suite's long one, every
// rebalance would last a quarter of the suite's bound, longer than a Kafka
// client's rebalance timeout, and the test would measure how the client
// copes with members that overrun it.
func testRebalance(e *env) {
	const partitions, keys = 6, 30
	n := max(e.s.records, 100)
	step := n / 5
	e.createTopic(partitions)
	e.produceKeyed("key-", partitions, keys, n)
	g := e.newGate(n)
	work := func(ctx context.Context, leaving <-chan struct{}, r *orderly.Record) error {
		if err := g.pass(ctx, leaving); err != nil {
			return err
		}
		return jitter(ctx, leaving, r)
	}
	reach := func(k int) {
		e.t.Helper()
		e.waitFor(fmt.Sprintf("%d records handled", k), func() (bool, string) {
			c := e.j.completions()
			return c >= k, fmt.Sprintf("%d handled", c)
		})
	}

	revoke := orderly.WithRevokeTimeout(e.s.drain)
	a := e.start("A", work, revoke)
	g.release(step)
	reach(step)
	granted := func(m string) {
		e.t.Helper()
		e.waitFor("member "+m+" to be granted a partition", func() (bool, string) {
			return e.obs.claimsOf(m) > 0, fmt.Sprintf("holders %v", e.obs.holders())
		})
	}
	b := e.start("B", work, revoke) // joins while A's handlers wait at the gate
	g.release(step)
	reach(2 * step)
	granted("B") // a revoke may wait for handlers held at the gate: wait for it
	c := e.start("C", work, revoke)
	g.release(step)
	reach(3 * step)
	granted("C")
	a.leave()
	g.release(step)
	require.NoError(e.t, e.wait(a))
	reach(4 * step)
	b.leave()
	g.openAll()
	require.NoError(e.t, e.wait(b))
	e.waitAllDone()
	require.NoError(e.t, e.stop(c))

	for _, m := range []string{"B", "C"} {
		require.Positive(e.t, e.obs.claimsOf(m), "member %s was never granted a partition", m)
	}
	e.j.requireExactlyOnce(e.t, e.obs.history, nil)
	e.requireClean(true, nil)
}

// testCrash: members A and B share the partitions; in every partition one
// record blocks A's handler for good, so A's commits hold the watermark at
// it and list what A completed above it. Then more is produced and A
// crashes mid-stream. B takes A's partitions and:
//   - every record is handled at least once, B never handles one twice;
//   - a record both A and B handled lies at or above the crashed group's
//     last committed offset for its partition and outside the completed
//     ranges of that commit's metadata (those are never re-delivered);
//   - B handles the blocked records A never finished;
//   - per-key order within each member, no overlap between live members,
//     commits never go back and end at each partition's end.
func testCrash(e *env) {
	const partitions = 3
	per := max(e.s.records/partitions, 24)
	stuckAt, half := per/4, per/2
	e.createTopic(partitions)
	msgs := keyed("k", 5, per)
	msgs[stuckAt] = Message{Key: []byte("stuck"), Value: []byte("stuck")}

	a := e.start("A", func(ctx context.Context, _ <-chan struct{}, r *orderly.Record) error {
		if string(r.Key) == "stuck" {
			<-ctx.Done() // A never finishes it
			return ctx.Err()
		}
		return nil
	}, orderly.WithRevokeTimeout(e.s.drain), orderly.WithDrainTimeout(e.s.drain))
	e.waitFor("A to hold every partition", func() (bool, string) {
		h := e.obs.holders()
		return len(h) == partitions, fmt.Sprintf("holders %v", h)
	})
	b := e.start("B", nil)
	var heldByA []int32
	e.waitFor("A and B to share the partitions", func() (bool, string) {
		h := e.obs.holders()
		heldByA = heldByA[:0]
		byB := 0
		for p := range int32(partitions) {
			if len(h[p]) != 1 {
				return false, fmt.Sprintf("holders %v", h)
			}
			switch h[p][0] {
			case "A":
				heldByA = append(heldByA, p)
			case "B":
				byB++
			}
		}
		return len(heldByA) > 0 && byB > 0, fmt.Sprintf("holders %v", h)
	})

	stuck := make(map[int32]int64)
	for p := range int32(partitions) {
		offsets := e.produce(p, msgs[:half]...)
		stuck[p] = offsets[stuckAt]
	}
	// Wait until A's commits show the situation the test is about: the
	// watermark held at the stuck record, the rest completed above it.
	e.waitFor("A to commit its partitions with completed offsets above the stuck record", func() (bool, string) {
		for _, p := range heldByA {
			pos, ok := e.obs.lastCommit(p, func(ev commitEvent) bool { return ev.claim.member == "A" })
			if !ok || pos.Offset != stuck[p] {
				return false, fmt.Sprintf("partition %d: A's last commit %v (present %v), stuck record at %d", p, pos, ok, stuck[p])
			}
			ranges, err := committer.DecodeMetadata(pos.Offset, pos.Metadata)
			if err != nil {
				return false, fmt.Sprintf("partition %d: metadata %q: %v", p, pos.Metadata, err)
			}
			covered := int64(0)
			for _, r := range ranges {
				covered += r.Len()
			}
			if covered != int64(half-stuckAt-1) {
				return false, fmt.Sprintf("partition %d: metadata covers %d offsets, want %d", p, covered, half-stuckAt-1)
			}
		}
		return true, ""
	})

	for p := range int32(partitions) {
		e.produce(p, msgs[half:]...)
	}
	a.member.Crash()
	mark := e.obs.mark()
	// The crashed process is gone: end its Run (an adapter over a real
	// client keeps retrying an unreachable cluster until told to stop) and
	// ignore what it returns. Nothing it does from here on may be stored.
	a.cancel()
	_ = e.wait(a)
	e.waitAllDone()
	require.NoError(e.t, e.stop(b))

	for p := range int32(partitions) {
		// The group's position when A crashed: A's successful commits
		// (fencing stores none after the crash) and B's noted before it.
		last, ok := e.obs.lastCommit(p, func(ev commitEvent) bool { return ev.claim.member == "A" || ev.seq <= mark })
		var skipped []committer.Range
		if ok {
			skipped, _ = committer.DecodeMetadata(last.Offset, last.Metadata)
		}
		for o := range e.end[p] {
			by := e.j.doneBy(p, o)
			require.NotEmpty(e.t, by, "partition %d offset %d never handled", p, o)
			require.LessOrEqual(e.t, countOf(by, "B"), 1, "partition %d offset %d: handled by B %d times", p, o, countOf(by, "B"))
			require.LessOrEqual(e.t, countOf(by, "A"), 1, "partition %d offset %d: handled by A %d times", p, o, countOf(by, "A"))
			if len(by) < 2 {
				continue
			}
			require.True(e.t, ok && o >= last.Offset,
				"partition %d offset %d handled by A and again by B, but the group had committed %d when A crashed", p, o, last.Offset)
			for _, r := range skipped {
				require.False(e.t, r.First <= o && o <= r.Last,
					"partition %d offset %d handled again although the commit at the crash (offset %d) lists it as done", p, o, last.Offset)
			}
		}
	}
	for _, p := range heldByA {
		require.Equal(e.t, []string{"B"}, e.j.doneBy(p, stuck[p]), "partition %d: the record A never finished must be handled by B", p)
	}
	e.requireClean(false, nil, "A")
}

func countOf(members []string, m string) int {
	n := 0
	for _, x := range members {
		if x == m {
			n++
		}
	}
	return n
}

// testForeignMetadata: committed positions planted with metadata orderly
// did not write, with corrupt orderly metadata and with orderly metadata
// written for another offset. The engine starts at each planted offset,
// skips nothing, handles everything from there once and commits to the
// end.
func testForeignMetadata(e *env) {
	const per, plantAt = 10, 3
	stale, _ := committer.EncodeMetadata(1, []committer.Range{{First: 4, Last: 6}}, 0)
	metas := []string{"not ours: written by another client", "ol1:garbage", stale}
	e.createTopic(len(metas))
	planted := make(map[int32]int64)
	for p, meta := range metas {
		offsets := e.produce(int32(p), keyed("k", 3, per)...)
		planted[int32(p)] = offsets[plantAt]
		e.c.SetCommitted(e.t, e.group, e.topic, int32(p), orderly.Position{Offset: offsets[plantAt], Metadata: meta})
	}

	r := e.start("A", nil)
	e.waitFor("every record from the planted offsets handled and committed", func() (bool, string) {
		for p, from := range planted {
			for o := from; o < e.end[p]; o++ {
				if len(e.j.doneBy(p, o)) == 0 {
					return false, fmt.Sprintf("partition %d offset %d (metadata %q) not handled", p, o, metas[p])
				}
			}
		}
		return e.committedAtEnd()
	})
	require.NoError(e.t, e.stop(r), "the engine must not fail on foreign or corrupt metadata")

	for rec, n := range e.j.doneByMember("A") {
		require.GreaterOrEqual(e.t, rec.o, planted[rec.p], "partition %d (metadata %q): offset %d is below the planted committed offset", rec.p, metas[rec.p], rec.o)
		require.Equal(e.t, 1, n, "partition %d offset %d handled %d times", rec.p, rec.o, n)
	}
	e.requireClean(true, nil)
}
