// Package inspect serves an orderly engine's inspection over HTTP: a live
// page that names, for every partition, the record holding its watermark
// and why, and the same snapshot as JSON.
//
//	h, err := inspect.New(eng)                                 // read-only
//	mux.Handle("/orderly/", http.StripPrefix("/orderly", h))
//
// It uses only the standard library; the page is one embedded HTML file
// with its script and style inline, no external assets.
//
// # Endpoints
//
// Relative to where the handler is mounted:
//
//	GET  /            the page; it fetches state.json every WithRefresh (1s)
//	GET  /state.json  the snapshot (State), fields below
//	POST /partitions/{topic}/{partition}/keys/{key}/release
//	                  release a parked key (orderly.Engine.ReleaseKey); {key}
//	                  is the key itself, path-escaped
//	POST /partitions/{topic}/{partition}/parked/{ref}/release
//	                  the same, naming the key by the ref state.json gives it
//	                  (the page uses it: keys it shows are truncated)
//
// The release endpoints answer 403 Forbidden unless the handler was made
// WithRelease: the handler is read-only by default. They answer JSON
// {"released": true} (200), or {"released": false, "error": "..."} with
// 404 when the key is not parked on that partition (or the partition is
// not held by this engine) and 400 for a bad partition number. Cross-origin
// browser requests are refused (http.CrossOriginProtection), so another
// site's page cannot release keys through a user's browser.
//
// Each state.json request (and each refresh of the page) takes one
// inspection: the engine pays for it then, and nothing when nobody looks
// (see orderly.Engine.InspectWith).
//
// # What is never shown
//
// Record values and headers are never part of the snapshot. Keys are
// shown as valid UTF-8, cut to WithMaxKeyLength characters (32) with a
// final "…". A record's last error is the handler's own text, cut to
// WithMaxErrorLength characters (200), or left out.
//
// # state.json
//
// The field names are stable. Every field listed here is present
// whenever the object holding it is (JSON null where "or null" says so);
// lists are [] when empty, never null. Durations are whole milliseconds; times are RFC 3339 strings.
// Offsets are Kafka offsets; -1 means unknown.
//
//	time                                  time the snapshot was taken
//	release_enabled                       bool: the release endpoints are served (WithRelease)
//	stall_after_ms                        how long a record may block before its partition is stalled (WithStallAfter)
//	engine                                engine-wide figures:
//	engine.in_flight                      handler calls running
//	engine.max_concurrency                the most that may run at once
//	engine.ready_actors                   key actors waiting for a concurrency slot
//	engine.held_records                   records held (dispatched, not finished)
//	engine.held_bytes                     their bytes
//	engine.max_records                    the engine buffer, in records
//	engine.max_bytes                      the engine buffer, in bytes
//	engine.breaker                        "none", "closed", "open" or "half-open"
//	engine.stuck[]                        handler calls running past twice their attempt timeout, oldest first:
//	engine.stuck[].topic                  topic
//	engine.stuck[].partition              partition
//	engine.stuck[].offset                 the record's offset
//	engine.stuck[].key                    its key, or null when it has none
//	engine.stuck[].attempt                which attempt, from 1
//	engine.stuck[].running_ms             how long it has run
//	partitions[]                          one per claimed partition, by topic then partition:
//	partitions[].topic                    topic
//	partitions[].partition                partition
//	partitions[].watermark                next offset to commit: the lowest unfinished one
//	partitions[].committed                last committed offset (-1: none)
//	partitions[].end                      the partition's end, when the source knows it (-1: unknown)
//	partitions[].lag                      end - committed (-1: unknown)
//	partitions[].uncommitted              the uncommitted window in use
//	partitions[].max_uncommitted          its limit
//	partitions[].held_records             records held
//	partitions[].held_bytes               their bytes
//	partitions[].max_records              the partition buffer, in records
//	partitions[].max_bytes                the partition buffer, in bytes
//	partitions[].in_flight                handler calls running
//	partitions[].keys                     keys with queued or running records
//	partitions[].retrying                 records waiting out a delay (retry, rate limit, breaker, dead-letter retry)
//	partitions[].paused                   bool: fetching paused by backpressure
//	partitions[].pause_reasons            every reason in force (orderly.PauseReason values)
//	partitions[].stopping                 bool: the claim is being revoked or the engine is stopping
//	partitions[].stalled                  bool: the blocking record is at least stall_after_ms old
//	partitions[].blocking                 the record at the watermark (a record object), or null when none
//	partitions[].top_keys[]               the busiest keys, most records first:
//	partitions[].top_keys[].key           the ordering key ("" under Serial: the whole partition)
//	partitions[].top_keys[].records       records queued or running
//	partitions[].top_keys[].bytes         their bytes
//	partitions[].top_keys[].age_ms        age of its oldest record, its head
//	partitions[].top_keys[].head          the record at its head (a record object)
//	partitions[].parked                   number of parked keys
//	partitions[].parked_keys[]            parked keys, sorted, at most WithParkedKeys:
//	partitions[].parked_keys[].key        the key
//	partitions[].parked_keys[].until      when its parking ends, or null: until released
//	partitions[].parked_keys[].ref        names the key for the release endpoint
//
// A record object (blocking, top_keys[].head) has:
//
//	record.offset                         its offset
//	record.key                            its key (the record's own), or null when it has none
//	record.keys                           its ordering keys, or null when it is unordered
//	record.state                          see below
//	record.age_ms                         time since it was dispatched
//	record.attempts                       handler calls made, the running one included
//	record.last_error                     the last error it met, or null
//	record.first_failure                  when its first attempt failed, or null
//	record.next_try_at                    when a waiting record is tried again, or null
//	record.next_try_in_ms                 the same, from the snapshot's time, or null
//	record.waiting_on                     for "behind-key": {key, offset} of the record it waits behind, or null
//	record.waiting_on.key                 the key it waits on
//	record.waiting_on.offset              the offset heading that key
//	record.behind                         records queued behind it on its keys
//
// A record's state is one of (orderly.RecordState): "running" (its
// handler runs), "ready" (waiting for a concurrency slot), "retry-wait",
// "behind-key" (waiting behind an earlier record of a key),
// "rate-limited", "breaker-open", "dead-lettering", "dead-letter-retry",
// "parked" (its key is parked: it goes to the dead-letter sink unhandled)
// and "abandoned" (its claim is ending).
package inspect
