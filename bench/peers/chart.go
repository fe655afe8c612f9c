package main

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
)

// The chart is drawn as the main harness draws the pc-table
// (bench/chart.go): standard-library image drawing, a 5×7 bitmap font
// (font.go), horizontal grouped bars on a log-scale seconds axis.

type series struct {
	name  string
	color color.RGBA
	value func(row map[string]Result) float64 // 0: no bar
}

func seconds(peer string) func(map[string]Result) float64 {
	return func(row map[string]Result) float64 { return row[peer].Seconds }
}

var chartSeries = []series{
	{"orderly (ByKey, concurrency 100)", color.RGBA{31, 119, 180, 255}, seconds("orderly")},
	{"sarama consumer group", color.RGBA{214, 39, 40, 255}, seconds("sarama")},
	{"watermill-kafka router", color.RGBA{44, 160, 44, 255}, seconds("watermill")},
	{"franz-go goroutine per partition", color.RGBA{255, 127, 14, 255}, seconds("franz-go")},
	{"orderly limit (sum/conc or largest key)", color.RGBA{70, 70, 70, 255}, func(row map[string]Result) float64 {
		return row["orderly"].LimitSeconds
	}},
	{"serial limit (largest partition sum)", color.RGBA{170, 170, 170, 255}, func(row map[string]Result) float64 {
		for _, p := range []string{"sarama", "watermill", "franz-go"} {
			if v := row[p].LimitSeconds; v > 0 {
				return v
			}
		}
		return 0
	}},
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
	const (
		scale   = 2
		barH    = 16
		rowGap  = 20
		left    = 220
		right   = 90
		top     = 160
		bottom  = 70
		plotW   = 860
		tickLen = 6
	)
	rowH := len(chartSeries)*barH + rowGap
	width, height := left+plotW+right, top+len(rows)*rowH+bottom

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, row := range rows {
		for _, s := range chartSeries {
			if v := s.value(row.byKey); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return errors.New("no values to chart")
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	xOf := func(v float64) int {
		return left + int(math.Round(float64(plotW)*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))))
	}

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fillRect(img, 0, 0, width, height, color.White)
	black, grid := color.RGBA{0, 0, 0, 255}, color.RGBA{225, 225, 225, 255}
	plotBottom := top + len(rows)*rowH

	heading := "peers on one kfake cluster"
	for _, r := range results {
		if r.Scenario == "peers" {
			heading += fmt.Sprintf(": %d records, sleep U[0,5ms), %d keys", r.Records, r.Keys)
			break
		}
	}
	drawText(img, 20, 14, heading, scale, black)
	drawText(img, 20, 36, "seconds from first record to last, log scale (lower is better)", scale, black)
	for i, s := range chartSeries {
		x, y := 20+(i%2)*600, 66+(i/2)*22
		fillRect(img, x, y, 28, 14, s.color)
		drawText(img, x+36, y, s.name, scale, black)
	}

	for d := lo; d < hi*1.0001; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := d * m
			if v > hi*1.0001 {
				break
			}
			x := xOf(v)
			fillRect(img, x, top, 1, plotBottom-top, grid)
			fillRect(img, x, plotBottom, 1, tickLen, black)
			label := strconv.FormatFloat(v, 'g', -1, 64)
			drawText(img, x-textWidth(label, scale)/2, plotBottom+tickLen+6, label, scale, black)
		}
	}
	axis := "seconds"
	drawText(img, left+plotW/2-textWidth(axis, scale)/2, plotBottom+tickLen+30, axis, scale, black)
	fillRect(img, left, top, 1, plotBottom-top, black)
	fillRect(img, left, plotBottom, plotW+1, 1, black)

	for i, row := range rows {
		y := top + i*rowH + rowGap/2
		drawText(img, left-12-textWidth(row.label, scale), y+(len(chartSeries)*barH)/2-glyphH, row.label, scale, black)
		for j, s := range chartSeries {
			v := s.value(row.byKey)
			if v <= 0 {
				continue
			}
			by := y + j*barH
			x := xOf(v)
			fillRect(img, left+1, by+1, x-left, barH-2, s.color)
			drawText(img, x+6, by+1, secondsLabel(v), scale, black)
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// secondsLabel prints three significant digits, at most two decimals
// above 1 s.
func secondsLabel(v float64) string {
	if v >= 1 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
