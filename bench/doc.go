// Command bench is orderly's benchmark harness: it runs the scenarios of
// the performance targets in DESIGN.md over the in-memory adapter and
// prints a table, or one JSON object per result with -json.
//
//	go run ./bench <scenario> [flags]
//
// Scenarios: pc-table, overhead, keys-1m, hot-key, all. See README.md in
// this folder for what each measures, what the columns mean and the
// results measured so far.
//
// The harness uses only orderly's public API (orderly.New with options,
// adapters/memory); nothing in the engine knows which scenario runs.
package main
