// Command reports is an example service built on orderly: asynchronous
// write operations through messaging, and prioritized processing with
// work-in-progress limits.
//
// A client POSTs a report request; the API answers 202 Accepted with the
// report's id and a Location once the request is durably in Kafka, and the
// client follows the report by polling GET /reports/{id}, by the SSE
// stream GET /reports/{id}/events, or by a signed webhook. Behind the API a
// pipeline of orderly engines, each its own consumer group, carries the
// report through triage (by plan, to reports.p0, reports.p1 or
// reports.p2), the orchestrator (which starts a report only when its plan
// has a free work-in-progress slot, and holds the slot until the report's
// outcome comes back), generation (simulated, with injected failures,
// retries with backoff and a dead-letter topic) and sending. Every event
// carries the report id as its transaction id, in a header and on every
// span. Statuses live in SQLite (pure Go), and every status update is
// idempotent.
//
//	go run ./examples/reports                                  # embedded Kafka; open the URL it prints
//	go run ./examples/reports -load cron=200,free=50,paid=10   # with a load generator
//	go run ./examples/reports -brokers localhost:9092          # a real cluster
//
// Ctrl-C (SIGINT) or SIGTERM stops it in order: the API closes, every
// step drains what is in flight and commits, and the service prints each
// step's committed offset per partition, read back from the cluster, and
// the reports in the store by state; a second signal ends it at once.
//
// See README.md beside this file for the API, the pipeline and the sizing
// of the WIP limits.
package main
