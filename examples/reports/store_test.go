package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTestStore(t *testing.T) *store {
	s, err := openStore(filepath.Join(t.TempDir(), "reports.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.close() })
	return s
}

// Status updates are idempotent: a repeated or late update changes
// nothing, the history holds each state once, and the first terminal state
// stays.
func TestStoreUpdatesAreIdempotent(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	t0 := time.Now().UTC()
	req := request{ID: "r1", User: "u", Plan: planFree, Kind: "usage", AcceptedAt: t0}
	ins, err := s.insert(ctx, req)
	require.NoError(t, err)
	assert.True(t, ins)
	ins, err = s.insert(ctx, req)
	require.NoError(t, err)
	assert.False(t, ins)

	steps := []struct {
		to   state
		want bool
	}{
		{stateQueued, true}, {stateQueued, false}, // redelivered
		{stateGenerating, true}, {stateQueued, false}, // late
		{stateSending, true}, {stateSent, true},
		{stateFailed, false}, {stateSending, false}, {stateSent, false}, // after the end
	}
	for i, st := range steps {
		applied, err := s.advance(ctx, "r1", st.to, t0.Add(time.Duration(i+1)*time.Millisecond), "")
		require.NoError(t, err)
		assert.Equal(t, st.want, applied, "step %d: %s", i, st.to)
	}
	r, err := s.get(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, stateSent, r.State)
	assert.Equal(t, happyPath, historyStates(r))

	require.NoError(t, s.noteAttempt(ctx, "r1", 3))
	require.NoError(t, s.noteAttempt(ctx, "r1", 2))
	r, err = s.get(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, 3, r.Attempts, "the attempt count only grows")

	first, err := s.markDelivered(ctx, "r1", t0)
	require.NoError(t, err)
	assert.True(t, first)
	first, err = s.markDelivered(ctx, "r1", t0)
	require.NoError(t, err)
	assert.False(t, first)

	_, err = s.advance(ctx, "nobody", stateQueued, t0, "")
	assert.ErrorIs(t, err, errNotFound)
	_, err = s.get(ctx, "nobody")
	assert.ErrorIs(t, err, errNotFound)
}

// The reports holding slots are what a restarted orchestrator counts.
func TestStoreHolders(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	at := time.Now()
	for id, to := range map[string]state{"a": stateQueued, "b": stateGenerating, "c": stateSending, "d": stateSent} {
		_, err := s.insert(ctx, request{ID: id, User: "u", Plan: planCron, Kind: "usage", AcceptedAt: at})
		require.NoError(t, err)
		for _, st := range states[1 : to.rank()+1] {
			_, err := s.advance(ctx, id, st, at, "")
			require.NoError(t, err)
		}
	}
	h, err := s.holders(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"b", "c"}, h[planCron])
	un, err := s.unfinished(ctx)
	require.NoError(t, err)
	assert.Len(t, un, 3)
}
