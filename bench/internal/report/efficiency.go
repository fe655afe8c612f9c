package report

import (
	"math/rand/v2"
	"time"
)

// Latencies are the nominal handler latencies of the pc-table workload
// (parallel-consumer's README): n durations uniform in [0, 5 ms), the
// same for the same seed.
func Latencies(n int, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	lat := make([]time.Duration, n)
	for i := range lat {
		lat[i] = time.Duration(rng.Int64N(int64(5 * time.Millisecond)))
	}
	return lat
}

// Limit is the efficiency limit of a set of handler durations (d[i]:
// record i's) at a concurrency: max(Σ d / concurrency, the largest Σ d of
// one ordering unit), the least time any consumer could take. unitOf(i)
// is record i's unit: the key it is ordered by, or the partition where a
// consumer handles a partition serially; -1 when it has none (it then is
// a unit of its own). total is Σ d.
func Limit(d []time.Duration, unitOf func(int) int, concurrency int) (limit, total time.Duration) {
	perUnit := map[int]time.Duration{}
	var largest time.Duration
	for i, v := range d {
		total += v
		u := unitOf(i)
		if u < 0 {
			largest = max(largest, v)
			continue
		}
		perUnit[u] += v
		largest = max(largest, perUnit[u])
	}
	return max(total/time.Duration(concurrency), largest), total
}
