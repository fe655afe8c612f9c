package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bench/internal/report"
)

const (
	hotKeyPartitions = 4
	hotKeyKeys       = 1000 // key 0 is the hot one, keys 1..999 the others
	hotKeyLatency    = time.Millisecond
)

// hotWorkload is the hot-key records in log order: hot[i] says whether
// record i carries the hot key; other records take keys 1..999 round-robin.
// Record i is hot when ⌊(i+1)·share⌋ > ⌊i·share⌋, which spreads the hot
// records evenly (share 0.5: every other record).
type hotWorkload struct {
	keys []int // key id of each record
	hot  bool  // the hot records are included
}

func makeHotWorkload(n int, share float64, withHot bool) hotWorkload {
	var w hotWorkload
	w.hot = withHot
	other := 0
	for i := range n {
		if int(float64(i+1)*share) > int(float64(i)*share) {
			if withHot {
				w.keys = append(w.keys, 0)
			}
			continue
		}
		w.keys = append(w.keys, 1+other%(hotKeyKeys-1))
		other++
	}
	return w
}

// hotConfig is a buffer configuration the scenario runs under.
type hotConfig struct {
	name string
	opts func(n int) []orderly.Option
}

var hotConfigs = []hotConfig{
	{"default buffers", func(int) []orderly.Option { return nil }},
	{"credit ≥ records", func(n int) []orderly.Option {
		return []orderly.Option{
			orderly.WithPartitionBuffer(n, 1<<30), orderly.WithEngineBuffer(n, 1<<30),
			orderly.WithMaxUncommitted(n),
		}
	}},
}

// runHotKey compares the throughput of the other keys with a hot key
// carrying share of the records against the same run with the hot
// records removed (the same other records, keys, partitions and order).
func runHotKey(o *options, out *printer) error {
	n := o.recordsOr(20000)
	if !(o.hotShare > 0 && o.hotShare < 1) {
		return fmt.Errorf("-hot-share %v: must be in (0, 1)", o.hotShare)
	}
	for _, cfg := range hotConfigs {
		without, err := runHotRow(o, makeHotWorkload(n, o.hotShare, false), cfg)
		if err != nil {
			return fmt.Errorf("hot-key without hot key, %s: %w", cfg.name, err)
		}
		with, err := runHotRow(o, makeHotWorkload(n, o.hotShare, true), cfg)
		if err != nil {
			return fmt.Errorf("hot-key with hot key, %s: %w", cfg.name, err)
		}
		with.Ratio = with.OtherRecordsPerSec / without.OtherRecordsPerSec
		out.add(without)
		out.add(with)
	}
	out.flush(fmt.Sprintf("hot-key: %d keys, %d partitions, handler sleeps %v, concurrency %d; ratio = other keys' records/s with the hot key ÷ without; peak_held: most records (bytes) the engine held; reread/records: records read a second time from the log ÷ records",
		hotKeyKeys, hotKeyPartitions, hotKeyLatency, o.concurrency))
	return nil
}

func runHotRow(o *options, w hotWorkload, cfg hotConfig) (Result, error) {
	log := memory.NewLog()
	if err := log.CreateTopic("t", hotKeyPartitions); err != nil {
		return Result{}, err
	}
	for i, k := range w.keys {
		if _, _, err := log.Produce("t", hotKey(k), indexValue(i)); err != nil {
			return Result{}, err
		}
	}
	return measureHotRow(o, "hot-key", log.Member("bench", []string{"t"}), w, cfg)
}

func hotKey(k int) []byte { return []byte("k" + strconv.Itoa(k)) }

// measureHotRow runs the engine over src, which holds w's records, and
// measures the other keys' throughput, the peak of what the engine held
// and the records it read twice.
func measureHotRow(o *options, scenario string, src orderly.Source, w hotWorkload, cfg hotConfig) (Result, error) {
	n := len(w.keys)
	others := 0
	for _, k := range w.keys {
		if k != 0 {
			others++
		}
	}
	measured := make([]time.Duration, n)
	tr := newTracker(n)
	var otherDone, otherLast atomic.Int64
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		tr.begin()
		i := valueIndex(r)
		start := time.Now()
		time.Sleep(hotKeyLatency)
		measured[i] = time.Since(start)
		if w.keys[i] != 0 && otherDone.Add(1) == int64(others) {
			otherLast.Store(int64(time.Since(tr.t0)))
		}
		tr.end()
		return nil
	})
	opts := append([]orderly.Option{orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(o.concurrency)}, cfg.opts(n)...)
	var watch engineWatch
	if err := runEngineWatched(src, h, tr, o.timeout, nil, &watch, opts...); err != nil {
		return Result{}, err
	}
	// Keys are scoped to partitions, but key ids never share a partition
	// here (one id, one partition), so the id is the ordering key.
	keyOf := func(i int) int { return w.keys[i] }
	lim, total := report.Limit(measured, keyOf, o.concurrency)
	nominal := make([]time.Duration, n)
	for i := range nominal {
		nominal[i] = hotKeyLatency
	}
	nom, _ := report.Limit(nominal, keyOf, o.concurrency)
	secs := tr.seconds()
	otherSecs := time.Duration(otherLast.Load() - tr.first.Load()).Seconds()
	note := "no hot key; " + cfg.name
	if w.hot {
		note = fmt.Sprintf("hot key %.0f%%; %s", 100*o.hotShare, cfg.name)
	}
	return Result{
		Scenario: scenario, Mode: "key", Keys: distinct(w.keys), Partitions: hotKeyPartitions, Records: n,
		Concurrency: o.concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs, StartupSeconds: tr.startup(),
		LimitSeconds: lim.Seconds(), NominalLimitSeconds: nom.Seconds(), Efficiency: lim.Seconds() / secs, HandlerSeconds: total.Seconds(),
		OtherRecords: others, OtherSeconds: otherSecs, OtherRecordsPerSec: float64(others) / otherSecs,
		PeakHeldRecords: watch.peakRecords, PeakHeldBytes: watch.peakBytes,
		LimitRecords: watch.final.EngineLimits.Records, LimitBytes: watch.final.EngineLimits.Bytes,
		RecordsReread: int64(watch.final.RecordsReread), RereadShare: float64(watch.final.RecordsReread) / float64(n),
		Note: note,
	}, nil
}

func distinct(keys []int) int {
	seen := map[int]bool{}
	for _, k := range keys {
		seen[k] = true
	}
	return len(seen)
}
