package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestPeers runs every peer on a few hundred records of each workload on
// one kfake cluster: each must handle every record and stop. It asserts
// no speed (speed lives in the program's output).
func TestPeers(t *testing.T) {
	o := &options{
		latencyRecords: 300, noopRecords: 2000, partitions: []int{1, 4},
		peers: allPeers, keys: 100, concurrency: 100, seed: 1, brokers: 1,
		timeout: time.Minute, scenario: "all",
	}
	latency, noop := workloads(o)
	ws := append(latency, noop)
	cluster, err := newCluster(o.brokers, ws...)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	var results []Result
	for _, w := range ws {
		if err := produce(context.Background(), brokers, w); err != nil {
			t.Fatal(err)
		}
		var rs []Result
		for _, p := range o.peers {
			r, err := measure(p, w, brokers, o)
			if err != nil {
				t.Fatalf("%s on %s: %v", p.name, w.topic, err)
			}
			if r.Note != "" {
				t.Errorf("%s on %s: %s", p.name, w.topic, r.Note)
			}
			if r.Records != w.records || r.Seconds <= 0 || r.RecordsPerSec <= 0 {
				t.Errorf("%s on %s: implausible result %+v", p.name, w.topic, r)
			}
			if w.lat != nil && (r.LimitSeconds <= 0 || r.Efficiency <= 0 || r.HandlerSeconds <= 0) {
				t.Errorf("%s on %s: no limit: %+v", p.name, w.topic, r)
			}
			t.Logf("%s on %s: %.3fs (startup %.3fs, limit %.3fs)", p.name, w.topic, r.Seconds, r.StartupSeconds, r.LimitSeconds)
			rs = append(rs, r)
		}
		compare(rs)
		results = append(results, rs...)
	}
	if err := writeChart(filepath.Join(t.TempDir(), "peers.png"), results); err != nil {
		t.Fatal(err)
	}
}
