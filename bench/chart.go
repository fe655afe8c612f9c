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

// pcPublished are parallel-consumer's published seconds for the pc-table
// workload (its README's performance table), by row.
var pcPublished = map[string]float64{
	"serial":    22.2,
	"key-10":    3.31,
	"key-100":   2.18,
	"key-10000": 2.13,
	"unordered": 2.83,
}

type series struct {
	name  string
	color color.RGBA
	value func(Result) float64 // 0: no bar
}

var chartSeries = []series{
	{"orderly (measured)", color.RGBA{31, 119, 180, 255}, func(r Result) float64 { return r.Seconds }},
	{"limit from measured handler times", color.RGBA{70, 70, 70, 255}, func(r Result) float64 { return r.LimitSeconds }},
	{"limit from nominal latencies", color.RGBA{170, 170, 170, 255}, func(r Result) float64 { return r.NominalLimitSeconds }},
	{"parallel-consumer (published)", color.RGBA{255, 127, 14, 255}, func(r Result) float64 {
		return pcPublished[pcRow{r.Mode, r.Keys}.String()]
	}},
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
	const (
		scale   = 2
		barH    = 18
		rowGap  = 18
		left    = 150
		right   = 90
		top     = 120
		bottom  = 70
		plotW   = 860
		tickLen = 6
	)
	rowH := len(chartSeries)*barH + rowGap
	width, height := left+plotW+right, top+len(rows)*rowH+bottom

	// The axis spans whole decades around every value.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		for _, s := range chartSeries {
			if v := s.value(r); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
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

	r0 := rows[0]
	drawText(img, 20, 14, fmt.Sprintf("pc-table: %d records, sleep U[0,5ms), 1 partition, concurrency %d", r0.Records, r0.Concurrency), scale, black)
	drawText(img, 20, 36, "seconds from first record to last completion, log scale (lower is better)", scale, black)
	for i, s := range chartSeries {
		x, y := 20+(i%2)*520, 64+(i/2)*22
		fillRect(img, x, y, 28, 14, s.color)
		drawText(img, x+36, y, s.name, scale, black)
	}

	// Grid at 1, 2 and 5 of every decade; labels at each.
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

	for i, r := range rows {
		y := top + i*rowH + rowGap/2
		label := pcRow{r.Mode, r.Keys}.String()
		drawText(img, left-12-textWidth(label, scale), y+(len(chartSeries)*barH)/2-glyphH, label, scale, black)
		for j, s := range chartSeries {
			v := s.value(r)
			if v <= 0 {
				continue
			}
			by := y + j*barH
			x := xOf(v)
			fillRect(img, left+1, by+1, x-left, barH-2, s.color)
			drawText(img, x+6, by+2, secondsLabel(v), scale, black)
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
