package mixedgroup_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// A sarama member and a franz-go member share one consumer group, both
// with the cooperative-sticky balancer (the default of each adapter): they
// agree on the protocol, split the partitions, and hand them over to each
// other through their commits, with either one leading the group (the
// first to join leads and runs the assignment). Every record is handled
// once, each key in offset order across the two clients, each claim starts
// at the last successful commit of its partition, commits never go back,
// and the commits reach the end.
func TestSaramaAndFranzMembersShareAGroup(t *testing.T) {
	franz := func(c *kfake.Cluster) groupMember {
		return func(t *testing.T, _ string) orderly.Source {
			return newSource(t, append(groupOpts(c, "g", "t"), kgo.Balancers(kgo.CooperativeStickyBalancer())))
		}
	}
	saramaMember := func(c *kfake.Cluster) groupMember {
		return func(t *testing.T, _ string) orderly.Source {
			cfg := orderlysarama.DefaultConfig() // cooperative-sticky
			cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
			cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
			cfg.Consumer.Group.Session.Timeout = 3 * time.Second
			cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
			cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
			cfg.Consumer.Retry.Backoff = 50 * time.Millisecond
			cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
			require.Equal(t, sarama.CooperativeStickyBalanceStrategyName, cfg.Consumer.Group.Rebalance.GroupStrategies[0].Name())
			src, err := orderlysarama.NewSource(c.ListenAddrs(), "g", []string{"t"}, cfg, orderlysarama.WithLogger(quiet))
			require.NoError(t, err)
			return src
		}
	}
	for _, order := range []struct {
		name  string
		first func(*kfake.Cluster) groupMember
		then  func(*kfake.Cluster) groupMember
	}{
		{"sarama leads", saramaMember, franz},
		{"franz-go leads", franz, saramaMember},
	} {
		t.Run(order.name, func(t *testing.T) {
			t.Parallel()
			const partitions = 6
			c := cluster(t, 3, partitions, "t")
			p := newProducer(t, c)
			end := make([]int64, partitions)
			produced := 0
			produce := func(n int) (int, []int64) {
				for range n {
					key := "k" + strconv.Itoa(produced%12)
					part, off, err := p.Produce(context.Background(), "t", []byte(key), []byte(strconv.Itoa(produced)))
					require.NoError(t, err)
					end[part] = max(end[part], off+1)
					produced++
				}
				return produced, end
			}
			first, then := order.first(c), order.then(c)
			handOver(t, c, partitions, produce, func(t *testing.T, name string) orderly.Source {
				if name == "a" {
					return first(t, name)
				}
				return then(t, name)
			}, "g", "t")
		})
	}
}
