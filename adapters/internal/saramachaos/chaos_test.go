package saramachaos_test

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly/adapters/internal/chaos"
)

// The chaos scenarios, shared with the other adapters, and their checks:
// see package chaos; the seeds: see the package documentation.
func TestChaos(t *testing.T) {
	t.Parallel()
	chaos.TestChaos(t, saramaClient{})
}

// TestGracefulMemberChangesHandleNothingTwice: rolling deploys under
// every rebalance strategy, with sarama's default session timeout;
// ORDERLY_HANDOVER_SEEDS=20 runs 20 seeds per strategy (CI runs 1).
func TestGracefulMemberChangesHandleNothingTwice(t *testing.T) {
	t.Parallel()
	chaos.TestGracefulMemberChanges(t, saramaClient{}, sarama.NewConfig().Consumer.Group.Session.Timeout)
}

// TestBrokerOutage: the cluster is unreachable for 5 s in the middle of a
// run; the adapter logs the lost group sessions.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage run skipped in -short mode")
	}
	t.Parallel()
	res := chaos.TestOutage(t, saramaClient{})
	require.Positive(t, res.Logs.Warnings("group session lost"), "the adapter logs the lost sessions")
}
