package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

const (
	overheadPartitions = 4
	overheadKeys       = 10000
)

// allocCounter takes runtime.MemStats and the process's CPU time (user
// plus system, every thread) before and after a run. CPU time per record
// is steadier than wall time on a shared machine: another process's load
// delays a run but does not add to its CPU time (only to its cache misses).
type allocCounter struct {
	n       int
	mallocs [2]uint64
	bytes   [2]uint64
	cpu     [2]time.Duration
}

func (a *allocCounter) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	a.mallocs[a.n], a.bytes[a.n] = ms.Mallocs, ms.TotalAlloc
	a.cpu[a.n] = processCPU()
	a.n++
}

// cpuPerRecord is the process CPU time between the samples per record, in ns.
func (a *allocCounter) cpuPerRecord(records int) float64 {
	return float64(a.cpu[1]-a.cpu[0]) / float64(records)
}

// processCPU is the CPU time the process has used, user plus system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (a *allocCounter) perRecord(records int) (allocs, bytes float64) {
	return float64(a.mallocs[1]-a.mallocs[0]) / float64(records), float64(a.bytes[1]-a.bytes[0]) / float64(records)
}

// runOverhead measures the engine's own cost per record: a no-op handler
// over records produced beforehand, each mode, beside the same records
// read from the log with no engine. Every run reads the one shared log
// through a consumer group of its own.
func runOverhead(o *options, out *printer) error {
	n := o.recordsOr(2_000_000)
	log, err := overheadLog(n)
	if err != nil {
		return err
	}
	runtime.GC()

	base, err := overheadBaseline(o, log, n)
	if err != nil {
		return fmt.Errorf("overhead baseline: %w", err)
	}
	out.add(base)
	zipf, err := overheadLogZipf(n, o.seed)
	if err != nil {
		return err
	}
	for _, mode := range []string{"serial", "key", "key-zipf", "unordered"} {
		l := log
		if mode == "key-zipf" {
			l = zipf
		}
		r, err := overheadEngine(o, l, n, mode)
		if err != nil {
			return fmt.Errorf("overhead %s: %w", mode, err)
		}
		r.Ratio = r.RecordsPerSec / base.RecordsPerSec
		out.add(r)
	}
	out.flush(fmt.Sprintf("overhead: no-op handler, %d records, %d partitions, %d keys, concurrency %d; ratio = engine records/s ÷ baseline",
		n, overheadPartitions, overheadKeys, o.concurrency))
	return nil
}

// overheadLog makes the overhead workload: n small records over
// overheadPartitions partitions, keys "k<i mod overheadKeys>" (the
// partition is the key's FNV-1a hash).
func overheadLog(n int) (*memory.Log, error) {
	return overheadLogKeys(n, func(i int) int { return i % overheadKeys })
}

// overheadLogZipf is overheadLog with keys drawn Zipf(zipfS) over
// overheadKeys: a few hot keys and a long tail, as real keys are.
func overheadLogZipf(n int, seed uint64) (*memory.Log, error) {
	keys := keySequence(pcRow{mode: "key", keys: overheadKeys, zipf: true}, n, seed)
	return overheadLogKeys(n, func(i int) int { return keys[i] })
}

// overheadLogKeys makes the overhead workload with record i keyed
// "k<key(i)>".
func overheadLogKeys(n int, key func(i int) int) (*memory.Log, error) {
	log := memory.NewLog()
	if err := log.CreateTopic("t", overheadPartitions); err != nil {
		return nil, err
	}
	keys := make([][]byte, overheadKeys)
	for k := range keys {
		keys[k] = []byte("k" + strconv.Itoa(k))
	}
	value := []byte("v")
	ts := time.Now()
	for i := range n {
		if _, err := log.ProduceRecord(orderly.Record{Topic: "t", Partition: -1, Key: keys[key(i)], Value: value, Timestamp: ts}); err != nil {
			return nil, err
		}
	}
	return log, nil
}

func overheadEngine(o *options, log *memory.Log, n int, mode string) (Result, error) {
	ordering := map[string]orderly.Ordering{"serial": orderly.Serial(), "key": orderly.ByKey(), "key-zipf": orderly.ByKey(), "unordered": orderly.Unordered()}[mode]
	tr := newTracker(n)
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
		tr.begin()
		tr.end()
		return nil
	})
	var started func(*orderly.Engine) (func(), error)
	var polls int64
	if o.inspect.mounted {
		started = func(eng *orderly.Engine) (func(), error) {
			stop, err := o.inspect.mount(eng)
			if err != nil {
				return nil, err
			}
			return func() { polls = stop() }, nil
		}
	}
	runtime.GC()
	var ac allocCounter
	err := runEngineWith(log.Member("engine-"+mode, []string{"t"}), h, tr, o.timeout, ac.sample, started, nil,
		orderly.WithOrdering(ordering), orderly.WithMaxConcurrency(o.concurrency))
	if err != nil {
		return Result{}, err
	}
	keys := map[string]int{"serial": overheadPartitions, "key": overheadKeys, "key-zipf": overheadKeys, "unordered": 0}[mode]
	r := overheadResult(mode, keys, n, o.concurrency, tr, &ac)
	r.Note = o.inspect.note(polls)
	return r, nil
}

// overheadBaseline reads the records with no engine: a Member whose serve
// counts what Records delivers and, when the claim is revoked, commits the
// next offset once.
func overheadBaseline(o *options, log *memory.Log, n int) (Result, error) {
	tr := newTracker(n)
	m := log.Member("baseline", []string{"t"})
	runtime.GC()
	var ac allocCounter
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ac.sample()
	tr.t0 = time.Now()
	consumed := make(chan error, 1)
	var commitErrs atomic.Int64
	go func() {
		consumed <- m.Consume(ctx, func(c orderly.Claim) {
			next := int64(-1)
			for b := range c.Records() {
				for _, r := range b {
					tr.begin()
					next = r.Offset + 1
					tr.end()
				}
			}
			if next >= 0 {
				if err := c.Commit(context.Background(), next, ""); err != nil {
					commitErrs.Add(1)
				}
			}
		})
	}()
	select {
	case <-tr.done:
	case <-time.After(o.timeout):
		cancel()
		<-consumed
		return Result{}, fmt.Errorf("%w: %d of %d records read", errStalled, tr.count.Load(), n)
	}
	ac.sample()
	cancel()
	if err := <-consumed; err != nil {
		return Result{}, err
	}
	if commitErrs.Load() > 0 {
		return Result{}, fmt.Errorf("%d final commits failed", commitErrs.Load())
	}
	return overheadResult("baseline", 0, n, 0, tr, &ac), nil
}

func overheadResult(mode string, keys, n, concurrency int, tr *tracker, ac *allocCounter) Result {
	secs := tr.seconds()
	allocs, bytes := ac.perRecord(n)
	return Result{
		Scenario: "overhead", Mode: mode, Keys: keys, Partitions: overheadPartitions, Records: n,
		Concurrency: concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs,
		StartupSeconds: tr.startup(), NsPerRecord: secs * 1e9 / float64(n), CPUNsPerRecord: ac.cpuPerRecord(n),
		AllocsPerRecord: allocs, BytesPerRecord: bytes,
	}
}
