package main

import (
	"io"
	"runtime"
	"strconv"

	"github.com/orderly-go/orderly/bench/internal/report"
)

// Result is one line of output. The JSON names are the harness's
// machine-readable format; zero-valued optional fields are left out.
type Result struct {
	Scenario    string `json:"scenario"`
	Client      string `json:"client,omitempty"` // Kafka scenarios: sarama or franz-go
	Mode        string `json:"mode"`             // serial, key, unordered, baseline, ...
	Keys        int    `json:"keys"`             // distinct ordering keys; 1 for serial, 0 for unordered and baselines
	Partitions  int    `json:"partitions"`
	Records     int    `json:"records"`
	Concurrency int    `json:"concurrency,omitempty"`
	// Procs is the GOMAXPROCS the row ran with (see -procs).
	Procs int `json:"procs"`

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
	NsPerRecord float64 `json:"ns_per_record,omitempty"`
	// CPUNsPerRecord is the process's CPU time (all threads, user plus
	// system) per record: steadier than wall time on a shared machine.
	CPUNsPerRecord  float64 `json:"cpu_ns_per_record,omitempty"`
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
	// PeakHeldRecords and PeakHeldBytes are the most the engine held
	// (Stats.HeldRecords, HeldBytes, sampled every 200 µs); LimitRecords
	// and LimitBytes the engine buffer they are bounded by.
	PeakHeldRecords int64 `json:"peak_held_records,omitempty"`
	PeakHeldBytes   int64 `json:"peak_held_bytes,omitempty"`
	LimitRecords    int64 `json:"limit_records,omitempty"`
	LimitBytes      int64 `json:"limit_bytes,omitempty"`
	// RecordsReread is how many records the engine read a second time from
	// the log for spilled keys (Stats.RecordsReread); RereadShare that ÷
	// records.
	RecordsReread int64   `json:"records_reread,omitempty"`
	RereadShare   float64 `json:"reread_share,omitempty"`

	// priority-flood: P1 latency (produce → handler start), the handler's
	// measured mean latency, P3's share of the handler starts while P1
	// arrived, the P1 arrival rate (0: all at once), P3's configured
	// minimum share, and Little's law per level.
	P1P50Ms    *float64    `json:"p1_p50_ms,omitempty"`
	P1P99Ms    *float64    `json:"p1_p99_ms,omitempty"`
	HandlerMs  *float64    `json:"handler_ms,omitempty"`
	P3Share    *float64    `json:"p3_share,omitempty"`
	P1Rate     *float64    `json:"p1_rate,omitempty"`
	P3MinShare *float64    `json:"p3_min_share,omitempty"`
	P3MaxGap   *int        `json:"p3_max_gap,omitempty"`   // the most P1 starts in a row between two P3 starts
	P3GapBound *int        `json:"p3_gap_bound,omitempty"` // the stated bound on it (PriorityLevel.StarvationBound)
	Little     []LittleRow `json:"little,omitempty"`

	Note string `json:"note,omitempty"`
}

// column is one table column: a header and how to print a result's cell.
type column = report.Column[Result]

func keysCell(r Result) string {
	if r.Keys == 0 {
		return "-"
	}
	return strconv.Itoa(r.Keys)
}

var (
	colClient = column{Head: "client", Cell: func(r Result) string { return r.Client }}
	colMode   = column{Head: "mode", Cell: func(r Result) string { return r.Mode }}
	colProcs  = column{Head: "procs", Cell: func(r Result) string { return strconv.Itoa(r.Procs) }}
	colKeys   = column{Head: "keys", Cell: keysCell}
	colParts  = column{Head: "parts", Cell: func(r Result) string { return strconv.Itoa(r.Partitions) }}
	colRecs   = column{Head: "records", Cell: func(r Result) string { return strconv.Itoa(r.Records) }}
	colSecs   = column{Head: "seconds", Cell: func(r Result) string { return report.Float(r.Seconds, 3) }}
	colRate   = column{Head: "records/s", Cell: func(r Result) string { return report.Float(r.RecordsPerSec, 0) }}
	colStart  = column{Head: "startup_s", Cell: func(r Result) string { return report.Float(r.StartupSeconds, 4) }}
	colLimit  = column{Head: "limit_s", Cell: func(r Result) string { return report.Float(r.LimitSeconds, 3) }}
	colNomLim = column{Head: "nominal_limit_s", Cell: func(r Result) string { return report.Float(r.NominalLimitSeconds, 3) }}
	colEff    = column{Head: "efficiency", Cell: func(r Result) string { return report.Float(r.Efficiency, 3) }}
	colNomEff = column{Head: "nominal_eff", Cell: func(r Result) string { return report.Float(r.NominalEfficiency, 3) }}
	colNs     = column{Head: "ns/record", Cell: func(r Result) string { return report.Float(r.NsPerRecord, 0) }}
	colCPU    = column{Head: "cpu_ns/record", Cell: func(r Result) string { return report.Float(r.CPUNsPerRecord, 0) }}
	colAllocs = column{Head: "allocs/record", Cell: func(r Result) string { return report.Float(r.AllocsPerRecord, 2) }}
	colBytes  = column{Head: "B/record", Cell: func(r Result) string { return report.Float(r.BytesPerRecord, 0) }}
	colRatio  = column{Head: "ratio", Cell: func(r Result) string { return report.Float(r.Ratio, 3) }}
	colPeak   = column{Head: "peak_rss_mb", Cell: func(r Result) string { return report.Float(r.PeakRSSMB, 1) }}
	colBase   = column{Head: "baseline_rss_mb", Cell: func(r Result) string { return report.Float(r.BaselineRSSMB, 1) }}
	colOther  = column{Head: "other_records", Cell: func(r Result) string { return strconv.Itoa(r.OtherRecords) }}
	colOSecs  = column{Head: "other_seconds", Cell: func(r Result) string { return report.Float(r.OtherSeconds, 3) }}
	colORate  = column{Head: "other_records/s", Cell: func(r Result) string { return report.Float(r.OtherRecordsPerSec, 0) }}
	colNote   = column{Head: "note", Cell: func(r Result) string { return r.Note }}
	colP1P50  = column{Head: "p1_p50_ms", Cell: func(r Result) string { return ptrCell(r.P1P50Ms, 2) }}
	colP1P99  = column{Head: "p1_p99_ms", Cell: func(r Result) string { return ptrCell(r.P1P99Ms, 2) }}
	colHandMs = column{Head: "handler_ms", Cell: func(r Result) string { return ptrCell(r.HandlerMs, 3) }}
	colP3Shr  = column{Head: "p3_share", Cell: func(r Result) string { return ptrCell(r.P3Share, 3) }}
	colP3Min  = column{Head: "p3_min_share", Cell: func(r Result) string { return ptrCell(r.P3MinShare, 2) }}
	colP3Gap  = column{Head: "p3_max_gap", Cell: func(r Result) string { return intPtrCell(r.P3MaxGap) }}
	colP3Bnd  = column{Head: "p3_gap_bound", Cell: func(r Result) string { return intPtrCell(r.P3GapBound) }}
	colPeakR  = column{Head: "peak_held", Cell: func(r Result) string { return strconv.FormatInt(r.PeakHeldRecords, 10) }}
	colPeakB  = column{Head: "peak_held_bytes", Cell: func(r Result) string { return strconv.FormatInt(r.PeakHeldBytes, 10) }}
	colReread = column{Head: "reread/records", Cell: func(r Result) string { return report.Float(r.RereadShare, 3) }}
)

func intPtrCell(v *int) string {
	if v == nil {
		return "-"
	}
	return strconv.Itoa(*v)
}

func ptrCell(v *float64, prec int) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', prec, 64)
}

// columns lists what the table of a scenario shows.
var columns = map[string][]column{
	"pc-table":         {colMode, colKeys, colRecs, colSecs, colLimit, colNomLim, colEff, colNomEff, colStart},
	"overhead":         {colMode, colProcs, colKeys, colParts, colRecs, colSecs, colRate, colNs, colCPU, colAllocs, colBytes, colRatio, colNote},
	"tracing-overhead": {colMode, colProcs, colKeys, colParts, colRecs, colSecs, colRate, colNs, colCPU, colAllocs, colBytes, colRatio, colNote},
	"keys-1m":          {colMode, colKeys, colParts, colRecs, colSecs, colRate, colBase, colPeak, colNote},
	"priority-flood":   {colMode, colRecs, colP1P50, colP1P99, colHandMs, colP3Shr, colP3Min, colP3Gap, colP3Bnd, colNote},
	"hot-key":          {colMode, colKeys, colParts, colRecs, colOther, colOSecs, colORate, colSecs, colLimit, colEff, colRatio, colPeakR, colPeakB, colReread, colNote},
}

// printer writes results as tables (one per scenario, flushed when the
// scenario ends) or as JSON lines.
type printer struct {
	w      io.Writer
	json   bool
	buf    []Result
	latest []Result // every result printed, for charts and the child protocol
}

func (p *printer) machine(m report.Machine) { report.WriteMachine(p.w, m, p.json) }

func (p *printer) add(r Result) {
	if r.Procs == 0 {
		r.Procs = runtime.GOMAXPROCS(0)
	}
	p.latest = append(p.latest, r)
	if p.json {
		report.WriteJSON(p.w, r)
		return
	}
	p.buf = append(p.buf, r)
}

// flush prints the table of the results added since the last flush.
func (p *printer) flush(title string) {
	if p.json || len(p.buf) == 0 {
		return
	}
	report.WriteTable(p.w, title, columns[p.buf[0].Scenario], p.buf)
	p.buf = p.buf[:0]
}
