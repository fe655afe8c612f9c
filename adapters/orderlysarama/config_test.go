package orderlysarama_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

func TestNewSourceEnforcesAndPassesThroughConfig(t *testing.T) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Net.TLS.Enable = true
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.User, cfg.Net.SASL.Password = "user", "secret"
	require.True(t, cfg.Consumer.Offsets.AutoCommit.Enable)
	require.False(t, cfg.Consumer.Return.Errors)

	src, err := orderlysarama.NewSource([]string{"b:9092"}, "g", []string{"t"}, cfg)
	require.NoError(t, err)
	got := src.Config()
	require.False(t, got.Consumer.Offsets.AutoCommit.Enable, "auto-commit is off")
	require.True(t, got.Consumer.Return.Errors, "errors are returned")
	require.True(t, got.Net.TLS.Enable)
	require.True(t, got.Net.SASL.Enable)
	require.Equal(t, "user", got.Net.SASL.User)
	require.Equal(t, sarama.V2_8_0_0, got.Version)
	require.True(t, cfg.Consumer.Offsets.AutoCommit.Enable, "the caller's config is not modified")
	require.False(t, cfg.Consumer.Return.Errors, "the caller's config is not modified")

	src, err = orderlysarama.NewSource([]string{"b:9092"}, "g", []string{"t"}, nil)
	require.NoError(t, err)
	got = src.Config()
	require.Equal(t, orderlysarama.DefaultVersion, got.Version)
	require.Equal(t, sarama.OffsetOldest, got.Consumer.Offsets.Initial)
	require.Equal(t, sarama.CooperativeStickyBalanceStrategyName, got.Consumer.Group.Rebalance.GroupStrategies[0].Name())
}

func TestNewSourceRejectsBadConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		brokers, topics []string
		group           string
		cfg             func(*sarama.Config)
		opts            []orderlysarama.Option
		unsafe          bool
	}{
		"no brokers":         {topics: []string{"t"}, group: "g"},
		"no group":           {brokers: []string{"b"}, topics: []string{"t"}},
		"no topics":          {brokers: []string{"b"}, group: "g"},
		"empty topic":        {brokers: []string{"b"}, topics: []string{""}, group: "g"},
		"old version":        {cfg: func(c *sarama.Config) { c.Version = sarama.V0_10_2_0 }, unsafe: true},
		"no strategy":        {cfg: func(c *sarama.Config) { c.Consumer.Group.Rebalance.GroupStrategies = nil }},
		"nil strategy":       {cfg: func(c *sarama.Config) { c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{nil} }},
		"cooperative on 2.3": {cfg: func(c *sarama.Config) { c.Version = sarama.V2_3_0_0 }},
		"bad initial":        {cfg: func(c *sarama.Config) { c.Consumer.Offsets.Initial = 42 }},
		"nil logger":         {opts: []orderlysarama.Option{orderlysarama.WithLogger(nil)}},
		"bad backoff":        {opts: []orderlysarama.Option{orderlysarama.WithRetryBackoff(time.Second, time.Millisecond)}},
		"nil option":         {opts: []orderlysarama.Option{nil}},
	} {
		t.Run(name, func(t *testing.T) {
			brokers, topics, group := tc.brokers, tc.topics, tc.group
			if brokers == nil && topics == nil && group == "" {
				brokers, topics, group = []string{"b"}, []string{"t"}, "g"
			}
			cfg := orderlysarama.DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			src, err := orderlysarama.NewSource(brokers, group, topics, cfg, tc.opts...)
			require.Nil(t, src)
			require.ErrorIs(t, err, orderlysarama.ErrInvalidConfig)
			if tc.unsafe {
				require.ErrorIs(t, err, orderlysarama.ErrUnsafeConfig)
			} else {
				require.NotErrorIs(t, err, orderlysarama.ErrUnsafeConfig)
			}
		})
	}
}

func TestNewProducerRejectsOldVersion(t *testing.T) {
	cfg := orderlysarama.DefaultConfig()
	cfg.Version = sarama.V0_10_2_0
	_, err := orderlysarama.NewProducer([]string{"b"}, cfg)
	require.ErrorIs(t, err, orderlysarama.ErrUnsafeConfig)
}
