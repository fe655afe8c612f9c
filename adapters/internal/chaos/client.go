package chaos

import (
	"context"
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
)

// Client is what the harness needs from a Kafka client adapter: the rest
// of the harness (producer, committed-offset poll, journal, checks) does
// not depend on the client under test. Each adapter's tests implement it
// and run the same scenarios.
type Client interface {
	// Strategies names the rebalance strategies the client offers, in
	// the harness's vocabulary: "range", "roundrobin", "sticky",
	// "cooperative-sticky".
	Strategies() []string
	// Member returns a group member's Source for topic on c, using the
	// named strategy and session timeout and logging to log, and a
	// function that makes the member vanish as a killed process would:
	// its connections drop and it can reach no broker again, so it sends
	// nothing more (no commit, no heartbeat, no leave). Dialer does that
	// for clients that take a dial function.
	Member(t testing.TB, c *kfake.Cluster, group, topic, strategy string, session time.Duration, log *slog.Logger) (src orderly.Source, vanish func())
	// CommitErrorKind names the cause of a failed Commit for the run's
	// summary ("fenced", "claim ended"), or "" when it is none of the
	// adapter's own errors.
	CommitErrorKind(err error) string
}

// Cluster starts a kfake cluster of brokers brokers with topics seeded
// with partitions partitions each, and fast group settings.
func Cluster(t testing.TB, brokers int, partitions int32, topics []string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(brokers),
		kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// toolConfig is the sarama config of the harness's own producer and admin
// client.
func toolConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	// Idempotent: a send retried after a lost answer must not write a
	// record twice, or the log would hold a record the journal does not
	// know (at an offset it never learnt), which a run would count as
	// handled without being produced, and a partition end it did not
	// expect.
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// Dialer dials a member's connections; Vanish closes every connection it
// made and makes every later dial fail, so the member can no longer reach
// any broker: a process that was killed. Dial fits sarama's
// Net.Proxy.Dialer, DialContext franz-go's kgo.Dialer.
type Dialer struct {
	mu     sync.Mutex
	conns  []net.Conn
	gone   bool
	dialer net.Dialer
}

// ErrVanished is what a vanished member's dials fail with.
var ErrVanished = errors.New("chaos: this member has vanished")

// Dial dials addr unless the member has vanished.
func (d *Dialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext dials addr unless the member has vanished.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	gone := d.gone
	d.mu.Unlock()
	if gone {
		return nil, ErrVanished
	}
	conn, err := d.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		_ = conn.Close()
		return nil, ErrVanished
	}
	d.conns = append(d.conns, conn)
	return conn, nil
}

// Vanish closes every connection and fails every later dial.
func (d *Dialer) Vanish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}
