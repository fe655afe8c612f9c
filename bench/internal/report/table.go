package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Column is one column of a table of results of type R: a header and how
// to print a result's cell.
type Column[R any] struct {
	Head string
	Cell func(R) string
}

// WriteTable prints rows under the heading "== title" as a table of cols,
// right-aligned, two spaces between columns.
func WriteTable[R any](w io.Writer, title string, cols []Column[R], rows []R) {
	fmt.Fprintf(w, "\n== %s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.Head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t")+"\t")
	for _, r := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = c.Cell(r)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}

// Float is a table cell of v with prec decimals, or "-" for 0 (not
// measured).
func Float(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// WriteJSON prints v as one line of JSON. v must marshal (the harnesses'
// results and Machine do).
func WriteJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(w, string(b))
}

// WriteMachine prints the machine line that opens a run: m's String, or
// with asJSON the JSON object {"machine": m}.
func WriteMachine(w io.Writer, m Machine, asJSON bool) {
	if asJSON {
		WriteJSON(w, struct {
			Machine Machine `json:"machine"`
		}{m})
		return
	}
	fmt.Fprintln(w, m)
}
