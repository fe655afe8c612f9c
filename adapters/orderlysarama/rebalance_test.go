package orderlysarama_test

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

// Graceful-rebalance runs take their seeds from the environment:
//
//	ORDERLY_HANDOVER_SEEDS=20 go test -race -run TestGracefulMemberChangesHandleNothingTwice ./adapters/orderlysarama
//
// runs 20 random seeds per rebalance strategy (CI runs handoverCISeeds),
// and ORDERLY_HANDOVER_SEED=<seed> replays one.
const (
	handoverSeedEnv  = "ORDERLY_HANDOVER_SEED"
	handoverSeedsEnv = "ORDERLY_HANDOVER_SEEDS"
	handoverCISeeds  = 1
)

// A rolling deploy, with a member joining and one leaving on top, under
// load: 3 members, 8 partitions, 20,000 records with Zipf-distributed keys,
// the adapter's default cooperative-sticky strategy and every eager one.
// Each member in turn is stopped and replaced (stopped first or started
// first, drawn from the seed), the first two replacements without waiting
// for the group to settle, so that members stop while the group is still
// rebalancing; then a fourth member joins and one leaves right after, and
// one more is replaced. No member crashes, so no record may be handled
// twice: every member that gives a partition up, in a rebalance or by
// leaving, commits everything it completed before the next owner starts.
// The runs also check everything TestChaos checks (nothing lost, per-key
// order, commits never going back).
func TestGracefulMemberChangesHandleNothingTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("rebalance runs skipped in -short mode")
	}
	t.Parallel()
	client := saramaClient{}
	seeds := seedsFromEnv(t, handoverSeedEnv, handoverSeedsEnv, handoverCISeeds)
	var sum chaosSummary
	defer sum.log(t)
	for _, strategy := range client.strategies() {
		t.Run(strategy, func(t *testing.T) {
			for _, seed := range seeds {
				ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					t.Logf("replay with %s=%d", handoverSeedEnv, seed)
					res := chaosRun{
						client: client, strategy: strategy, seed: seed,
						key: zipfKeys(1000, 1.2),
						// sarama's default: no member is expected to vanish.
						session: sarama.NewConfig().Consumer.Group.Session.Timeout,
						initial: []string{"m1", "m2", "m3"},
						steps: []chaosStep{
							overlapped(replaceStep(0.10, "m1b")),
							overlapped(replaceStep(0.15, "m2b")),
							replaceStep(0.20, "m3b"),
							overlapped(joinStep(0.45, "m4")),
							leaveStep(0.50),
							replaceStep(0.75, "m5"),
						},
					}.run(t)
					sum.add(strategy, res)
					require.Zero(t, res.gracefulDuplicates, "records handled twice without a crash")
				})
				if !ok {
					sum.failed++
				}
			}
		})
	}
}

// overlapped lets the scenario's next step start before the group has
// settled after s.
func overlapped(s chaosStep) chaosStep {
	s.overlap = true
	return s
}
