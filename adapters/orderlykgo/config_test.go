package orderlykgo_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

func base() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers("b:9092"), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t", "u")}
}

func TestNewSourceRejectsBadConfig(t *testing.T) {
	onParts := func(context.Context, *kgo.Client, map[string][]int32) {}
	for name, tc := range map[string]struct {
		kopts  []kgo.Opt
		opts   []orderlykgo.Option
		unsafe bool
	}{
		"no consumer group": {kopts: []kgo.Opt{kgo.SeedBrokers("b"), kgo.ConsumeTopics("t")}},
		"no topics":         {kopts: []kgo.Opt{kgo.SeedBrokers("b"), kgo.ConsumerGroup("g")}},
		"empty group":       {kopts: append(base(), kgo.ConsumerGroup(""))},
		"partitions":        {kopts: append(base(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset()}}))},
		"share group":       {kopts: []kgo.Opt{kgo.SeedBrokers("b"), kgo.ShareGroup("s"), kgo.ConsumeTopics("t")}},
		"kip-848":           {kopts: append(base(), kgo.ServerSideBalancer())},
		"kgo rejects":       {kopts: append(base(), kgo.SessionTimeout(time.Millisecond))},
		"nil kgo option":    {kopts: append(base(), nil)},
		"nil option":        {opts: []orderlykgo.Option{nil}},
		"nil logger":        {opts: []orderlykgo.Option{orderlykgo.WithLogger(nil)}},
		"claim buffer 0":    {opts: []orderlykgo.Option{orderlykgo.WithClaimBuffer(0)}},

		"auto-commit marks":    {kopts: append(base(), kgo.AutoCommitMarks()), unsafe: true},
		"greedy auto-commit":   {kopts: append(base(), kgo.GreedyAutoCommit()), unsafe: true},
		"auto-commit interval": {kopts: append(base(), kgo.AutoCommitInterval(time.Second)), unsafe: true},
		"auto-commit callback": {kopts: append(base(), kgo.AutoCommitCallback(func(*kgo.Client, *kmsg.OffsetCommitRequest, *kmsg.OffsetCommitResponse, error) {})), unsafe: true},
		"on assigned":          {kopts: append(base(), kgo.OnPartitionsAssigned(onParts)), unsafe: true},
		"on revoked":           {kopts: append(base(), kgo.OnPartitionsRevoked(onParts)), unsafe: true},
		"on lost":              {kopts: append(base(), kgo.OnPartitionsLost(onParts)), unsafe: true},
		"on offsets fetched": {kopts: append(base(), kgo.OnOffsetsFetched(func(context.Context, *kgo.Client, *kmsg.OffsetFetchResponse) error {
			return nil
		})), unsafe: true},
		"adjust offsets": {kopts: append(base(), kgo.AdjustFetchOffsetsFn(func(_ context.Context, o map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			return o, nil
		})), unsafe: true},
		"transactional":        {kopts: append(base(), kgo.TransactionalID("tx")), unsafe: true},
		"keep control records": {kopts: append(base(), kgo.KeepControlRecords()), unsafe: true},
		"no record headers":    {kopts: append(base(), kgo.MaxVersions(kversion.V0_10_2())), unsafe: true},
	} {
		t.Run(name, func(t *testing.T) {
			kopts := tc.kopts
			if kopts == nil {
				kopts = base()
			}
			src, err := orderlykgo.NewSource(kopts, tc.opts...)
			require.Nil(t, src)
			require.ErrorIs(t, err, orderlykgo.ErrInvalidConfig)
			if tc.unsafe {
				require.ErrorIs(t, err, orderlykgo.ErrUnsafeConfig)
			} else {
				require.NotErrorIs(t, err, orderlykgo.ErrUnsafeConfig)
			}
		})
	}
}

// Options that leave the guarantees alone pass, including the ones the
// adapter sets anyway and read_committed; NewSource does not connect, and
// the client it reads the options through leaves no goroutine behind.
func TestNewSourceAcceptsAndDoesNotConnect(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	var dials atomic.Int64
	dialer := func(ctx context.Context, network, host string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("no network in this test")
	}
	src, err := orderlykgo.NewSource(append(base(),
		kgo.Dialer(dialer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitInterval(5*time.Second), // kgo's default: indistinguishable from none
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.InstanceID("member-1"),
		kgo.MaxVersions(kversion.V3_6_0()),
	), orderlykgo.WithClaimBuffer(1))
	require.NoError(t, err)
	require.Equal(t, "g", src.GroupName())
	require.Equal(t, []string{"t", "u"}, src.Topics())
	require.Zero(t, dials.Load(), "NewSource does not connect")
	// Polled on the test goroutine: require.Eventually runs its
	// condition on a goroutine of its own, which would count.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines, "goroutines left behind by NewSource")
}
