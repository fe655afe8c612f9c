package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Result is one line of output. The JSON names are the harness's
// machine-readable format; zero-valued optional fields are left out.
type Result struct {
	Scenario    string `json:"scenario"`
	Mode        string `json:"mode"` // serial, key, unordered, baseline, ...
	Keys        int    `json:"keys"` // distinct ordering keys; 1 for serial, 0 for unordered and baselines
	Partitions  int    `json:"partitions"`
	Records     int    `json:"records"`
	Concurrency int    `json:"concurrency,omitempty"`

	// Seconds runs from the first handler call's start to the last
	// handler call's return (for the baselines: first record read to last).
	Seconds        float64 `json:"seconds"`
	RecordsPerSec  float64 `json:"records_per_sec"`
	StartupSeconds float64 `json:"startup_seconds"` // Engine.Run called → first handler call

	// Latency-bound scenarios: see README.md, "Efficiency".
	LimitSeconds        float64 `json:"limit_seconds,omitempty"`
	NominalLimitSeconds float64 `json:"nominal_limit_seconds,omitempty"`
	Efficiency          float64 `json:"efficiency,omitempty"`
	NominalEfficiency   float64 `json:"nominal_efficiency,omitempty"`
	HandlerSeconds      float64 `json:"handler_seconds,omitempty"` // Σ measured handler durations

	// overhead
	NsPerRecord     float64 `json:"ns_per_record,omitempty"`
	AllocsPerRecord float64 `json:"allocs_per_record,omitempty"`
	BytesPerRecord  float64 `json:"bytes_per_record,omitempty"`

	// overhead (engine ÷ baseline records/s) and hot-key (non-hot
	// throughput with the hot key ÷ without it).
	Ratio float64 `json:"ratio,omitempty"`

	// keys-1m
	PeakRSSMB     float64 `json:"peak_rss_mb,omitempty"`
	BaselineRSSMB float64 `json:"baseline_rss_mb,omitempty"`

	// hot-key
	OtherRecords       int     `json:"other_records,omitempty"`
	OtherSeconds       float64 `json:"other_seconds,omitempty"`
	OtherRecordsPerSec float64 `json:"other_records_per_sec,omitempty"`

	Note string `json:"note,omitempty"`
}

// column is one table column: a header and how to print a result's cell.
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

func keysCell(r Result) string {
	if r.Keys == 0 {
		return "-"
	}
	return strconv.Itoa(r.Keys)
}

var (
	colMode   = column{"mode", func(r Result) string { return r.Mode }}
	colKeys   = column{"keys", keysCell}
	colParts  = column{"parts", func(r Result) string { return strconv.Itoa(r.Partitions) }}
	colRecs   = column{"records", func(r Result) string { return strconv.Itoa(r.Records) }}
	colSecs   = column{"seconds", func(r Result) string { return f(r.Seconds, 3) }}
	colRate   = column{"records/s", func(r Result) string { return f(r.RecordsPerSec, 0) }}
	colStart  = column{"startup_s", func(r Result) string { return f(r.StartupSeconds, 4) }}
	colLimit  = column{"limit_s", func(r Result) string { return f(r.LimitSeconds, 3) }}
	colNomLim = column{"nominal_limit_s", func(r Result) string { return f(r.NominalLimitSeconds, 3) }}
	colEff    = column{"efficiency", func(r Result) string { return f(r.Efficiency, 3) }}
	colNomEff = column{"nominal_eff", func(r Result) string { return f(r.NominalEfficiency, 3) }}
	colNs     = column{"ns/record", func(r Result) string { return f(r.NsPerRecord, 0) }}
	colAllocs = column{"allocs/record", func(r Result) string { return f(r.AllocsPerRecord, 2) }}
	colBytes  = column{"B/record", func(r Result) string { return f(r.BytesPerRecord, 0) }}
	colRatio  = column{"ratio", func(r Result) string { return f(r.Ratio, 3) }}
	colPeak   = column{"peak_rss_mb", func(r Result) string { return f(r.PeakRSSMB, 1) }}
	colBase   = column{"baseline_rss_mb", func(r Result) string { return f(r.BaselineRSSMB, 1) }}
	colOther  = column{"other_records", func(r Result) string { return strconv.Itoa(r.OtherRecords) }}
	colOSecs  = column{"other_seconds", func(r Result) string { return f(r.OtherSeconds, 3) }}
	colORate  = column{"other_records/s", func(r Result) string { return f(r.OtherRecordsPerSec, 0) }}
	colNote   = column{"note", func(r Result) string { return r.Note }}
)

// columns lists what the table of a scenario shows.
var columns = map[string][]column{
	"pc-table":         {colMode, colKeys, colRecs, colSecs, colLimit, colNomLim, colEff, colNomEff, colStart},
	"overhead":         {colMode, colKeys, colParts, colRecs, colSecs, colRate, colNs, colAllocs, colBytes, colRatio},
	"tracing-overhead": {colMode, colKeys, colParts, colRecs, colSecs, colRate, colNs, colAllocs, colBytes, colRatio},
	"keys-1m":          {colMode, colKeys, colParts, colRecs, colSecs, colRate, colBase, colPeak, colNote},
	"hot-key":          {colMode, colKeys, colParts, colRecs, colOther, colOSecs, colORate, colSecs, colLimit, colEff, colRatio, colNote},
}

// printer writes results as tables (one per scenario, flushed when the
// scenario ends) or as JSON lines.
type printer struct {
	w      io.Writer
	json   bool
	buf    []Result
	latest []Result // every result printed, for charts and the child protocol
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

func (p *printer) add(r Result) {
	p.latest = append(p.latest, r)
	if p.json {
		b, _ := json.Marshal(r)
		fmt.Fprintln(p.w, string(b))
		return
	}
	p.buf = append(p.buf, r)
}

// flush prints the table of the results added since the last flush.
func (p *printer) flush(title string) {
	if p.json || len(p.buf) == 0 {
		return
	}
	cols := columns[p.buf[0].Scenario]
	fmt.Fprintf(p.w, "\n== %s\n", title)
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t")+"\t")
	for _, r := range p.buf {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = c.cell(r)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
	p.buf = p.buf[:0]
}
