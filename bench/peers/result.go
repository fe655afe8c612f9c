package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
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

type column struct {
	head string
	cell func(Result) string
}

func f(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

var (
	colPeer     = column{"peer", func(r Result) string { return r.Peer }}
	colMode     = column{"mode", func(r Result) string { return r.Mode }}
	colParts    = column{"parts", func(r Result) string { return strconv.Itoa(r.Partitions) }}
	colRecs     = column{"records", func(r Result) string { return strconv.Itoa(r.Records) }}
	colConc     = column{"conc", func(r Result) string { return strconv.Itoa(r.Concurrency) }}
	colSecs     = column{"seconds", func(r Result) string { return f(r.Seconds, 3) }}
	colRate     = column{"records/s", func(r Result) string { return f(r.RecordsPerSec, 0) }}
	colLimit    = column{"limit_s", func(r Result) string { return f(r.LimitSeconds, 3) }}
	colEff      = column{"efficiency", func(r Result) string { return f(r.Efficiency, 3) }}
	colNomLim   = column{"nominal_limit_s", func(r Result) string { return f(r.NominalLimitSeconds, 3) }}
	colStart    = column{"startup_s", func(r Result) string { return f(r.StartupSeconds, 3) }}
	colShutdown = column{"shutdown_s", func(r Result) string { return f(r.ShutdownSeconds, 3) }}
	colSpeedup  = column{"orderly_speedup", func(r Result) string { return f(r.Speedup, 2) }}
	colRatio    = column{"vs_sarama", func(r Result) string { return f(r.Ratio, 3) }}
	colDup      = column{"dups", func(r Result) string { return strconv.FormatInt(r.Duplicates, 10) }}
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

func (p *printer) machine(m Machine) {
	if p.json {
		b, _ := json.Marshal(struct {
			Machine Machine `json:"machine"`
		}{m})
		fmt.Fprintln(p.w, string(b))
		return
	}
	fmt.Fprintln(p.w, m)
}

// print writes one group of results: JSON lines, or a table under title.
func (p *printer) print(title string, rs []Result) {
	if len(rs) == 0 {
		return
	}
	if p.json {
		for _, r := range rs {
			b, _ := json.Marshal(r)
			fmt.Fprintln(p.w, string(b))
		}
		return
	}
	cols := columns[rs[0].Scenario]
	fmt.Fprintf(p.w, "\n== %s\n", title)
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t")+"\t")
	for _, r := range rs {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = c.cell(r)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
	for _, r := range rs {
		if r.Note != "" {
			fmt.Fprintf(p.w, "note (%s, %d partitions): %s\n", r.Peer, r.Partitions, r.Note)
		}
	}
}
