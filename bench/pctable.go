package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bench/internal/report"
)

// pcRow is one row of the parallel-consumer table: an ordering mode and,
// for ByKey, the number of keys.
type pcRow struct {
	mode string // serial, key, unordered
	keys int    // key: distinct keys; serial: 1; unordered: 0
}

func (r pcRow) String() string {
	if r.mode == "key" {
		return "key-" + strconv.Itoa(r.keys)
	}
	return r.mode
}

var pcRows = []pcRow{
	{"serial", 1},
	{"key", 1}, {"key", 2}, {"key", 5}, {"key", 10}, {"key", 20}, {"key", 50},
	{"key", 100}, {"key", 1000}, {"key", 10000},
	{"unordered", 0},
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
			rows = append(rows, pcRow{"serial", 1})
		case "unordered":
			rows = append(rows, pcRow{"unordered", 0})
		default:
			n, err := strconv.Atoi(strings.TrimPrefix(f, "key-"))
			if err != nil || n < 1 {
				return nil, fmt.Errorf("-rows: %q is not serial, unordered, key-N or N", f)
			}
			rows = append(rows, pcRow{"key", n})
		}
	}
	return rows, nil
}

// pcKeys is the key count the records of a row carry: serial and
// unordered rows use 10,000 round-robin keys (the mode ignores them).
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
		r, err := runPCRow(o, row, lat)
		if err != nil {
			return fmt.Errorf("pc-table %s: %w", row, err)
		}
		out.add(r)
	}
	out.flush(fmt.Sprintf("pc-table: %d records, sleep U[0,5ms), 1 partition, concurrency %d, max uncommitted 1000", n, o.concurrency))
	return nil
}

func runPCRow(o *options, row pcRow, lat []time.Duration) (Result, error) {
	n := len(lat)
	keys := pcKeys(row)
	log := memory.NewLog()
	if err := log.CreateTopic("t", 1); err != nil {
		return Result{}, err
	}
	for i := range n {
		if _, err := log.ProduceTo("t", 0, []byte(strconv.Itoa(i%keys)), indexValue(i)); err != nil {
			return Result{}, err
		}
	}
	return measurePCRow(o, "pc-table", log.Member("bench", []string{"t"}), row, lat)
}

// measurePCRow runs one engine with the pc-table options over src, whose
// records carry row's keys (pcKeys) and their indices (indexValue), and
// measures it: seconds, and the efficiency limits of the measured and the
// nominal latencies. scenario names the result.
func measurePCRow(o *options, scenario string, src orderly.Source, row pcRow, lat []time.Duration) (Result, error) {
	n := len(lat)
	keys := pcKeys(row)
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
		return i % keys
	}
	lim, total := report.Limit(measured, keyOf, o.concurrency)
	nom, _ := report.Limit(lat, keyOf, o.concurrency)
	secs := tr.seconds()
	return Result{
		Scenario: scenario, Mode: row.mode, Keys: row.keys, Partitions: 1, Records: n,
		Concurrency: o.concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs,
		StartupSeconds: tr.startup(),
		LimitSeconds:   lim.Seconds(), NominalLimitSeconds: nom.Seconds(),
		Efficiency: lim.Seconds() / secs, NominalEfficiency: nom.Seconds() / secs,
		HandlerSeconds: total.Seconds(),
	}, nil
}
