package chaos

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The environment variables that choose the seeds (see the package
// documentation), and how many seeds CI runs.
const (
	ChaosSeedEnv     = "ORDERLY_CHAOS_SEED"
	ChaosSeedsEnv    = "ORDERLY_CHAOS_SEEDS"
	HandoverSeedEnv  = "ORDERLY_HANDOVER_SEED"
	HandoverSeedsEnv = "ORDERLY_HANDOVER_SEEDS"

	chaosCISeeds    = 2
	handoverCISeeds = 1
)

// TestChaos runs a consumer group under load while members join, leave and
// one vanishes without committing (its connections drop and no dial
// succeeds again, as when its process is killed), with records flowing
// throughout: 8 partitions, 100 keys, 20,000 records, a rebalance strategy
// drawn from the seed. Besides the checks of every run (see the package
// documentation): the vanished member had completed records it had not
// committed (the crash really lost its window), those are handled again,
// and no other record is.
func TestChaos(t *testing.T, client Client) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	var sum Summary
	defer sum.Log(t)
	for _, seed := range SeedsFromEnv(t, ChaosSeedEnv, ChaosSeedsEnv, chaosCISeeds) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		strategy := client.Strategies()[rng.IntN(len(client.Strategies()))]
		ok := t.Run(fmt.Sprintf("seed=%d/%s", seed, strategy), func(t *testing.T) {
			t.Logf("replay with %s=%d", ChaosSeedEnv, seed)
			res := Scenario{
				Client: client, Strategy: strategy, Seed: seed,
				Key:     UniformKeys(100),
				Initial: []string{"m1", "m2", "m3"},
				Steps: []Step{
					JoinStep(0.15, "m4"),
					LeaveStep(0.30),
					CrashStep(0.45),
					JoinStep(0.60, "m5"),
					LeaveStep(0.75),
				},
			}.Run(t)
			require.Positive(t, res.Unsaved, "a member vanished with completed records not committed")
			require.Zero(t, res.GracefulDuplicates, "records handled again that a member which left or gave its partition up had completed")
			sum.Add(strategy, res)
		})
		if !ok {
			sum.Failed++
		}
	}
}

// TestGracefulMemberChanges is a rolling deploy, with a member joining
// and one leaving on top, under load: 3 members, 8 partitions, 20,000
// records with Zipf-distributed keys, under every strategy the client
// offers. Each member in turn is stopped and replaced (stopped first or
// started first, drawn from the seed), the first two replacements without
// waiting for the group to settle, so that members stop while the group
// is still rebalancing; then a fourth member joins and one leaves right
// after, and one more is replaced. No member crashes, so no record may be
// handled twice: every member that gives a partition up, in a rebalance
// or by leaving, commits everything it completed before the next owner
// starts. session is the members' session timeout (no member is expected
// to vanish: use the client's default).
func TestGracefulMemberChanges(t *testing.T, client Client, session time.Duration) {
	if testing.Short() {
		t.Skip("rebalance runs skipped in -short mode")
	}
	seeds := SeedsFromEnv(t, HandoverSeedEnv, HandoverSeedsEnv, handoverCISeeds)
	var sum Summary
	defer sum.Log(t)
	for _, strategy := range client.Strategies() {
		t.Run(strategy, func(t *testing.T) {
			for _, seed := range seeds {
				ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					t.Logf("replay with %s=%d", HandoverSeedEnv, seed)
					res := Scenario{
						Client: client, Strategy: strategy, Seed: seed,
						Key:     ZipfKeys(1000, 1.2),
						Session: session,
						Initial: []string{"m1", "m2", "m3"},
						Steps: []Step{
							Overlapped(ReplaceStep(0.10, "m1b")),
							Overlapped(ReplaceStep(0.15, "m2b")),
							ReplaceStep(0.20, "m3b"),
							Overlapped(JoinStep(0.45, "m4")),
							LeaveStep(0.50),
							ReplaceStep(0.75, "m5"),
						},
					}.Run(t)
					sum.Add(strategy, res)
					require.Zero(t, res.GracefulDuplicates, "records handled twice without a crash")
				})
				if !ok {
					sum.Failed++
				}
			}
		})
	}
}

// TestOutage makes the whole cluster unreachable for 5 s in the middle of
// a run: a TCP proxy between the members and the brokers closes every
// connection and closes each new one on accept, then lets them through
// again. Three members under load (8 partitions, 10,000 records, the
// cooperative-sticky strategy) notice (their claims are revoked, and each
// engine's Stats lists no partition once the claims are handed back),
// keep retrying without Run returning, and take the partitions up again
// once the cluster is back. The checks of every run hold throughout.
// Records are handled again only where the outage swallowed the final
// commit of a claim that was serving when it began. The result's Logs let
// the caller check what the adapter logged.
func TestOutage(t *testing.T, client Client) Result {
	res := Scenario{
		Client: client, Strategy: "cooperative-sticky", Seed: 1,
		Records: 10000,
		Key:     ZipfKeys(1000, 1.2),
		Initial: []string{"m1", "m2", "m3"},
		Steps:   []Step{OutageStep(0.5, 5*time.Second)},
		Proxied: true,
	}.Run(t)
	require.Zero(t, res.GracefulDuplicates, "records handled again by a claim that did not end during the outage")
	return res
}
