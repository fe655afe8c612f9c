// Command peers runs orderly beside what Go users write today to consume
// Kafka — a plain sarama consumer group, watermill-kafka's router and
// franz-go's goroutine-per-partition consumer — on one in-process kfake
// cluster and the same records, and prints each one's seconds, efficiency
// and orderly's speed-up over it.
//
//	cd bench/peers && go run . [flags]
//
// It is a module of its own (github.com/orderly-go/orderly/bench/peers),
// so that the peer libraries stay out of orderly's go.mod. See the
// "peers" section of bench/README.md for what it measures and the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderly-go/orderly/bench/internal/report"
)

type options struct {
	json           bool
	scenario       string
	latencyRecords int
	noopRecords    int
	partitions     []int
	peers          []peer
	keys           int
	concurrency    int
	seed           uint64
	brokers        int
	chart          string
	timeout        time.Duration
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	o := &options{}
	var parts, peers string
	fs.BoolVar(&o.json, "json", false, "one JSON object per result line instead of tables")
	fs.StringVar(&o.scenario, "scenario", "all", "latency (the pc-table latencies), noop, or all")
	fs.IntVar(&o.latencyRecords, "latency-records", 10_000, "records of the latency-bound runs")
	fs.IntVar(&o.noopRecords, "records", 1_000_000, "records of the no-op runs (100-byte values, 4 partitions)")
	fs.StringVar(&parts, "partitions", "1,4,16", "partition counts of the latency-bound runs (one topic each)")
	fs.StringVar(&peers, "peers", "orderly,sarama,watermill,franz-go", "peers to run, in this order")
	fs.IntVar(&o.keys, "keys", 1000, "distinct keys, round-robin over the records")
	fs.IntVar(&o.concurrency, "concurrency", 100, "orderly's WithMaxConcurrency")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the latencies (the main harness's pc-table default)")
	fs.IntVar(&o.brokers, "brokers", 3, "kfake brokers")
	fs.StringVar(&o.chart, "chart", "", "write the comparison as a PNG to this file (e.g. peers.png)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run not done after this")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, s := range strings.Split(parts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-partitions: %q is not a positive number", s)
		}
		o.partitions = append(o.partitions, n)
	}
	for _, name := range strings.Split(peers, ",") {
		i := slices.IndexFunc(allPeers, func(p peer) bool { return p.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("-peers: unknown peer %q (orderly, sarama, watermill, franz-go)", name)
		}
		o.peers = append(o.peers, allPeers[i])
	}
	switch o.scenario {
	case "all", "latency", "noop":
	default:
		return nil, fmt.Errorf("-scenario: %q is not latency, noop or all", o.scenario)
	}
	if o.keys < 1 || o.latencyRecords < 1 || o.noopRecords < 1 || o.concurrency < 1 || o.brokers < 1 {
		return nil, errors.New("-keys, -latency-records, -records, -concurrency and -brokers must be positive")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := &printer{w: os.Stdout, json: o.json}
	out.machine(report.ReadMachine())
	results, err := runAll(o, out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
	if o.chart != "" {
		if err := writeChart(o.chart, results); err != nil {
			fmt.Fprintln(os.Stderr, "peers: chart:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "chart written to", o.chart)
	}
}

// workloads are the topics of one invocation: one latency-bound topic per
// partition count, and the no-op topic.
func workloads(o *options) (latency []*workload, noop *workload) {
	if o.scenario != "noop" {
		lat := report.Latencies(o.latencyRecords, o.seed)
		for _, p := range o.partitions {
			latency = append(latency, &workload{
				scenario: "peers", topic: "latency-p" + strconv.Itoa(p), partitions: p,
				records: o.latencyRecords, keys: o.keys, valueSize: 4, lat: lat,
			})
		}
	}
	if o.scenario != "latency" {
		noop = &workload{
			scenario: "peers-noop", topic: "noop-p4", partitions: 4,
			records: o.noopRecords, keys: o.keys, valueSize: 100,
		}
	}
	return latency, noop
}

// runAll starts the cluster, and per workload produces its records, runs
// every peer on them (each in a fresh consumer group) and prints the
// group's results.
func runAll(o *options, out *printer) ([]Result, error) {
	latency, noop := workloads(o)
	all := latency
	if noop != nil {
		all = append(all, noop)
	}
	cluster, err := newCluster(o.brokers, all...)
	if err != nil {
		return nil, err
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	var results []Result
	for _, w := range all {
		// Produced just before its runs, so that the no-op topic's
		// million records are not in memory during the latency runs.
		start := time.Now()
		if err := produce(context.Background(), brokers, w); err != nil {
			return nil, err
		}
		progress("%s: produced %d records to %d partitions in %.1fs", w.topic, w.records, w.partitions, time.Since(start).Seconds())
		var rs []Result
		for _, p := range o.peers {
			progress("%s: running %s", w.topic, p.name)
			r, err := measure(p, w, brokers, o)
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", p.name, w.topic, err)
			}
			progress("%s: %s took %.3fs (startup %.3fs)", w.topic, p.name, r.Seconds, r.StartupSeconds)
			rs = append(rs, r)
		}
		compare(rs)
		out.print(title(w, o), rs)
		results = append(results, rs...)
	}
	return results, nil
}

func title(w *workload, o *options) string {
	if w.lat != nil {
		return fmt.Sprintf("peers: %d records, sleep U[0,5ms) (seed %d), %d keys, %d partitions; orderly ByKey, concurrency %d, max uncommitted 1000",
			w.records, o.seed, w.keys, w.partitions, o.concurrency)
	}
	return fmt.Sprintf("peers-noop: %d records of %d bytes, no-op handler, %d keys, %d partitions", w.records, w.valueSize, w.keys, w.partitions)
}

// compare fills orderly's speed-up over each peer and, for the no-op runs,
// each peer's records/s relative to plain sarama's.
func compare(rs []Result) {
	var orderlySecs, saramaRate float64
	for _, r := range rs {
		switch r.Peer {
		case "orderly":
			orderlySecs = r.Seconds
		case "sarama":
			saramaRate = r.RecordsPerSec
		}
	}
	for i := range rs {
		if rs[i].Peer != "orderly" && orderlySecs > 0 {
			rs[i].Speedup = rs[i].Seconds / orderlySecs
		}
		if rs[i].Scenario == "peers-noop" && saramaRate > 0 {
			rs[i].Ratio = rs[i].RecordsPerSec / saramaRate
		}
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// stopTimeout bounds the wait for a peer to shut down after its last
// record (leave the group, final commit); shutdown is not timed.
const stopTimeout = time.Minute

// measure runs peer p over w in a fresh consumer group until every record
// was handled, then stops it.
func measure(p peer, w *workload, brokers []string, o *options) (Result, error) {
	r := newRun(w)
	conc := p.concurrency(w, o.concurrency)
	group := "peers-" + p.name + "-" + w.topic
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	r.t0 = time.Now()
	go func() { ran <- p.consume(ctx, brokers, w.topic, group, conc, r.handle) }()
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	select {
	case <-r.done:
	case err := <-ran:
		return Result{}, fmt.Errorf("returned after %d of %d records: %v", r.distinct.Load(), w.records, err)
	case <-timer.C:
		cancel()
		select {
		case <-ran:
		case <-time.After(stopTimeout):
		}
		return Result{}, fmt.Errorf("stalled: %d of %d records handled after %v", r.distinct.Load(), w.records, o.timeout)
	}
	stopping := time.Now()
	cancel()
	res := Result{
		Scenario: w.scenario, Peer: p.name, Mode: p.mode, Keys: w.keys, Partitions: w.partitions,
		Records: w.records, Concurrency: conc,
		Seconds: r.seconds(), StartupSeconds: r.startup(),
		Duplicates: r.calls.Load() - r.distinct.Load(),
	}
	res.RecordsPerSec = float64(w.records) / res.Seconds
	select {
	case err := <-ran:
		if err != nil {
			res.Note = "returned " + err.Error()
		}
		res.ShutdownSeconds = time.Since(stopping).Seconds()
	case <-time.After(stopTimeout):
		res.Note = fmt.Sprintf("did not stop within %v", stopTimeout)
	}
	if w.lat != nil {
		groupOf := w.partitionOf
		if p.mode == "key" {
			groupOf = w.keyOf // each key lives in one partition
		}
		lim, total := report.Limit(r.durations(), groupOf, conc)
		nom, _ := report.Limit(w.lat, groupOf, conc)
		res.LimitSeconds, res.NominalLimitSeconds = lim.Seconds(), nom.Seconds()
		res.Efficiency, res.NominalEfficiency = res.LimitSeconds/res.Seconds, res.NominalLimitSeconds/res.Seconds
		res.HandlerSeconds = total.Seconds()
	}
	return res, nil
}
