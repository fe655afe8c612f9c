package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

// parkingRig runs an engine with key parking over one partition: the
// handler fails permanently on the records whose value is "poison" and
// notes what it handled; the sink notes what it got.
type parkingRig struct {
	log *memory.Log
	eng *orderly.Engine

	mu      sync.Mutex
	handled map[string][]int64 // key -> offsets handled (successfully or not), in order
	dead    map[string][]int64 // key -> offsets dead-lettered, in order
	letters map[int64]orderly.DeadLetter
	deadAt  map[int64]time.Time // when the sink was called for an offset
}

func newParkingRig(t *testing.T, parkFor time.Duration) *parkingRig {
	r := &parkingRig{log: memory.NewLog(), handled: map[string][]int64{}, dead: map[string][]int64{},
		letters: map[int64]orderly.DeadLetter{}, deadAt: map[int64]time.Time{}}
	require.NoError(t, r.log.CreateTopic("t", 1))
	h := orderly.HandlerFunc(func(ctx context.Context, rec *orderly.Record) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.handled[string(rec.Key)] = append(r.handled[string(rec.Key)], rec.Offset)
		if string(rec.Value) == "poison" {
			return orderly.Permanent(errors.New("poison"))
		}
		return nil
	})
	sink := orderly.DeadLetterFunc(func(ctx context.Context, rec *orderly.Record, dl orderly.DeadLetter) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.deadAt[rec.Offset] = time.Now()
		r.dead[string(rec.Key)] = append(r.dead[string(rec.Key)], rec.Offset)
		r.letters[rec.Offset] = dl
		return nil
	})
	var err error
	r.eng, err = orderly.New(r.log.Member("g", []string{"t"}), h,
		orderly.WithDeadLetter(sink), orderly.WithKeyParking(parkFor),
		orderly.WithCommitInterval(5*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	return r
}

// produce appends records of key with the given values and returns their
// offsets.
func (r *parkingRig) produce(t *testing.T, key string, values ...string) []int64 {
	t.Helper()
	var offs []int64
	for _, v := range values {
		off, err := r.log.ProduceTo("t", 0, []byte(key), []byte(v))
		require.NoError(t, err)
		offs = append(offs, off)
	}
	return offs
}

func (r *parkingRig) snapshot() (handled, dead map[string][]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	handled, dead = map[string][]int64{}, map[string][]int64{}
	for k, v := range r.handled {
		handled[k] = append([]int64(nil), v...)
	}
	for k, v := range r.dead {
		dead[k] = append([]int64(nil), v...)
	}
	return handled, dead
}

// Once a record of k is dead-lettered, k's later records go to the sink in
// order without being handled, while other keys are handled as usual;
// Engine.ReleaseKey lets k's next records be handled again.
func TestKeyParkingSendsLaterRecordsToTheSinkUntilReleased(t *testing.T) {
	r := newParkingRig(t, 0)
	var kOffs, oOffs []int64
	kOffs = append(kOffs, r.produce(t, "k", "ok")...)
	oOffs = append(oOffs, r.produce(t, "o", "ok")...)
	kOffs = append(kOffs, r.produce(t, "k", "poison")...)
	for range 4 {
		oOffs = append(oOffs, r.produce(t, "o", "ok")...)
		kOffs = append(kOffs, r.produce(t, "k", "ok")...)
	}
	stop := running(t, r.eng)
	waitCommittedToEnd(t, r.log, 1)

	handled, dead := r.snapshot()
	require.Equal(t, kOffs[:2], handled["k"], "k is handled up to its failed record, never after")
	require.Equal(t, kOffs[1:], dead["k"], "the failed record and k's later ones reach the sink, in order")
	require.Equal(t, oOffs, handled["o"], "other keys are not affected")
	require.Empty(t, dead["o"])
	r.mu.Lock()
	first := r.letters[kOffs[1]]
	require.EqualError(t, first.Err, "poison")
	require.Equal(t, 1, first.Attempts)
	require.False(t, first.FirstFailure.IsZero())
	require.Equal(t, "g", first.Group)
	for _, off := range kOffs[2:] {
		dl := r.letters[off]
		require.ErrorIs(t, dl.Err, orderly.ErrKeyParked, "offset %d", off)
		require.Zero(t, dl.Attempts, "offset %d was never handled", off)
		require.True(t, dl.FirstFailure.IsZero())
	}
	r.mu.Unlock()
	require.Equal(t, 1, partitionStats(t, r.eng, 0).Parked)

	require.False(t, r.eng.ReleaseKey("t", 0, "o"), "o is not parked")
	require.False(t, r.eng.ReleaseKey("t", 1, "k"), "no such partition")
	require.True(t, r.eng.ReleaseKey("t", 0, "k"))
	require.False(t, r.eng.ReleaseKey("t", 0, "k"), "released already")
	require.Zero(t, partitionStats(t, r.eng, 0).Parked)

	later := r.produce(t, "k", "ok", "ok")
	waitCommittedToEnd(t, r.log, 1)
	require.NoError(t, stop())
	handled, dead = r.snapshot()
	require.Equal(t, append(kOffs[:2:2], later...), handled["k"], "after ReleaseKey, k's records are handled again")
	require.Equal(t, kOffs[1:], dead["k"], "and none goes to the sink")
}

// WithKeyParking(d) releases a parked key by itself after d.
func TestKeyParkingReleasesAfterItsDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const parkFor = 500 * time.Millisecond
		r := newParkingRig(t, parkFor)
		offs := r.produce(t, "k", "poison", "ok")
		stop := running(t, r.eng)
		waitCommittedToEnd(t, r.log, 1)
		handled, dead := r.snapshot()
		require.Equal(t, offs[:1], handled["k"])
		require.Equal(t, offs, dead["k"], "the record right after the failed one is parked")

		// The key was parked before the sink was called for the failed record,
		// so it is released by deadAt + parkFor.
		r.mu.Lock()
		releasedBy := r.deadAt[offs[0]].Add(parkFor)
		r.mu.Unlock()
		require.Equal(t, 1, partitionStats(t, r.eng, 0).Parked)
		time.Sleep(time.Until(releasedBy) + time.Millisecond)
		require.Zero(t, partitionStats(t, r.eng, 0).Parked, "an expired parking is not counted")
		later := r.produce(t, "k", "ok", "ok")
		waitCommittedToEnd(t, r.log, 1)
		require.NoError(t, stop())
		handled, dead = r.snapshot()
		require.Equal(t, append(offs[:1:1], later...), handled["k"], "handled again after %v", parkFor)
		require.Equal(t, offs, dead["k"])
	})
}

// Parking needs a sink to park into.
func TestKeyParkingWithoutDeadLetterSinkIsInvalid(t *testing.T) {
	log := memory.NewLog()
	_, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }),
		orderly.WithKeyParking(0))
	require.ErrorIs(t, err, orderly.ErrInvalidOption)
	_, err = orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }),
		orderly.WithKeyParking(-time.Second), orderly.WithDeadLetter(orderly.DeadLetterFunc(func(context.Context, *orderly.Record, orderly.DeadLetter) error { return nil })))
	require.ErrorIs(t, err, orderly.ErrInvalidOption, fmt.Sprint(err))
}
