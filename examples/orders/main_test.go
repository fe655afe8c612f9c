package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// backends are where the demo runs in the tests: the embedded Kafka
// cluster through each client, and the in-memory log.
var backends = []struct{ name, source, client string }{
	{"kafka-sarama", "kafka", "sarama"},
	{"kafka-franz", "kafka", "franz"},
	{"memory", "memory", ""},
}

// The demo runs end to end with small numbers, on the embedded Kafka
// cluster through sarama and through franz-go, and on the in-memory log,
// in every mode: every event is applied (in order, unless unordered) and
// committed.
func TestDemo(t *testing.T) {
	for _, b := range backends {
		for _, mode := range []string{"key", "serial", "unordered"} {
			t.Run(b.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				var out strings.Builder
				err := run(context.Background(), options{source: b.source, client: b.client, records: 2000, partitions: 4, keys: 100,
					latency: 100 * time.Microsecond, mode: mode, concurrency: 32, producers: 8}, &out)
				require.NoError(t, err, out.String())
				if b.source == "kafka" {
					require.Contains(t, out.String(), map[string]string{"sarama": "adapters/orderlysarama", "franz": "adapters/orderlykgo"}[b.client])
				}
				require.Contains(t, out.String(), "committed 2000 of 2000")
				require.Contains(t, out.String(), "decode errors: 0")
				if mode != "unordered" {
					require.Contains(t, out.String(), "every order's events were applied in order")
				}
			})
		}
	}
}

// With forced failures, flaky events are retried until they succeed and
// poison events go to the dead-letter sink (orders.dlq on Kafka) with their
// orders' later events parked after them; the summary checks the exact
// count, and nothing is applied out of order.
func TestDemoWithFailures(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			err := run(context.Background(), options{source: b.source, client: b.client, records: 2000, partitions: 4, keys: 100,
				latency: 100 * time.Microsecond, mode: "key", concurrency: 32, producers: 8, flaky: 0.1, poison: 0.02}, &out)
			require.NoError(t, err, out.String())
			require.Contains(t, out.String(), "committed 2000 of 2000")
			require.Contains(t, out.String(), "events applied out of order: 0")
			require.Regexp(t, `[1-9][0-9]* events dead-lettered \(expected [1-9]`, out.String())
			require.Regexp(t, `[1-9][0-9]* attempts retried`, out.String())
		})
	}
}

// Bad flags are refused before anything starts.
func TestDemoRejectsBadFlags(t *testing.T) {
	for _, o := range []options{
		{source: "kafka", records: 10, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "sideways"},
		{source: "nats", records: 10, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "key"},
		{source: "memory", brokers: "localhost:9092", records: 10, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "key"},
		{source: "kafka", records: 0, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "key"},
		{source: "memory", records: 10, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "key", poison: 1.5},
		{source: "memory", records: 10, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "serial", poison: 0.1},
		{source: "kafka", client: "confluent", records: 10, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "key"},
		{source: "memory", client: "franz", records: 10, partitions: 1, keys: 1, concurrency: 1, producers: 1, mode: "key"},
	} {
		require.Error(t, run(context.Background(), o, &strings.Builder{}), "%+v", o)
	}
}
