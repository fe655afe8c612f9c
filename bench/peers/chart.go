package main

import (
	"errors"
	"fmt"
	"image/color"
	"strconv"

	"github.com/orderly-go/orderly/bench/internal/report"
)

// The chart is drawn as the main harness draws the pc-table, with
// bench/internal/report: horizontal grouped bars on a log-scale seconds
// axis, one group per topic (chartRow).

func seconds(peer string) func(chartRow) float64 {
	return func(row chartRow) float64 { return row.byKey[peer].Seconds }
}

var chartSeries = []report.Series[chartRow]{
	{Name: "orderly (ByKey, concurrency 100)", Color: color.RGBA{31, 119, 180, 255}, Value: seconds("orderly")},
	{Name: "sarama consumer group", Color: color.RGBA{214, 39, 40, 255}, Value: seconds("sarama")},
	{Name: "watermill-kafka router", Color: color.RGBA{44, 160, 44, 255}, Value: seconds("watermill")},
	{Name: "franz-go goroutine per partition", Color: color.RGBA{255, 127, 14, 255}, Value: seconds("franz-go")},
	{Name: "orderly limit (sum/conc or largest key)", Color: color.RGBA{70, 70, 70, 255}, Value: func(row chartRow) float64 {
		return row.byKey["orderly"].LimitSeconds
	}},
	{Name: "serial limit (largest partition sum)", Color: color.RGBA{170, 170, 170, 255}, Value: func(row chartRow) float64 {
		for _, p := range []string{"sarama", "watermill", "franz-go"} {
			if v := row.byKey[p].LimitSeconds; v > 0 {
				return v
			}
		}
		return 0
	}},
}

// chartLayout is the geometry of the chart.
var chartLayout = report.Layout{
	Scale: 2, BarH: 16, RowGap: 20,
	Left: 220, Right: 90, Top: 160, Bottom: 70,
	PlotW: 860, TickLen: 6,
	LegendTop: 66, LegendColumn: 600, ValueDY: 1,
}

type chartRow struct {
	label string
	byKey map[string]Result
}

// chartRows groups the results by topic: one row per partition count of
// the latency-bound runs, then the no-op run.
func chartRows(results []Result) []chartRow {
	var rows []chartRow
	index := map[string]int{}
	for _, r := range results {
		label := fmt.Sprintf("%d partition", r.Partitions)
		if r.Partitions != 1 {
			label += "s"
		}
		if r.Scenario == "peers-noop" {
			label = fmt.Sprintf("no-op %dp %s", r.Partitions, countLabel(r.Records))
		}
		i, ok := index[label]
		if !ok {
			i = len(rows)
			index[label] = i
			rows = append(rows, chartRow{label: label, byKey: map[string]Result{}})
		}
		rows[i].byKey[r.Peer] = r
	}
	return rows
}

func countLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "K"
	}
	return strconv.Itoa(n)
}

// writeChart draws the results and writes them to path as PNG.
func writeChart(path string, results []Result) error {
	rows := chartRows(results)
	if len(rows) == 0 {
		return errors.New("no results to chart")
	}
	heading := "peers on one kfake cluster"
	for _, r := range results {
		if r.Scenario == "peers" {
			heading += fmt.Sprintf(": %d records, sleep U[0,5ms), %d keys", r.Records, r.Keys)
			break
		}
	}
	chart := report.BarChart[chartRow]{
		Title:    heading,
		Subtitle: "seconds from first record to last, log scale (lower is better)",
		Series:   chartSeries,
		Rows:     rows,
		Label:    func(row chartRow) string { return row.label },
		Layout:   chartLayout,
	}
	return chart.WritePNG(path)
}
