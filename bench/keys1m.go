package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

const (
	keys1MKeys       = 1_000_000
	keys1MPartitions = 4
	rssTargetMB      = 256
)

// runKeys1M streams 1,000,000 distinct keys (each twice: record i has key
// i mod 1,000,000) through ByKey with a no-op handler and reports the
// process's peak RSS. Each source runs in a fresh child process (this
// program re-executed with -in-process) so that nothing run before it
// inflates the peak.
func runKeys1M(o *options, out *printer) error {
	sources := []string{o.source}
	if o.source == "both" {
		sources = []string{"memory", "stream"}
	}
	for _, src := range sources {
		if src != "memory" && src != "stream" {
			return fmt.Errorf("-source %q: want memory, stream or both", src)
		}
		var (
			r   Result
			err error
		)
		if o.inProcess {
			r, err = keys1MRun(o, src)
		} else {
			r, err = keys1MChild(o, src)
		}
		if err != nil {
			return fmt.Errorf("keys-1m %s: %w", src, err)
		}
		out.add(r)
	}
	out.flush(fmt.Sprintf("keys-1m: %d keys, ByKey, no-op handler, %d partitions, concurrency %d; target peak RSS ≤ %d MB",
		keys1MKeys, keys1MPartitions, o.concurrency, rssTargetMB))
	return nil
}

// keys1MChild runs one source in a child process and reads its result.
func keys1MChild(o *options, src string) (Result, error) {
	args := []string{"keys-1m", "-in-process", "-json", "-source", src,
		"-records", strconv.Itoa(o.recordsOr(2 * keys1MKeys)),
		"-concurrency", strconv.Itoa(o.concurrency), "-timeout", o.timeout.String()}
	if o.cpuprofile != "" {
		args = append(args, "-cpuprofile", o.cpuprofile+".keys-1m-"+src)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("child process: %w", err)
	}
	s := bufio.NewScanner(bytes.NewReader(stdout))
	for s.Scan() {
		var r Result
		if err := json.Unmarshal(s.Bytes(), &r); err == nil && r.Scenario == "keys-1m" {
			return r, nil
		}
	}
	return Result{}, fmt.Errorf("child printed no result: %q", stdout)
}

// keys1MKey is record i's key: i mod 1,000,000 in 3 bytes.
func keys1MKey(i int) []byte {
	k := uint32(i % keys1MKeys)
	return []byte{byte(k >> 16), byte(k >> 8), byte(k)}
}

func keys1MRun(o *options, src string) (Result, error) {
	n := o.recordsOr(2 * keys1MKeys)
	var source orderly.Source
	switch src {
	case "memory":
		log := memory.NewLog()
		if err := log.CreateTopic("t", keys1MPartitions); err != nil {
			return Result{}, err
		}
		ts := time.Now()
		for i := range n {
			if _, err := log.ProduceRecord(orderly.Record{Topic: "t", Partition: -1, Key: keys1MKey(i), Timestamp: ts}); err != nil {
				return Result{}, err
			}
		}
		source = log.Member("bench", []string{"t"})
	case "stream":
		source = newStreamSource(n, keys1MPartitions, keys1MKey)
	}
	runtime.GC()
	baseline := procStatusMB("VmRSS")
	tr := newTracker(n)
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
		tr.begin()
		tr.end()
		return nil
	})
	if err := runEngine(source, h, tr, o.timeout, nil, orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(o.concurrency)); err != nil {
		return Result{}, err
	}
	peak := procStatusMB("VmHWM")
	secs := tr.seconds()
	verdict := "peak ≤ 256 MB: met"
	if peak > rssTargetMB {
		verdict = "peak ≤ 256 MB: NOT met"
	}
	return Result{
		Scenario: "keys-1m", Mode: "key", Keys: min(n, keys1MKeys), Partitions: keys1MPartitions, Records: n,
		Concurrency: o.concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs, StartupSeconds: tr.startup(),
		PeakRSSMB: peak, BaselineRSSMB: baseline,
		Note: "source=" + src + "; " + verdict,
	}, nil
}

// streamSource is an orderly.Source that generates its records on the fly
// and keeps none: the memory the process holds is the engine's (and the
// garbage collector's headroom). Record i has key key(i) and goes to
// partition hash(key) mod partitions, so a key stays in one partition;
// each partition's records come in increasing i with offsets 0, 1, 2, ...
//
// It is a one-member group with no rebalances: one claim per partition,
// revoked when Consume's context is done.
type streamSource struct {
	n, partitions int
	key           func(int) []byte
}

func newStreamSource(n, partitions int, key func(int) []byte) *streamSource {
	return &streamSource{n: n, partitions: partitions, key: key}
}

func (s *streamSource) partitionOf(k []byte) int32 {
	h := uint32(2166136261)
	for _, b := range k {
		h = (h ^ uint32(b)) * 16777619
	}
	return int32(h % uint32(s.partitions))
}

func (s *streamSource) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	done := make(chan struct{})
	for p := range s.partitions {
		c := &streamClaim{
			partition: int32(p),
			records:   make(chan []*orderly.Record, 1),
			revoked:   make(chan struct{}),
			resume:    make(chan struct{}, 1),
		}
		// The generator: owned by this claim; it stops when the claim is
		// revoked and closes Records behind it.
		go c.generate(s)
		go func() {
			serve(c)
			done <- struct{}{}
		}()
		go func() {
			<-ctx.Done()
			close(c.revoked)
		}()
	}
	for range s.partitions {
		<-done
	}
	return nil
}

type streamClaim struct {
	partition int32
	records   chan []*orderly.Record
	revoked   chan struct{}
	paused    atomic.Bool
	resume    chan struct{} // a token when Resume is called
}

func (c *streamClaim) generate(s *streamSource) {
	defer close(c.records)
	ts := time.Now()
	var (
		offset int64
		batch  []*orderly.Record // generated, not yet sent
	)
	for i := range s.n {
		k := s.key(i)
		if s.partitionOf(k) != c.partition {
			continue
		}
		for c.paused.Load() {
			select {
			case <-c.resume:
			case <-c.revoked:
				return
			}
		}
		batch = append(batch, &orderly.Record{Topic: "t", Partition: c.partition, Offset: offset, Key: k, Timestamp: ts})
		offset++
		if len(batch) < memory.DefaultFetchBuffer {
			continue
		}
		select {
		case c.records <- batch:
			batch = nil
		case <-c.revoked:
			return
		}
	}
	if len(batch) > 0 {
		select {
		case c.records <- batch:
		case <-c.revoked:
			return
		}
	}
	<-c.revoked
}

func (c *streamClaim) Topic() string                     { return "t" }
func (c *streamClaim) Partition() int32                  { return c.partition }
func (c *streamClaim) Start() orderly.Position           { return orderly.Position{Offset: orderly.NoOffset} }
func (c *streamClaim) Records() <-chan []*orderly.Record { return c.records }
func (c *streamClaim) Revoked() <-chan struct{}          { return c.revoked }
func (c *streamClaim) Pause()                            { c.paused.Store(true) }
func (c *streamClaim) Resume() {
	c.paused.Store(false)
	select {
	case c.resume <- struct{}{}:
	default:
	}
}
func (c *streamClaim) Commit(context.Context, int64, string) error { return nil }
