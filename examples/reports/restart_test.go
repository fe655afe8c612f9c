package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The service is stopped in the middle of a run and started again on the
// same database and cluster: no report is lost or stored twice, every one
// is sent with each state once and in order, the WIP limits held across
// the restart (slots taken before it are counted after it), and every slot
// comes back.
func TestRestartMidRun(t *testing.T) {
	cluster := newCluster(t)
	cfg := testConfig(t, cluster)
	cfg.wipLimits[planCron] = 1
	// In the first run, cron reports and three free ones hang in
	// generation, so the stop finds reports sent, generating (holding
	// slots) and queued behind them. (Three of the four free slots: the
	// fourth keeps the other free reports going.) The hung handlers are
	// cancelled after the drain timeout and handled again after the
	// restart.
	firstCfg := cfg
	firstCfg.drainTimeout = 500 * time.Millisecond
	firstCfg.generateFault = func(ctx context.Context, r request, _ int) error {
		if r.Plan == planCron || r.User == "u22" || r.User == "u25" || r.User == "u28" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	first := startService(t, firstCfg)

	bodies := map[string]map[string]any{}
	var ids []string
	for i := range 45 {
		p := plans[i%len(plans)]
		body := map[string]any{"id": fmt.Sprintf("restart-%d", i), "user": fmt.Sprintf("u%02d", i), "plan": string(p), "kind": kinds[i%len(kinds)]}
		ids = append(ids, first.submit(body))
		bodies[ids[len(ids)-1]] = body
	}
	want := map[plan]map[state]int{
		planPaid: {stateSent: 15},
		planFree: {stateSent: 12, stateGenerating: 3},
		planCron: {stateGenerating: 1, stateQueued: 14},
	}
	var last map[plan]map[state]int
	require.Eventually(t, func() bool {
		n, err := first.app.store.countByState(context.Background())
		require.NoError(t, err)
		last = n
		return assert.ObjectsAreEqual(want, n)
	}, waitLong, time.Millisecond, "mid-run: %v", &last)
	first.stop()

	second := startService(t, cfg)
	// Posting the same ids again after the restart creates nothing new.
	for _, id := range ids[:5] {
		resp, out := second.post(bodies[id])
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		assert.Equal(t, true, out["replayed"], id)
	}
	byPlan := map[plan][]report{}
	for _, id := range ids {
		r := second.waitTerminal(id)
		assert.Equal(t, stateSent, r.State, id)
		assert.Equal(t, happyPath, historyStates(r), "%s: each state once, in order", id)
		byPlan[r.Plan] = append(byPlan[r.Plan], r)
	}
	var stored int
	require.NoError(t, second.app.store.db.QueryRow(`SELECT COUNT(*) FROM reports`).Scan(&stored))
	assert.Equal(t, len(ids), stored, "no report stored twice, none made up")
	for p, reps := range byPlan {
		assert.LessOrEqual(t, maxOverlap(reps), cfg.wipLimits[p], "%s reports in progress at once, across the restart", p)
	}
	for p, u := range second.app.wip.usage() {
		assert.Zero(t, u.InUse, "%s slots in use at the end", p)
	}
}
