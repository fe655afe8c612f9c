// Command bench is orderly's benchmark harness: it runs the scenarios of
// orderly's performance targets over the in-memory adapter (and, for the
// Kafka scenarios, over adapters/orderlysarama and adapters/orderlykgo
// against an in-process kfake cluster) and prints a table, or one JSON
// object per result with -json.
//
//	go run ./bench <scenario> [flags]
//
// Scenarios, with their default record counts (-records overrides them):
//
//	pc-table          10000
//	overhead          2000000
//	keys-1m           2000000
//	hot-key           20000
//	hot-key-kafka     20000
//	tracing-overhead  500000
//	kafka-overhead    1000000
//	pc-table-kafka    10000
//	poison            20000
//	all               each of the above in turn
//
// See README.md in this folder for what each measures, what the columns
// mean and the results measured so far.
//
// The harness uses only orderly's public API (orderly.New with options,
// adapters/memory, adapters/orderlysarama, adapters/orderlykgo, tracing);
// nothing in the engine knows which scenario runs. What it shares with the
// peers comparison (bench/peers) lives in bench/internal/report.
package main
