package orderlysarama_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// Chaos runs take their seeds from the environment:
//
//	ORDERLY_CHAOS_SEEDS=100 go test -race -run 'TestChaos$' ./adapters/orderlysarama
//
// runs 100 random seeds (CI runs chaosCISeeds), and
//
//	ORDERLY_CHAOS_SEED=<seed printed by a failed run> go test -race -run 'TestChaos$' ./adapters/orderlysarama
//
// replays one.
const (
	chaosSeedEnv  = "ORDERLY_CHAOS_SEED"
	chaosSeedsEnv = "ORDERLY_CHAOS_SEEDS"
	chaosCISeeds  = 2
)

// TestChaos runs a consumer group under load while members join, leave and
// one vanishes without committing (its connections drop and no dial
// succeeds again, as when its process is killed), with records flowing
// throughout: 8 partitions, 100 keys, 20,000 records, a rebalance strategy
// drawn from the seed.
//
// What it checks, and why each holds:
//   - every produced record is handled at least once, and the group's
//     committed offsets end at every partition's end;
//   - within each claim (one owner's run over a partition) each key's
//     records start in offset order, and no record is completed twice;
//   - committed offsets never decrease: per claim, per partition over all
//     claims in the order commits returned, in what an admin client reads
//     from the broker while the test runs, and each claim starts at or
//     above the last successful commit of its partition;
//   - the vanished member stores nothing after it vanished: every Commit
//     it starts afterwards fails;
//   - duplicates only come from the uncommitted window: when claims C1
//     and C2 (granted in that order) both completed a record, C1's last
//     successful commit does not cover it (the record is at or above that
//     commit's offset and outside the ranges its metadata lists as done).
//     A commit that covers a record is inherited by every later owner,
//     so such a record is never delivered again;
//   - only the vanished member's records repeat: members that leave or
//     give partitions up in a rebalance commit everything they completed
//     before the partition moves;
//   - the records the vanished member had completed but not committed
//     when it vanished are handled again by another member (the crash
//     really lost its window).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	t.Parallel()
	client := saramaClient{}
	var sum chaosSummary
	defer sum.log(t)
	for _, seed := range seedsFromEnv(t, chaosSeedEnv, chaosSeedsEnv, chaosCISeeds) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		strategy := client.strategies()[rng.IntN(len(client.strategies()))]
		ok := t.Run(fmt.Sprintf("seed=%d/%s", seed, strategy), func(t *testing.T) {
			t.Logf("replay with %s=%d", chaosSeedEnv, seed)
			res := chaosRun{
				client: client, strategy: strategy, seed: seed,
				key:     uniformKeys(100),
				initial: []string{"m1", "m2", "m3"},
				steps: []chaosStep{
					joinStep(0.15, "m4"),
					leaveStep(0.30),
					crashStep(0.45),
					joinStep(0.60, "m5"),
					leaveStep(0.75),
				},
			}.run(t)
			require.Positive(t, res.unsaved, "a member vanished with completed records not committed")
			require.Zero(t, res.gracefulDuplicates, "records handled again that a member which left or gave its partition up had completed")
			sum.add(strategy, res)
		})
		if !ok {
			sum.failed++
		}
	}
}
