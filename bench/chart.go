package main

import (
	"errors"
	"fmt"
	"image/color"

	"github.com/orderly-go/orderly/bench/internal/report"
)

// pcPublished are parallel-consumer's published seconds for the pc-table
// workload (its README's performance table), by row.
var pcPublished = map[string]float64{
	"serial":    22.2,
	"key-10":    3.31,
	"key-100":   2.18,
	"key-10000": 2.13,
	"unordered": 2.83,
}

var chartSeries = []report.Series[Result]{
	{Name: "orderly (measured)", Color: color.RGBA{31, 119, 180, 255}, Value: func(r Result) float64 { return r.Seconds }},
	{Name: "limit from measured handler times", Color: color.RGBA{70, 70, 70, 255}, Value: func(r Result) float64 { return r.LimitSeconds }},
	{Name: "limit from nominal latencies", Color: color.RGBA{170, 170, 170, 255}, Value: func(r Result) float64 { return r.NominalLimitSeconds }},
	{Name: "parallel-consumer (published)", Color: color.RGBA{255, 127, 14, 255}, Value: func(r Result) float64 {
		return pcPublished[pcRowOf(r).String()]
	}},
}

// pcChartLayout is the geometry of the pc-table chart.
var pcChartLayout = report.Layout{
	Scale: 2, BarH: 18, RowGap: 18,
	Left: 150, Right: 90, Top: 120, Bottom: 70,
	PlotW: 860, TickLen: 6,
	LegendTop: 64, LegendColumn: 520, ValueDY: 2,
}

func pcRowOf(r Result) pcRow {
	if r.Mode == "key-zipf" {
		return pcRow{mode: "key", keys: r.Keys, zipf: true}
	}
	return pcRow{mode: r.Mode, keys: r.Keys}
}

// writePCChart draws the pc-table results as horizontal grouped bars on a
// log-scale seconds axis and writes them to path as PNG.
func writePCChart(path string, results []Result) error {
	var rows []Result
	for _, r := range results {
		if r.Scenario == "pc-table" {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return errors.New("no pc-table results to chart")
	}
	r0 := rows[0]
	chart := report.BarChart[Result]{
		Title:    fmt.Sprintf("pc-table: %d records, sleep U[0,5ms), 1 partition, concurrency %d", r0.Records, r0.Concurrency),
		Subtitle: "seconds from first record to last completion, log scale (lower is better)",
		Series:   chartSeries,
		Rows:     rows,
		Label:    func(r Result) string { return pcRowOf(r).String() },
		Layout:   pcChartLayout,
	}
	return chart.WritePNG(path)
}
