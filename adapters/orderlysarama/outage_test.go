package orderlysarama_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The whole cluster becomes unreachable for 5 s in the middle of a run: a
// TCP proxy between the members and the brokers closes every connection
// and closes each new one on accept, then lets them through again. Three
// members under load (8 partitions, 10,000 records) notice (their group
// sessions are lost and their claims revoked: the adapter logs it, and
// each engine's Stats lists no partition once the claims are handed
// back), keep retrying without Run returning, and take the partitions up
// again once the cluster is back. TestChaos's checks hold throughout:
// nothing lost, per-key order, commits never going back. Records are
// handled again only where the outage swallowed the final commit of a
// claim that was serving when it began.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage run skipped in -short mode")
	}
	t.Parallel()
	res := chaosRun{
		client: saramaClient{}, strategy: "cooperative-sticky", seed: 1,
		records: 10000,
		key:     zipfKeys(1000, 1.2),
		initial: []string{"m1", "m2", "m3"},
		steps:   []chaosStep{outageStep(0.5, 5*time.Second)},
		proxied: true,
	}.run(t)
	require.Zero(t, res.gracefulDuplicates, "records handled again by a claim that did not end during the outage")
	require.Positive(t, res.logs.warnings("group session lost"), "the adapter logs the lost sessions")
}
