package adaptertest

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
)

// The tests in this file drive a Member directly, without an engine: their
// serve function hands each Claim to the test goroutine, which reads it
// and calls its methods, and then waits for the revoke.

// claimRun is a Member consuming with a serve function that hands every
// claim to the test.
type claimRun struct {
	claims chan orderly.Claim
	cancel context.CancelFunc
	exited chan struct{} // closed when Consume returned; err is then set
	err    error
}

// consumeClaims calls m.Consume on a goroutine of its own. Its serve
// function sends the claim on claims, waits for the claim to be revoked,
// runs afterRevoke (if not nil) and returns.
func (e *env) consumeClaims(m Member, afterRevoke func(orderly.Claim)) *claimRun {
	ctx, cancel := context.WithCancel(context.Background())
	cr := &claimRun{claims: make(chan orderly.Claim, 64), cancel: cancel, exited: make(chan struct{})}
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-cr.exited:
		case <-time.After(e.s.wait):
			e.t.Errorf("Consume did not return within %v of its context's cancellation", e.s.wait)
		}
	})
	// Owned by the claimRun; the cleanup above and stop wait for it.
	go func() {
		defer close(cr.exited)
		cr.err = m.Consume(ctx, func(c orderly.Claim) {
			cr.claims <- c
			<-c.Revoked()
			if afterRevoke != nil {
				afterRevoke(c)
			}
		})
	}()
	return cr
}

// stop cancels Consume's context and returns what Consume returned.
func (e *env) stopClaims(cr *claimRun) error {
	e.t.Helper()
	cr.cancel()
	select {
	case <-cr.exited:
		return cr.err
	case <-time.After(e.s.wait):
		e.t.Fatalf("Consume did not return within %v of its context's cancellation", e.s.wait)
		return nil
	}
}

// nextClaim waits for the next claim granted.
func (e *env) nextClaim(cr *claimRun) orderly.Claim {
	e.t.Helper()
	select {
	case c := <-cr.claims:
		require.Equal(e.t, e.topic, c.Topic(), "claim of the wrong topic")
		return c
	case <-time.After(e.s.wait):
		e.t.Fatalf("no claim granted within %v", e.s.wait)
		return nil
	}
}

// receive reads the next record of c and checks that it is the one
// produced at offset want of c's partition.
func (e *env) receive(c orderly.Claim, want int64) *orderly.Record {
	e.t.Helper()
	r, ok, timedOut := e.next(c, time.After(e.s.wait))
	switch {
	case timedOut:
		e.t.Fatalf("partition %d: offset %d not delivered within %v", c.Partition(), want, e.s.wait)
	case !ok:
		e.t.Fatalf("partition %d: Records closed while waiting for offset %d", c.Partition(), want)
	}
	e.checkRecord(c, r, want)
	return r
}

// next returns c's next record: the rest of the last batch first, then the
// next batch from Records, whose shape it checks (not empty, offsets
// increasing within it and from the batch before). ok is false when
// Records is closed; timedOut is true when timeout fired first.
func (e *env) next(c orderly.Claim, timeout <-chan time.Time) (r *orderly.Record, ok, timedOut bool) {
	e.t.Helper()
	if rest := e.unread[c]; len(rest) > 0 {
		e.unread[c] = rest[1:]
		return rest[0], true, false
	}
	select {
	case b, ok := <-c.Records():
		if !ok {
			return nil, false, false
		}
		require.NotEmpty(e.t, b, "partition %d: an empty batch on Records", c.Partition())
		last, seen := e.last[c]
		for i, r := range b {
			require.NotNil(e.t, r, "partition %d: a nil record in a batch", c.Partition())
			if seen || i > 0 {
				require.Greater(e.t, r.Offset, last, "partition %d: offsets must increase within and across batches", c.Partition())
			}
			last = r.Offset
		}
		e.last[c] = last
		e.unread[c] = b[1:]
		return b[0], true, false
	case <-timeout:
		return nil, false, true
	}
}

// checkRecord checks that r is what was produced at offset want.
func (e *env) checkRecord(c orderly.Claim, r *orderly.Record, want int64) {
	e.t.Helper()
	require.NotNil(e.t, r, "partition %d: nil record", c.Partition())
	require.Equal(e.t, e.topic, r.Topic, "record's Topic")
	require.Equal(e.t, c.Partition(), r.Partition, "record's Partition")
	require.Equal(e.t, want, r.Offset, "partition %d: records must arrive in offset order, each once, from Start", c.Partition())
	e.j.mu.Lock()
	m := e.j.expected[at{r.Partition, r.Offset}]
	e.j.mu.Unlock()
	require.True(e.t, bytes.Equal(m.Key, r.Key) && bytes.Equal(m.Value, r.Value),
		"partition %d offset %d: got key %q value %q, produced key %q value %q", r.Partition, r.Offset, r.Key, r.Value, m.Key, m.Value)
}

// testCommitIsNextStart checks the Claim contract the engine's commits rest
// on: a fresh group's claim starts at NoOffset and delivers the partition
// from its first record, in order; Commit is synchronous (Committed sees it
// when it returns) and is accepted after Revoked is closed, until serve
// returns (the engine's final commit); the next claim's Start is exactly
// the last commit, metadata included, and delivery resumes there. Records
// is closed after a revoke.
func testCommitIsNextStart(e *env) {
	e.createTopic(1)
	offsets := e.produce(0, keyed("k", 3, 10)...)
	final := orderly.Position{Offset: offsets[5], Metadata: "adaptertest: final commit after revoke"}

	afterRevoke := make(chan error, 1)
	first := e.consumeClaims(e.c.NewMember(e.t, e.group, e.topic), func(c orderly.Claim) {
		err := c.Commit(context.Background(), final.Offset, final.Metadata)
		if err == nil {
			// Records must be closed after the revoke (what is left in
			// it may still be read).
			deadline := time.After(e.s.wait)
		drain:
			for {
				select {
				case _, ok := <-c.Records():
					if !ok {
						break drain
					}
				case <-deadline:
					err = fmt.Errorf("Records not closed within %v of the revoke", e.s.wait)
					break drain
				}
			}
		}
		afterRevoke <- err
	})
	c := e.nextClaim(first)
	require.Equal(e.t, int32(0), c.Partition())
	require.Equal(e.t, orderly.NoOffset, c.Start().Offset, "a group with no committed position starts at NoOffset")
	for _, o := range offsets[:5] {
		e.receive(c, o)
	}
	mid := orderly.Position{Offset: offsets[3], Metadata: "adaptertest: mid-claim commit"}
	require.NoError(e.t, c.Commit(context.Background(), mid.Offset, mid.Metadata))
	pos, ok := e.c.Committed(e.t, e.group, e.topic, 0)
	require.True(e.t, ok, "Commit returned but nothing is committed: Commit must be synchronous")
	require.Equal(e.t, mid, pos, "Commit must store the offset and metadata given")

	require.NoError(e.t, e.stopClaims(first), "Consume after its context was cancelled")
	select {
	case err := <-afterRevoke:
		require.NoError(e.t, err, "a commit after Revoked was closed, before serve returned, must be accepted")
	default:
		e.t.Fatal("Consume returned before its serve call had returned")
	}
	pos, ok = e.c.Committed(e.t, e.group, e.topic, 0)
	require.True(e.t, ok)
	require.Equal(e.t, final, pos, "the commit made after the revoke must be stored")

	second := e.consumeClaims(e.c.NewMember(e.t, e.group, e.topic), nil)
	c = e.nextClaim(second)
	require.Equal(e.t, final, c.Start(), "a claim's Start is the group's committed position, metadata included")
	for _, o := range offsets[5:] {
		e.receive(c, o)
	}
	require.NoError(e.t, e.stopClaims(second))
}

// testPauseResume checks Pause and Resume at the Claim level, on two
// partitions: after partition 0 is paused at most Features.PauseSlack
// more of its records arrive and then none (while partition 1 keeps
// delivering everything); after Resume the rest of partition 0 arrives,
// in order. Both are called twice (they are idempotent).
//
// "None arrive" can only be observed as a quiet period: the suite waits
// for a gap of 50 ms (1 s when Features.Slow) with no record. It cannot be
// avoided, as no event marks the absence of a delivery; a Member that
// implements PauseReporter is also asked whether the partition is paused,
// which checks the adapter's own state at once. The pause must be
// observable: if every record arrives anyway the test fails, as it would
// otherwise prove nothing.
func testPauseResume(e *env) {
	const before, other = 8, 20
	slack := e.s.features.PauseSlack
	total := before + slack + 50
	if slack <= 0 {
		total = max(e.s.records, before+50)
	}
	e.createTopic(2)
	offsets := e.produce(0, keyed("p", 5, total)...)
	otherOffsets := e.produce(1, keyed("o", 5, other)...)

	m := e.c.NewMember(e.t, e.group, e.topic)
	cr := e.consumeClaims(m, nil)
	claims := make(map[int32]orderly.Claim)
	for len(claims) < 2 {
		c := e.nextClaim(cr)
		claims[c.Partition()] = c
	}
	paused, other1 := claims[0], claims[1]
	for _, o := range offsets[:before] {
		e.receive(paused, o)
	}
	paused.Pause()
	paused.Pause()
	if pr, ok := m.(PauseReporter); ok {
		require.True(e.t, pr.Paused(e.topic, 0), "the adapter does not report partition 0 as paused after Pause")
		require.False(e.t, pr.Paused(e.topic, 1), "pausing partition 0 paused partition 1")
	}
	for _, o := range otherOffsets {
		e.receive(other1, o) // a paused partition does not hold the others back
	}

	// The rest of a batch received before Pause was delivered before it.
	delivered := before + len(e.unread[paused])
	next := before
	deadline := time.After(e.s.wait)
	for quiet := false; !quiet; {
		select {
		case <-deadline:
			e.t.Fatalf("records of the paused partition kept arriving for %v (%d after Pause)", e.s.wait, next-delivered)
		default:
		}
		r, ok, timedOut := e.next(paused, time.After(e.s.quiet))
		switch {
		case timedOut:
			quiet = true
		case !ok:
			e.t.Fatalf("Records closed while paused")
		default:
			require.Less(e.t, next, total, "more records than produced")
			e.checkRecord(paused, r, offsets[next])
			next++
		}
	}
	if slack > 0 {
		require.LessOrEqual(e.t, next-delivered, slack, "records arrived after Pause beyond Features.PauseSlack")
	}
	require.Less(e.t, next, total,
		"all %d records arrived although partition 0 was paused after %d: Pause had no effect (or raise RecordsPerTest above the adapter's read-ahead)", total, before)

	paused.Resume()
	paused.Resume()
	if pr, ok := m.(PauseReporter); ok {
		require.False(e.t, pr.Paused(e.topic, 0), "the adapter reports partition 0 as paused after Resume")
	}
	for _, o := range offsets[next:] {
		e.receive(paused, o)
	}
	require.NoError(e.t, e.stopClaims(cr))
}
