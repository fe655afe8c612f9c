package saramachaos_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/internal/chaos"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// strategies are sarama's rebalance strategies, in the harness's
// vocabulary.
var strategies = []struct {
	name string
	new  func() sarama.BalanceStrategy
}{
	{"range", sarama.NewBalanceStrategyRange},
	{"roundrobin", sarama.NewBalanceStrategyRoundRobin},
	{"cooperative-sticky", sarama.NewBalanceStrategyCooperativeSticky},
	{"sticky", sarama.NewBalanceStrategySticky},
}

// saramaClient is the chaos.Client of the sarama adapter's Source.
type saramaClient struct{}

func (saramaClient) Strategies() []string {
	names := make([]string, len(strategies))
	for i, s := range strategies {
		names[i] = s.name
	}
	return names
}

func (saramaClient) Member(t testing.TB, c *kfake.Cluster, group, topic, strategy string, session time.Duration, log *slog.Logger) (orderly.Source, func()) {
	t.Helper()
	cfg := config(t, strategy)
	// A vanished member's session is noticed after Session.Timeout.
	cfg.Consumer.Group.Session.Timeout = session
	// Above the engine's revoke and drain timeouts together (chaos.join):
	// a revoked claim's ConsumeClaim returns within them.
	cfg.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	// The wait before joining again after a rebalance was interrupted (a
	// SyncGroup answered REBALANCE_IN_PROGRESS): sarama's default, 2s, as
	// members stopped during that wait are what rolling deploys run into;
	// but below a third of the session timeout, as sarama sends no
	// heartbeat while it waits, and the coordinator expires a member
	// silent for the session timeout.
	cfg.Consumer.Group.Rebalance.Retry.Backoff = min(sarama.NewConfig().Consumer.Group.Rebalance.Retry.Backoff, session/3)
	d := &chaos.Dialer{}
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = d
	src, err := orderlysarama.NewSource(c.ListenAddrs(), group, []string{topic}, cfg, orderlysarama.WithLogger(log),
		orderlysarama.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
	require.NoError(t, err)
	return src, d.Vanish
}

func (saramaClient) CommitErrorKind(err error) string {
	switch {
	case errors.Is(err, orderlysarama.ErrFenced):
		return "fenced"
	case errors.Is(err, orderlysarama.ErrClaimEnded):
		return "claim ended"
	}
	return ""
}

// config is a sarama config with fast group settings for kfake and the
// rebalance strategy named strategy.
func config(t testing.TB, strategy string) *sarama.Config {
	t.Helper()
	cfg := orderlysarama.DefaultConfig()
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Retry.Backoff = 50 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	for _, s := range strategies {
		if s.name == strategy {
			cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{s.new()}
			return cfg
		}
	}
	t.Fatalf("no rebalance strategy %q", strategy)
	return nil
}
