// Package report is what the benchmark harness (bench) and the peers
// comparison (bench/peers, a module of its own) share, so that both
// measure, print and draw alike: the pc-table latencies (Latencies) and the
// efficiency limit (Limit) their results are measured against, the
// machine line that opens every run (Machine), result tables and JSON
// lines (WriteTable, WriteJSON), and PNG bar charts (BarChart) drawn with
// the standard library and a 5×7 bitmap font (DrawText).
//
// It is internal to bench: both programs import it, nothing else can.
package report
