package main

import (
	"io"
	"slices"
	"strconv"

	"github.com/orderly-go/orderly/bench/internal/report"
)

// Result is one line of output, in the spirit of the main harness's
// (bench/result.go); zero-valued optional fields are left out of the JSON.
type Result struct {
	Scenario       string  `json:"scenario"` // protoactor (one run) or protoactor-summary (medians)
	Mode           string  `json:"mode"`     // plain, per-key (bridge, an actor per key) or target (bridge, one actor)
	Round          int     `json:"round,omitempty"`
	Rounds         int     `json:"rounds,omitempty"` // summary: runs the median is taken over
	Keys           int     `json:"keys"`
	Partitions     int     `json:"partitions"`
	Records        int     `json:"records"`
	Concurrency    int     `json:"concurrency"`
	LatencySeconds float64 `json:"latency_seconds"` // work per record (a sleep); 0 for no-op
	Actors         int     `json:"actors,omitempty"`

	// Seconds runs from the first handler call's start to the last
	// handler call's return.
	Seconds         float64 `json:"seconds"`
	RecordsPerSec   float64 `json:"records_per_sec"`
	NsPerRecord     float64 `json:"ns_per_record"`
	AllocsPerRecord float64 `json:"allocs_per_record"`
	BytesPerRecord  float64 `json:"bytes_per_record"`

	// Summary rows of the bridge's modes: OverheadNsPerRecord = this
	// mode's ns/record − plain's; Ratio = this mode's records/s ÷ plain's.
	OverheadNsPerRecord float64 `json:"overhead_ns_per_record,omitempty"`
	Ratio               float64 `json:"ratio,omitempty"`
}

// summarize takes, per mode, the run with the median ns/record, and
// compares each bridge mode with plain.
func summarize(runs []Result) []Result {
	var modes []string
	byMode := map[string][]Result{}
	for _, r := range runs {
		if _, ok := byMode[r.Mode]; !ok {
			modes = append(modes, r.Mode)
		}
		byMode[r.Mode] = append(byMode[r.Mode], r)
	}
	var out []Result
	var plain *Result
	for _, m := range modes {
		rs := slices.Clone(byMode[m])
		slices.SortFunc(rs, func(a, b Result) int {
			switch {
			case a.NsPerRecord < b.NsPerRecord:
				return -1
			case a.NsPerRecord > b.NsPerRecord:
				return 1
			}
			return 0
		})
		med := rs[(len(rs)-1)/2]
		med.Scenario, med.Round, med.Rounds = "protoactor-summary", 0, len(rs)
		out = append(out, med)
		if m == "plain" {
			plain = &out[len(out)-1]
		}
	}
	if plain != nil {
		for i := range out {
			if out[i].Mode != "plain" {
				out[i].OverheadNsPerRecord = out[i].NsPerRecord - plain.NsPerRecord
				out[i].Ratio = out[i].RecordsPerSec / plain.RecordsPerSec
			}
		}
	}
	return out
}

type column = report.Column[Result]

var (
	colMode     = column{Head: "mode", Cell: func(r Result) string { return r.Mode }}
	colRound    = column{Head: "round", Cell: func(r Result) string { return strconv.Itoa(r.Round) }}
	colRounds   = column{Head: "runs", Cell: func(r Result) string { return strconv.Itoa(r.Rounds) }}
	colActors   = column{Head: "actors", Cell: func(r Result) string { return intOrDash(r.Actors) }}
	colRecs     = column{Head: "records", Cell: func(r Result) string { return strconv.Itoa(r.Records) }}
	colSecs     = column{Head: "seconds", Cell: func(r Result) string { return report.Float(r.Seconds, 3) }}
	colRate     = column{Head: "records/s", Cell: func(r Result) string { return report.Float(r.RecordsPerSec, 0) }}
	colNs       = column{Head: "ns/record", Cell: func(r Result) string { return report.Float(r.NsPerRecord, 0) }}
	colAllocs   = column{Head: "allocs/record", Cell: func(r Result) string { return report.Float(r.AllocsPerRecord, 2) }}
	colBytes    = column{Head: "B/record", Cell: func(r Result) string { return report.Float(r.BytesPerRecord, 0) }}
	colOverhead = column{Head: "overhead_ns/record", Cell: func(r Result) string { return report.Float(r.OverheadNsPerRecord, 0) }}
	colRatio    = column{Head: "ratio", Cell: func(r Result) string { return report.Float(r.Ratio, 3) }}
)

var columns = map[string][]column{
	"protoactor":         {colMode, colRound, colActors, colRecs, colSecs, colRate, colNs, colAllocs, colBytes},
	"protoactor-summary": {colMode, colRounds, colActors, colRecs, colSecs, colRate, colNs, colAllocs, colBytes, colOverhead, colRatio},
}

func intOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
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
}
