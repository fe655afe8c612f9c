package kgochaos_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/internal/chaos"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

// The chaos scenarios the sarama adapter runs too, and their checks: see
// package chaos; the seeds: see the package documentation.
func TestChaos(t *testing.T) {
	t.Parallel()
	chaos.TestChaos(t, kgoClient{})
}

// TestGracefulMemberChangesHandleNothingTwice: rolling deploys under
// every balancer, with franz-go's default session timeout (45 s);
// ORDERLY_HANDOVER_SEEDS=20 runs 20 seeds per balancer (CI runs 1).
func TestGracefulMemberChangesHandleNothingTwice(t *testing.T) {
	t.Parallel()
	chaos.TestGracefulMemberChanges(t, kgoClient{}, 45*time.Second)
}

// TestBrokerOutage: the cluster is unreachable for 5 s in the middle of a
// run.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage run skipped in -short mode")
	}
	t.Parallel()
	chaos.TestOutage(t, kgoClient{})
}

// kgoClient is the chaos.Client of the franz-go adapter's Source.
type kgoClient struct{}

var balancers = map[string]func() kgo.GroupBalancer{
	"range":              kgo.RangeBalancer,
	"roundrobin":         kgo.RoundRobinBalancer,
	"sticky":             kgo.StickyBalancer,
	"cooperative-sticky": kgo.CooperativeStickyBalancer,
}

func (kgoClient) Strategies() []string {
	return []string{"range", "roundrobin", "cooperative-sticky", "sticky"}
}

func (kgoClient) Member(t testing.TB, c *kfake.Cluster, group, topic, strategy string, session time.Duration, log *slog.Logger) (orderly.Source, func()) {
	t.Helper()
	balancer, ok := balancers[strategy]
	if !ok {
		t.Fatalf("no balancer %q", strategy)
	}
	d := &chaos.Dialer{}
	src, err := orderlykgo.NewSource([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.Balancers(balancer()),
		// A vanished member's session is noticed after the session
		// timeout.
		kgo.SessionTimeout(session),
		// Above the engine's revoke and drain timeouts together: a
		// revoked claim's serve returns within them.
		kgo.RebalanceTimeout(20 * time.Second),
		kgo.Dialer(d.DialContext),
	}, orderlykgo.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return src, d.Vanish
}

func (kgoClient) CommitErrorKind(err error) string {
	switch {
	case errors.Is(err, orderlykgo.ErrFenced):
		return "fenced"
	case errors.Is(err, orderlykgo.ErrClaimEnded):
		return "claim ended"
	}
	return ""
}
