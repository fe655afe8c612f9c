package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bench/internal/report"
)

// pcRow is one row of the parallel-consumer table: an ordering mode and,
// for ByKey, the number of keys and how records draw them.
type pcRow struct {
	mode string // serial, key, unordered
	keys int    // key: distinct keys; serial: 1; unordered: 0
	zipf bool   // key: keys drawn Zipf (s = zipfS) instead of round-robin
}

func (r pcRow) String() string {
	switch {
	case r.mode == "key" && r.zipf:
		return "key-zipf-" + strconv.Itoa(r.keys)
	case r.mode == "key":
		return "key-" + strconv.Itoa(r.keys)
	}
	return r.mode
}

// zipfS is the exponent of the skewed key distribution: real keys are
// skewed, and all-distinct keys measure unordered work under the name
// "key".
const zipfS = 1.1

var pcRows = []pcRow{
	{mode: "serial", keys: 1},
	{mode: "key", keys: 1}, {mode: "key", keys: 2}, {mode: "key", keys: 5}, {mode: "key", keys: 10},
	{mode: "key", keys: 20}, {mode: "key", keys: 50}, {mode: "key", keys: 100}, {mode: "key", keys: 1000},
	{mode: "key", keys: 10000}, {mode: "key", keys: 10000, zipf: true},
	{mode: "unordered", keys: 0},
}

// keySequence returns the key index of each of n records of row: round
// robin over the row's keys, or drawn Zipf(zipfS) over them (seeded, so
// every run and client sees the same sequence). Serial and unordered rows
// carry 10,000 round-robin keys (the mode ignores them).
func keySequence(row pcRow, n int, seed uint64) []int {
	keys := pcKeys(row)
	out := make([]int, n)
	if !row.zipf {
		for i := range out {
			out[i] = i % keys
		}
		return out
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 0x5eed)), zipfS, 1, uint64(keys-1))
	for i := range out {
		out[i] = int(z.Uint64())
	}
	return out
}

// parseRows reads -rows: a comma list of serial, unordered, key-N or N.
func parseRows(s string) ([]pcRow, error) {
	if s == "" || s == "all" {
		return pcRows, nil
	}
	var rows []pcRow
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "serial":
			rows = append(rows, pcRow{mode: "serial", keys: 1})
		case "unordered":
			rows = append(rows, pcRow{mode: "unordered"})
		default:
			zipf := strings.HasPrefix(f, "key-zipf-")
			n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(f, "key-zipf-"), "key-"))
			if err != nil || n < 2 && zipf || n < 1 {
				return nil, fmt.Errorf("-rows: %q is not serial, unordered, key-N, key-zipf-N or N", f)
			}
			rows = append(rows, pcRow{mode: "key", keys: n, zipf: zipf})
		}
	}
	return rows, nil
}

// pcKeys is the key count the records of a row carry: serial and
// unordered rows use 10,000 keys (the mode ignores them).
func pcKeys(row pcRow) int {
	if row.mode == "key" {
		return row.keys
	}
	return 10000
}

func runPCTable(o *options, out *printer) error {
	rows, err := parseRows(o.rows)
	if err != nil {
		return err
	}
	n := o.recordsOr(10000)
	lat := report.Latencies(n, o.seed)
	for _, row := range rows {
		r, err := runPCRow(o, row, lat, keySequence(row, n, o.seed))
		if err != nil {
			return fmt.Errorf("pc-table %s: %w", row, err)
		}
		out.add(r)
	}
	out.flush(fmt.Sprintf("pc-table: %d records, sleep U[0,5ms), 1 partition, concurrency %d, max uncommitted 1000", n, o.concurrency))
	return nil
}

func runPCRow(o *options, row pcRow, lat []time.Duration, keys []int) (Result, error) {
	n := len(lat)
	log := memory.NewLog()
	if err := log.CreateTopic("t", 1); err != nil {
		return Result{}, err
	}
	for i := range n {
		if _, err := log.ProduceTo("t", 0, []byte(strconv.Itoa(keys[i])), indexValue(i)); err != nil {
			return Result{}, err
		}
	}
	return measurePCRow(o, "pc-table", log.Member("bench", []string{"t"}), row, lat, keys)
}

// measurePCRow runs one engine with the pc-table options over src, whose
// records carry the keys of keySeq and their indices (indexValue), and
// measures it: seconds, and the efficiency limits of the measured and the
// nominal latencies. scenario names the result.
func measurePCRow(o *options, scenario string, src orderly.Source, row pcRow, lat []time.Duration, keySeq []int) (Result, error) {
	n := len(lat)
	measured := make([]time.Duration, n)
	tr := newTracker(n)
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		tr.begin()
		i := valueIndex(r)
		start := time.Now()
		time.Sleep(lat[i])
		measured[i] = time.Since(start)
		tr.end()
		return nil
	})
	var ordering orderly.Ordering
	switch row.mode {
	case "serial":
		ordering = orderly.Serial()
	case "unordered":
		ordering = orderly.Unordered()
	default:
		ordering = orderly.ByKey()
	}
	err := runEngine(src, h, tr, o.timeout, nil,
		orderly.WithOrdering(ordering),
		orderly.WithMaxConcurrency(o.concurrency),
		orderly.WithMaxUncommitted(1000),
		orderly.WithPartitionBuffer(1000, 16<<20),
	)
	if err != nil {
		return Result{}, err
	}
	keyOf := func(i int) int {
		switch row.mode {
		case "serial":
			return 0
		case "unordered":
			return -1
		}
		return keySeq[i]
	}
	lim, total := report.Limit(measured, keyOf, o.concurrency)
	nom, _ := report.Limit(lat, keyOf, o.concurrency)
	secs := tr.seconds()
	mode := row.mode
	if row.zipf {
		mode = "key-zipf"
	}
	return Result{
		Scenario: scenario, Mode: mode, Keys: row.keys, Partitions: 1, Records: n,
		Concurrency: o.concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs,
		StartupSeconds: tr.startup(),
		LimitSeconds:   lim.Seconds(), NominalLimitSeconds: nom.Seconds(),
		Efficiency: lim.Seconds() / secs, NominalEfficiency: nom.Seconds() / secs,
		HandlerSeconds: total.Seconds(),
	}, nil
}
