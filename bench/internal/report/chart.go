package report

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
)

// BarChart is a chart of seconds as horizontal grouped bars on a log-scale
// axis: a title and subtitle, a legend of the series in two columns, then
// one group of bars per row, one bar per series, each labelled with its
// value. The axis spans whole decades around every value, with grid lines
// and labels at 1, 2 and 5 of every decade.
type BarChart[R any] struct {
	Title, Subtitle string
	Series          []Series[R]
	Rows            []R
	Label           func(R) string // a row's label, left of the axis
	Layout          Layout
}

// Series is one bar of every row of a BarChart: a legend entry, a colour
// and the bar's value in a row, in seconds (≤ 0: no bar).
type Series[R any] struct {
	Name  string
	Color color.RGBA
	Value func(R) float64
}

// Layout is the geometry of a BarChart, in pixels.
type Layout struct {
	Scale                    int // text scale: each font pixel is Scale×Scale
	BarH                     int // height of a bar, with a pixel of space above and below
	RowGap                   int // space between two groups of bars
	Left, Right, Top, Bottom int // margins around the plot
	PlotW                    int // width of the plot
	TickLen                  int // length of the axis ticks
	LegendTop                int // y of the legend's first line
	LegendColumn             int // x distance between the legend's two columns
	ValueDY                  int // y of a bar's value label below the bar's top
}

// Draw draws the chart. It fails when no series has a value > 0.
func (c *BarChart[R]) Draw() (*image.RGBA, error) {
	l := c.Layout
	rowH := len(c.Series)*l.BarH + l.RowGap
	width, height := l.Left+l.PlotW+l.Right, l.Top+len(c.Rows)*rowH+l.Bottom

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range c.Rows {
		for _, s := range c.Series {
			if v := s.Value(r); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return nil, errors.New("no values to chart")
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	xOf := func(v float64) int {
		return l.Left + int(math.Round(float64(l.PlotW)*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))))
	}

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	FillRect(img, 0, 0, width, height, color.White)
	black, grid := color.RGBA{0, 0, 0, 255}, color.RGBA{225, 225, 225, 255}
	plotBottom := l.Top + len(c.Rows)*rowH

	DrawText(img, 20, 14, c.Title, l.Scale, black)
	DrawText(img, 20, 36, c.Subtitle, l.Scale, black)
	for i, s := range c.Series {
		x, y := 20+(i%2)*l.LegendColumn, l.LegendTop+(i/2)*22
		FillRect(img, x, y, 28, 14, s.Color)
		DrawText(img, x+36, y, s.Name, l.Scale, black)
	}

	for d := lo; d < hi*1.0001; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := d * m
			if v > hi*1.0001 {
				break
			}
			x := xOf(v)
			FillRect(img, x, l.Top, 1, plotBottom-l.Top, grid)
			FillRect(img, x, plotBottom, 1, l.TickLen, black)
			label := strconv.FormatFloat(v, 'g', -1, 64)
			DrawText(img, x-TextWidth(label, l.Scale)/2, plotBottom+l.TickLen+6, label, l.Scale, black)
		}
	}
	axis := "seconds"
	DrawText(img, l.Left+l.PlotW/2-TextWidth(axis, l.Scale)/2, plotBottom+l.TickLen+30, axis, l.Scale, black)
	FillRect(img, l.Left, l.Top, 1, plotBottom-l.Top, black)
	FillRect(img, l.Left, plotBottom, l.PlotW+1, 1, black)

	for i, r := range c.Rows {
		y := l.Top + i*rowH + l.RowGap/2
		label := c.Label(r)
		DrawText(img, l.Left-12-TextWidth(label, l.Scale), y+(len(c.Series)*l.BarH)/2-GlyphH, label, l.Scale, black)
		for j, s := range c.Series {
			v := s.Value(r)
			if v <= 0 {
				continue
			}
			by := y + j*l.BarH
			x := xOf(v)
			FillRect(img, l.Left+1, by+1, x-l.Left, l.BarH-2, s.Color)
			DrawText(img, x+6, by+l.ValueDY, SecondsLabel(v), l.Scale, black)
		}
	}
	return img, nil
}

// WritePNG draws the chart and writes it to path as PNG.
func (c *BarChart[R]) WritePNG(path string) error {
	img, err := c.Draw()
	if err != nil {
		return err
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

// SecondsLabel prints v seconds with three significant digits, at most
// two decimals above 1 s.
func SecondsLabel(v float64) string {
	if v >= 1 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
