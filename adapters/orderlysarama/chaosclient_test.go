package orderlysarama_test

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// chaosClient is what the chaos harness needs from a Kafka client adapter:
// the rest of the harness (producer, committed-offset poll, journal,
// checks) does not depend on the client under test. Another client's
// adapter runs the same scenarios by implementing it.
type chaosClient interface {
	// strategies names the rebalance strategies the client offers, in the
	// harness's vocabulary: "range", "roundrobin", "sticky",
	// "cooperative-sticky".
	strategies() []string
	// member returns a group member's Source for topic on c, using the
	// named strategy and session timeout and logging to log, and a
	// function that makes the member vanish as a killed process would:
	// its connections drop and it can reach no broker again, so it sends
	// nothing more (no commit, no heartbeat, no leave).
	member(t testing.TB, c *kfake.Cluster, group, topic, strategy string, session time.Duration, log *slog.Logger) (src orderly.Source, vanish func())
}

// saramaClient is the chaosClient of this package's Source.
type saramaClient struct{}

func (saramaClient) strategies() []string {
	names := make([]string, len(strategies))
	for i, s := range strategies {
		names[i] = s.name
	}
	return names
}

func (saramaClient) member(t testing.TB, c *kfake.Cluster, group, topic, strategy string, session time.Duration, log *slog.Logger) (orderly.Source, func()) {
	t.Helper()
	cfg := config(strategyNamed(t, strategy))
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
	d := &vanishingDialer{}
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = d
	src, err := orderlysarama.NewSource(c.ListenAddrs(), group, []string{topic}, cfg, orderlysarama.WithLogger(log),
		orderlysarama.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
	require.NoError(t, err)
	return src, d.vanish
}

// vanishingDialer is a member's sarama dialer (Net.Proxy.Dialer): vanish
// closes every connection it made and makes every later dial fail, so the
// member can no longer reach any broker: a process that was killed.
type vanishingDialer struct {
	mu     sync.Mutex
	conns  []net.Conn
	gone   bool
	dialer net.Dialer
}

var errVanished = errors.New("chaos: this member has vanished")

func (d *vanishingDialer) Dial(network, addr string) (net.Conn, error) {
	conn, err := d.dialer.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		_ = conn.Close()
		return nil, errVanished
	}
	d.conns = append(d.conns, conn)
	return conn, nil
}

func (d *vanishingDialer) vanish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}
