package orderlykgo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/adaptertest"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

// Conformance members read ahead little, so that the pause test can see a
// pause: a claim holds conformanceBuffer records before fetching pauses,
// and a fetch returns at most conformanceFetchBytes per partition (a few
// of the suite's records, each produced as a batch of its own).
const (
	conformanceBuffer     = 8
	conformanceFetchBytes = 256
	conformanceFetch      = 16 // records in one fetch of conformanceFetchBytes, generously
	// conformanceSlack: the claim's queue, the batch on Records and the
	// one the forwarder holds (each up to a buffer plus a fetch, as the
	// forwarder empties the queue and fetching resumes), and one fetch
	// being routed when Pause is called.
	conformanceSlack = 3*(conformanceBuffer+conformanceFetch) + conformanceFetch
	// conformanceRebalanceTimeout: see NewMember.
	conformanceRebalanceTimeout = 30 * time.Second
)

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("kfake conformance run skipped in -short mode")
	}
	c := cluster(t, 3, 1, "unused")
	k := &conformanceCluster{c: c, p: newProducer(t, c, true)}
	adaptertest.TestSource(t, adaptertest.Features{Crash: true, PlantCommit: true, Reread: true, Slow: true, PauseSlack: conformanceSlack, RecordsPerTest: 300},
		func(t *testing.T) adaptertest.Cluster { return k })
}

// conformanceCluster is the adaptertest glue over a kfake cluster.
type conformanceCluster struct {
	c *kfake.Cluster
	p *orderlykgo.Producer // manual partitioning
}

func (k *conformanceCluster) CreateTopic(t *testing.T, topic string, partitions int) {
	_, err := admin(t, k.c).CreateTopic(context.Background(), int32(partitions), 1, nil, topic)
	require.NoError(t, err)
}

func (k *conformanceCluster) Produce(t *testing.T, topic string, partition int32, msgs ...adaptertest.Message) []int64 {
	offsets := make([]int64, len(msgs))
	for i, m := range msgs {
		r := orderlykgo.NewRecord(topic, m.Key, m.Value)
		r.Partition = partition
		_, off, err := k.p.Send(context.Background(), r)
		require.NoError(t, err)
		offsets[i] = off
	}
	return offsets
}

func (k *conformanceCluster) NewMember(t *testing.T, group string, topics ...string) adaptertest.Member {
	// Crash makes the member vanish as a killed process would: its
	// connections drop and it can dial no more, so nothing it commits
	// afterwards is stored, and the group hands its partitions over after
	// the session timeout.
	d := &vanishingDialer{}
	kopts := append(groupOpts(k.c, group, topics...),
		kgo.FetchMaxPartitionBytes(conformanceFetchBytes),
		kgo.Dialer(d.DialContext),
		// Above the suite's revoke timeout (a quarter of its 60 s bound)
		// plus a final commit: the rebalance test revokes partitions whose
		// handlers wait at its gate until the revoke timeout cancels them,
		// and a member still revoking after the rebalance timeout is
		// expelled from the group.
		kgo.RebalanceTimeout(conformanceRebalanceTimeout),
	)
	return member{newSource(t, kopts, orderlykgo.WithClaimBuffer(conformanceBuffer)), d}
}

func (k *conformanceCluster) Committed(t *testing.T, group, topic string, partition int32) (orderly.Position, bool) {
	pos := committed(t, k.c, group, topic, partition+1)[partition]
	if pos.Offset < 0 {
		return orderly.Position{}, false
	}
	return pos, true
}

func (k *conformanceCluster) SetCommitted(t *testing.T, group, topic string, partition int32, pos orderly.Position) {
	commitAs(t, k.c, group, topic, partition, pos)
}

// member is a Source that can vanish. Source's Paused makes it an
// adaptertest.PauseReporter.
type member struct {
	*orderlykgo.Source
	dialer *vanishingDialer
}

func (m member) Crash() { m.dialer.Vanish() }
