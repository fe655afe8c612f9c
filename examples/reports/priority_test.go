package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With the cron slots full of reports that cannot finish and a cron
// backlog behind them, a paid report is started and sent all the same, and
// no cron report beyond the WIP limit is started meanwhile: paid work never
// waits for cron work, queued or in progress.
func TestPaidIsNotStuckBehindCron(t *testing.T) {
	cfg := testConfig(t, newCluster(t))
	release := make(chan struct{})
	cfg.generateFault = func(ctx context.Context, r request, _ int) error {
		if r.Plan != planCron {
			return nil
		}
		select { // cron generation hangs until the test lets it go
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := startService(t, cfg)
	const backlog = 20
	limit := cfg.wipLimits[planCron]

	var cron []string
	for i := range backlog {
		cron = append(cron, s.submit(map[string]any{"user": fmt.Sprintf("job-%d", i), "plan": "cron", "kind": "usage"}))
	}
	// Wait until the cron slots are taken and the rest is queued behind
	// them.
	require.Eventually(t, func() bool {
		n, err := s.app.store.countByState(context.Background())
		require.NoError(t, err)
		return n[planCron][stateGenerating] == limit && n[planCron][stateQueued] == backlog-limit
	}, waitLong, waitTick, "%d cron reports started, %d queued", limit, backlog-limit)

	paid := s.submit(map[string]any{"user": "customer", "plan": "paid", "kind": "billing"})
	r := s.waitTerminal(paid)
	require.Equal(t, stateSent, r.State)

	counts, err := s.app.store.countByState(context.Background())
	require.NoError(t, err)
	assert.Equal(t, limit, counts[planCron][stateGenerating], "no cron report started beyond the limit")
	assert.Equal(t, backlog-limit, counts[planCron][stateQueued], "no cron report started after the paid one was accepted")

	close(release)
	var reps []report
	for _, id := range cron {
		rep := s.waitTerminal(id)
		assert.Equal(t, stateSent, rep.State)
		reps = append(reps, rep)
	}
	assert.LessOrEqual(t, maxOverlap(reps), limit, "cron reports in progress at once, by their histories")
}

// With a cron backlog flowing (nothing hangs), a paid report submitted
// behind it is sent while only a few of the cron reports queued before it
// have started: a FIFO would have started every one of them first.
func TestPaidOvertakesCronBacklog(t *testing.T) {
	cfg := testConfig(t, newCluster(t))
	cfg.genMedian, cfg.genSpread = 10*time.Millisecond, 0 // every cron report takes the same time
	// The backlog builds up before the paid report comes: cron generation
	// waits until it is accepted, then everything flows.
	flowing := make(chan struct{})
	cfg.generateFault = func(ctx context.Context, r request, _ int) error {
		select {
		case <-flowing:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := startService(t, cfg)
	const backlog = 60
	limit := cfg.wipLimits[planCron]

	var cron []string
	for i := range backlog {
		cron = append(cron, s.submit(map[string]any{"user": fmt.Sprintf("job-%d", i), "plan": "cron", "kind": "usage"}))
	}
	require.Eventually(t, func() bool {
		n, err := s.app.store.countByState(context.Background())
		require.NoError(t, err)
		return n[planCron][stateQueued] == backlog-limit
	}, waitLong, waitTick, "the backlog is queued")
	paid := s.submit(map[string]any{"user": "customer", "plan": "paid", "kind": "billing"})
	close(flowing)
	p := s.waitTerminal(paid)
	require.Equal(t, stateSent, p.State)
	acceptedAt, sentAt := p.History[0].At, p.History[len(p.History)-1].At

	var reps []report
	queuedAhead, startedMeanwhile := 0, 0
	for _, id := range cron {
		rep := s.waitTerminal(id)
		require.Equal(t, stateSent, rep.State)
		reps = append(reps, rep)
		started := time.Time{}
		for _, c := range rep.History {
			if c.State == stateGenerating {
				started = c.At
			}
		}
		if started.After(acceptedAt) {
			queuedAhead++ // accepted before the paid report, not started when it came
			if started.Before(sentAt) {
				startedMeanwhile++
			}
		}
	}
	t.Logf("cron reports queued ahead of the paid one: %d; started while it was in progress: %d", queuedAhead, startedMeanwhile)
	require.Equal(t, backlog-limit, queuedAhead)
	// A paid report's way through the pipeline has the steps of a cron
	// slot's turn (generate, send, outcome) plus triage and its start, so
	// each cron slot turns over about twice while it runs; 6 turns per slot
	// is the bound, with room for a slow machine. A FIFO would start all
	// 58 first.
	const turnsPerSlot = 6
	assert.Less(t, startedMeanwhile, turnsPerSlot*limit, "cron reports started between the paid report's acceptance and its sending")
	assert.LessOrEqual(t, maxOverlap(reps), limit, "cron reports in progress at once")
}
