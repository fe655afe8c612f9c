// Package kgochaos runs the chaos harness (package chaos) over the
// franz-go adapter, adapters/orderlykgo; its tests are all there is. They
// live in this test-only module so that the adapter's module needs
// neither the harness nor the other Kafka client:
//
//	ORDERLY_CHAOS_SEEDS=100 go test -race -run 'TestChaos$' ./adapters/internal/kgochaos
//
// runs 100 random seeds (CI runs 2), and ORDERLY_CHAOS_SEED=<seed>
// replays one.
package kgochaos
