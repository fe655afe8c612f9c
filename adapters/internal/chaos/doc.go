// Package chaos is the chaos harness shared by the Kafka adapters' tests:
// a consumer group of orderly engines, each over its own Source, on an
// in-process kfake cluster (3 brokers, real protocol over loopback), under
// load, while a scenario of member changes plays out (members join,
// leave, are replaced, vanish; the cluster becomes unreachable), with
// every claim, record and commit journaled. An adapter plugs in through
// Client; TestChaos, TestGracefulMemberChanges and TestOutage are the
// scenarios each adapter runs (packages saramachaos and kgochaos, beside
// this one: the adapters' own modules do not require this test-only one).
//
// What every run checks, and why each holds:
//   - every produced record is handled at least once, and the group's
//     committed offsets end at every partition's end;
//   - within each claim (one owner's run over a partition) each key's
//     records start in offset order, and no record is completed twice;
//   - committed offsets never decrease: per claim, per partition over all
//     claims in the order commits returned, in what an admin client reads
//     from the broker while the test runs, and each claim starts at or
//     above the last successful commit of its partition;
//   - a vanished member stores nothing after it vanished: every Commit it
//     starts afterwards fails;
//   - duplicates only come from the uncommitted window: when claims C1
//     and C2 (granted in that order) both completed a record, C1's last
//     successful commit does not cover it (the record is at or above that
//     commit's offset and outside the ranges its metadata lists as done).
//     A commit that covers a record is inherited by every later owner,
//     so such a record is never delivered again;
//   - duplicates are counted by cause: the earlier claim's member
//     vanished (crash), the claim was serving when an outage began
//     (outage), or neither (graceful). The scenarios require graceful
//     duplicates to be zero: members that leave or give partitions up in
//     a rebalance commit everything they completed before the partition
//     moves.
//
// Seeds come from the environment: ORDERLY_CHAOS_SEEDS=100 runs 100
// random seeds of TestChaos, ORDERLY_CHAOS_SEED=<seed> replays one (a
// failed run prints its seed), ORDERLY_HANDOVER_SEEDS and
// ORDERLY_HANDOVER_SEED do the same for TestGracefulMemberChanges, and
// ORDERLY_CHAOS_VERBOSE=1 prints every member's log lines.
package chaos
