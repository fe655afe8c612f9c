package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/orderly-go/orderly/bench/internal/report"
)

// Result is one line of output, in the spirit of the main harness's
// (bench/result.go); zero-valued optional fields are left out of the JSON.
type Result struct {
	Scenario    string `json:"scenario"` // peers (latency-bound) or peers-noop
	Peer        string `json:"peer"`     // orderly, sarama, watermill, franz-go
	Mode        string `json:"mode"`     // the unit handled serially: key (orderly ByKey) or partition
	Keys        int    `json:"keys"`
	Partitions  int    `json:"partitions"`
	Records     int    `json:"records"`
	Concurrency int    `json:"concurrency"` // records handled at once: orderly's limit, or the partitions

	// Seconds runs from the first handler call's start to the return of
	// the handler call that completed the last distinct record.
	Seconds         float64 `json:"seconds"`
	RecordsPerSec   float64 `json:"records_per_sec"`
	StartupSeconds  float64 `json:"startup_seconds"`  // client created → first handler start
	ShutdownSeconds float64 `json:"shutdown_seconds"` // last record done → the consumer returned (leave group, final commit)

	// Latency-bound (peers): see README.md.
	LimitSeconds        float64 `json:"limit_seconds,omitempty"`
	NominalLimitSeconds float64 `json:"nominal_limit_seconds,omitempty"`
	Efficiency          float64 `json:"efficiency,omitempty"`
	NominalEfficiency   float64 `json:"nominal_efficiency,omitempty"`
	HandlerSeconds      float64 `json:"handler_seconds,omitempty"` // Σ measured handler durations

	// Speedup is orderly's speed-up over this peer on the same topic: this
	// peer's seconds ÷ orderly's (absent on orderly's own row).
	Speedup float64 `json:"speedup,omitempty"`
	// Ratio (peers-noop) is this peer's records/s ÷ the plain sarama
	// consumer group's.
	Ratio float64 `json:"ratio,omitempty"`

	Duplicates int64  `json:"duplicates,omitempty"` // handler calls beyond one per record
	Note       string `json:"note,omitempty"`
}

// column is one table column: a header and how to print a result's cell.
type column = report.Column[Result]

var (
	colPeer     = column{Head: "peer", Cell: func(r Result) string { return r.Peer }}
	colMode     = column{Head: "mode", Cell: func(r Result) string { return r.Mode }}
	colParts    = column{Head: "parts", Cell: func(r Result) string { return strconv.Itoa(r.Partitions) }}
	colRecs     = column{Head: "records", Cell: func(r Result) string { return strconv.Itoa(r.Records) }}
	colConc     = column{Head: "conc", Cell: func(r Result) string { return strconv.Itoa(r.Concurrency) }}
	colSecs     = column{Head: "seconds", Cell: func(r Result) string { return report.Float(r.Seconds, 3) }}
	colRate     = column{Head: "records/s", Cell: func(r Result) string { return report.Float(r.RecordsPerSec, 0) }}
	colLimit    = column{Head: "limit_s", Cell: func(r Result) string { return report.Float(r.LimitSeconds, 3) }}
	colEff      = column{Head: "efficiency", Cell: func(r Result) string { return report.Float(r.Efficiency, 3) }}
	colNomLim   = column{Head: "nominal_limit_s", Cell: func(r Result) string { return report.Float(r.NominalLimitSeconds, 3) }}
	colStart    = column{Head: "startup_s", Cell: func(r Result) string { return report.Float(r.StartupSeconds, 3) }}
	colShutdown = column{Head: "shutdown_s", Cell: func(r Result) string { return report.Float(r.ShutdownSeconds, 3) }}
	colSpeedup  = column{Head: "orderly_speedup", Cell: func(r Result) string { return report.Float(r.Speedup, 2) }}
	colRatio    = column{Head: "vs_sarama", Cell: func(r Result) string { return report.Float(r.Ratio, 3) }}
	colDup      = column{Head: "dups", Cell: func(r Result) string { return strconv.FormatInt(r.Duplicates, 10) }}
)

var columns = map[string][]column{
	"peers":      {colPeer, colMode, colParts, colRecs, colConc, colSecs, colLimit, colEff, colNomLim, colStart, colShutdown, colSpeedup, colDup},
	"peers-noop": {colPeer, colMode, colParts, colRecs, colConc, colSecs, colRate, colStart, colShutdown, colRatio, colSpeedup, colDup},
}

// printer writes results as tables or JSON lines.
type printer struct {
	w    io.Writer
	json bool
}

func (p *printer) machine(m report.Machine) { report.WriteMachine(p.w, m, p.json) }

// print writes one group of results: JSON lines, or a table under title.
func (p *printer) print(title string, rs []Result) {
	if len(rs) == 0 {
		return
	}
	if p.json {
		for _, r := range rs {
			report.WriteJSON(p.w, r)
		}
		return
	}
	report.WriteTable(p.w, title, columns[rs[0].Scenario], rs)
	for _, r := range rs {
		if r.Note != "" {
			fmt.Fprintf(p.w, "note (%s, %d partitions): %s\n", r.Peer, r.Partitions, r.Note)
		}
	}
}
