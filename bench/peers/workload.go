package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// workload is one topic of the cluster and what its records carry.
//
// Record i has the key strconv.Itoa(i % keys), goes to partition
// (i % keys) % partitions (so a key lives in one partition and the keys
// are spread round-robin over the partitions), and its value starts with
// i as a little-endian uint32 (padded with zeros to valueSize bytes). Every
// peer reads i back from the value, so that each handler call knows its
// nominal latency and where to store its measured duration.
type workload struct {
	scenario   string // "peers" (latency-bound) or "peers-noop"
	topic      string
	partitions int
	records    int
	keys       int
	valueSize  int
	lat        []time.Duration // nominal latencies by record index; nil: no-op handler
}

func (w *workload) keyOf(i int) int       { return i % w.keys }
func (w *workload) partitionOf(i int) int { return w.keyOf(i) % w.partitions }

// newCluster starts one in-process kfake cluster holding every workload's
// topic, with fast group settings (as in adapters/orderlysarama's tests).
func newCluster(brokers int, ws ...*workload) (*kfake.Cluster, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(brokers),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	for _, w := range ws {
		opts = append(opts, kfake.SeedTopics(int32(w.partitions), w.topic))
	}
	return kfake.NewCluster(opts...)
}

// produce writes the workload's records to its topic (with franz-go: the
// producer is not what is measured).
func produce(ctx context.Context, brokers []string, w *workload) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	const batch = 20_000
	recs := make([]*kgo.Record, 0, batch)
	for i := range w.records {
		v := make([]byte, max(w.valueSize, 4))
		binary.LittleEndian.PutUint32(v, uint32(i))
		recs = append(recs, &kgo.Record{
			Topic:     w.topic,
			Partition: int32(w.partitionOf(i)),
			Key:       []byte(strconv.Itoa(w.keyOf(i))),
			Value:     v,
		})
		if len(recs) == batch || i == w.records-1 {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				return fmt.Errorf("producing to %s: %w", w.topic, err)
			}
			recs = recs[:0]
		}
	}
	return nil
}

// run times one peer over one workload, as the main harness does
// (bench/run.go): t0 is taken just before the peer's client is created;
// seconds runs from the start of the first handler call to the return of
// the call that completes the last distinct record.
type run struct {
	w        *workload
	t0       time.Time
	first    atomic.Int64 // ns since t0 at the first handler start; 0 until then
	last     atomic.Int64 // ns since t0 when the last distinct record was done
	calls    atomic.Int64 // handler calls returned
	distinct atomic.Int64 // distinct records done
	seen     []atomic.Bool
	measured []atomic.Int64 // measured handler duration by record index (ns)
	done     chan struct{}
}

func newRun(w *workload) *run {
	r := &run{w: w, seen: make([]atomic.Bool, w.records), done: make(chan struct{})}
	if w.lat != nil {
		r.measured = make([]atomic.Int64, w.records)
	}
	return r
}

// handle is every peer's handler: it reads the record index from the
// value, sleeps the nominal latency (measuring the real duration), and
// counts the record. A record handled twice (a redelivery) counts once.
func (r *run) handle(value []byte) {
	if r.first.Load() == 0 {
		r.first.CompareAndSwap(0, max(int64(time.Since(r.t0)), 1))
	}
	i := int(binary.LittleEndian.Uint32(value))
	if r.w.lat != nil {
		start := time.Now()
		time.Sleep(r.w.lat[i])
		r.measured[i].Store(int64(time.Since(start)))
	}
	r.calls.Add(1)
	if !r.seen[i].Swap(true) && r.distinct.Add(1) == int64(r.w.records) {
		r.last.Store(int64(time.Since(r.t0)))
		close(r.done)
	}
}

func (r *run) seconds() float64 { return time.Duration(r.last.Load() - r.first.Load()).Seconds() }
func (r *run) startup() float64 { return time.Duration(r.first.Load()).Seconds() }

func (r *run) durations() []time.Duration {
	d := make([]time.Duration, len(r.measured))
	for i := range d {
		d[i] = time.Duration(r.measured[i].Load())
	}
	return d
}
