package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
)

// readStream reads s until it has returned the records produced at want
// (offsets of c's partition), checking each batch's shape and each record.
func (e *env) readStream(ctx context.Context, c orderly.Claim, s orderly.RecordStream, want []int64) {
	e.t.Helper()
	got, last := 0, int64(-1)
	for got < len(want) {
		b, err := s.Next(ctx)
		require.NoError(e.t, err, "RecordStream.Next after %d of %d records (waiting for offset %d)", got, len(want), want[got])
		require.NotEmpty(e.t, b, "RecordStream.Next returned an empty batch")
		for _, r := range b {
			require.NotNil(e.t, r, "a nil record in a re-read batch")
			require.Greater(e.t, r.Offset, last, "re-read offsets must increase within and across batches")
			last = r.Offset
			require.Less(e.t, got, len(want), "the re-read returned offset %d beyond what was produced", r.Offset)
			e.checkRecord(c, r, want[got])
			got++
		}
	}
}

// testReread checks orderly.Rereader at the Claim level: a stream opened
// at any offset, below or above what Records delivered, returns the
// partition's records from there in order, each once, whether or not the
// claim is paused, and follows the log as it grows; Close ends it (a Next
// blocked in another goroutine returns ErrStreamClosed, and so does every
// later Next); the claim's own delivery is not disturbed; and a revoke
// ends a stream still open.
func testReread(e *env) {
	e.createTopic(1)
	offsets := e.produce(0, keyed("r", 3, 30)...)
	streams := make(chan orderly.RecordStream, 1)
	ended := make(chan error, 1)
	cr := e.consumeClaims(e.c.NewMember(e.t, e.group, e.topic), func(orderly.Claim) {
		// The claim is revoked and serve has not returned: a stream still
		// open must end, after at most the records it had fetched.
		var s orderly.RecordStream
		select {
		case s = <-streams:
		case <-time.After(e.s.wait): // the test failed before it got here
			ended <- errors.New("no stream to check")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.s.wait)
		defer cancel()
		var err error
		for err == nil {
			_, err = s.Next(ctx)
		}
		ended <- err
	})
	c := e.nextClaim(cr)
	rr, ok := c.(orderly.Rereader)
	require.True(e.t, ok, "Features.Reread is set but the adapter's claim (%T) is not an orderly.Rereader", c)
	for _, o := range offsets[:10] {
		e.receive(c, o)
	}
	c.Pause() // a re-read is not paused with its claim

	ctx, cancel := context.WithTimeout(context.Background(), e.s.wait)
	defer cancel()
	s, err := rr.ReadFrom(ctx, offsets[3])
	require.NoError(e.t, err, "ReadFrom an offset the claim delivered")
	e.readStream(ctx, c, s, offsets[3:])
	more := e.produce(0, keyed("more", 2, 5)...)
	e.readStream(ctx, c, s, more)

	blocked := make(chan error, 1)
	// Owned by the test, which waits for it below.
	go func() {
		_, err := s.Next(ctx)
		blocked <- err
	}()
	require.NoError(e.t, s.Close())
	select {
	case err := <-blocked:
		require.ErrorIs(e.t, err, orderly.ErrStreamClosed, "a Next blocked when the stream was closed")
	case <-time.After(e.s.wait):
		e.t.Fatalf("a Next blocked at the end of the partition did not return within %v of Close", e.s.wait)
	}
	_, err = s.Next(ctx)
	require.ErrorIs(e.t, err, orderly.ErrStreamClosed, "Next after Close")
	require.NoError(e.t, s.Close(), "Close is idempotent")

	s2, err := rr.ReadFrom(ctx, offsets[25])
	require.NoError(e.t, err, "ReadFrom an offset the claim has not delivered yet")
	e.readStream(ctx, c, s2, append(slices.Clone(offsets[25:]), more...))

	c.Resume()
	for _, o := range append(slices.Clone(offsets[10:]), more...) {
		e.receive(c, o)
	}
	streams <- s2
	require.NoError(e.t, e.stopClaims(cr))
	select {
	case err := <-ended:
		require.ErrorIs(e.t, err, orderly.ErrStreamClosed, "Next on a stream of a revoked claim")
	default:
		e.t.Fatal("Consume returned before its serve call had returned")
	}
}

// testHotKeySpills runs the engine with a small key buffer over a
// partition where one key, stuck, carries half the records: every other
// key's record is handled while it is stuck, the key spills (the partition
// is not paused for it) and, once released, every record is handled
// exactly once, each key in offset order, and the partition is committed
// to its end.
func testHotKeySpills(e *env) {
	e.createTopic(1)
	n := min(e.s.records/2, 100)
	var msgs []Message
	for i := range n {
		msgs = append(msgs,
			Message{Key: []byte("hot"), Value: fmt.Appendf(nil, "hot %d", i)},
			Message{Key: fmt.Appendf(nil, "cold%d", i), Value: fmt.Appendf(nil, "cold %d", i)})
	}
	offsets := e.produce(0, msgs...)
	var cold []at
	for i := 1; i < len(offsets); i += 2 {
		cold = append(cold, at{0, offsets[i]})
	}
	stuck := make(chan struct{})
	r := e.start("A", func(ctx context.Context, leaving <-chan struct{}, rec *orderly.Record) error {
		if string(rec.Key) != "hot" {
			return nil
		}
		select {
		case <-stuck:
			return nil
		case <-leaving:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, orderly.WithKeyBuffer(4, 0))
	e.waitFor("every other key's record handled while the hot key is stuck", func() (bool, string) {
		done := e.j.doneByMember("A")
		for _, rec := range cold {
			if done[rec] == 0 {
				return false, fmt.Sprintf("offset %d not handled; stats %+v", rec.o, r.eng.Stats())
			}
		}
		return true, ""
	})
	s := r.eng.Stats()
	require.Len(e.t, s.Partitions, 1)
	ps := s.Partitions[0]
	require.Equal(e.t, orderly.KeyOverflowSpill, ps.KeyOverflow, "a Rereader claim spills keys over their buffer")
	require.Equal(e.t, 1, ps.SpilledKeys, "the stuck key spilled: %+v", ps)
	require.NotContains(e.t, ps.Reasons, orderly.PauseKey, "a spilled key pauses nothing: %+v", ps)

	close(stuck)
	e.waitAllDone()
	require.NoError(e.t, e.stop(r))
	require.Positive(e.t, r.eng.Stats().RecordsReread, "the spilled key's records were read again")
	e.j.requireExactlyOnce(e.t, e.obs.history, nil)
	e.requireClean(true, nil)
}
