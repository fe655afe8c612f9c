package orderly_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

// lateness bounds how long after its token's time an admitted attempt's
// handler may start. The tests run in a synctest bubble, where timers fire
// at exactly their time, so a handler starts at its token's time: the
// margin only absorbs the rate's float rounding. The token bucket bounds
// the tokens' times; a handler start can only be later than its token,
// never earlier, so the starts in [a, b] used tokens timed in
// [a-lateness, b]. Without the limit, all the records start at once.
const lateness = time.Millisecond

// checkTokenBucket fails if, for some window [starts[i], starts[j]], more
// handlers started than a token bucket of rate r and size burst allows:
// burst + r×(window + lateness).
func checkTokenBucket(t *testing.T, what string, starts []time.Time, r float64, burst int) {
	t.Helper()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := range starts {
		for j := i; j < len(starts); j++ {
			window := starts[j].Sub(starts[i])
			allowed := float64(burst) + r*(window+lateness).Seconds()
			if n := j - i + 1; float64(n) > allowed {
				t.Fatalf("%s: %d handler starts within %v (starts %d..%d), more than burst %d + %v/s × (%v + %v) = %.1f",
					what, n, window, i, j, burst, r, window, lateness, allowed)
			}
		}
	}
}

// Handler starts never outrun the token bucket: engine-wide with
// WithRateLimit, each partition on its own with WithPartitionRateLimit.
func TestRateLimitBoundsHandlerStarts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opt        orderly.Option
		r          float64
		burst      int
		partitions int
		records    int
		perPart    bool
	}{
		{"engine", orderly.WithRateLimit(200, 5), 200, 5, 2, 150, false},
		{"partition", orderly.WithPartitionRateLimit(100, 3), 100, 3, 2, 150, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := memory.NewLog()
				require.NoError(t, log.CreateTopic("t", tc.partitions))
				for i := range tc.records {
					// 25 keys per partition: plenty of records ready at once.
					_, err := log.ProduceTo("t", int32(i%tc.partitions), fmt.Appendf(nil, "k%d", i%50), fmt.Append(nil, i))
					require.NoError(t, err)
				}
				var mu sync.Mutex
				starts := map[int32][]time.Time{}
				eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
					now := time.Now()
					mu.Lock()
					starts[r.Partition] = append(starts[r.Partition], now)
					mu.Unlock()
					return nil
				}), tc.opt, orderly.WithMaxConcurrency(50), orderly.WithLogger(quiet))
				require.NoError(t, err)
				stop := running(t, eng)
				require.Eventually(t, func() bool { return eng.Stats().RecordsHandled == uint64(tc.records) }, 20*time.Second, time.Millisecond)
				require.NoError(t, stop())

				mu.Lock()
				defer mu.Unlock()
				if tc.perPart {
					for p, s := range starts {
						checkTokenBucket(t, fmt.Sprint("partition ", p), s, tc.r, tc.burst)
					}
					return
				}
				var all []time.Time
				for _, s := range starts {
					all = append(all, s...)
				}
				checkTokenBucket(t, "engine", all, tc.r, tc.burst)
			})
		})
	}
}
