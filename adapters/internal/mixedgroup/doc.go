// Package mixedgroup checks that the sarama and franz-go adapters share a
// consumer group; its tests are all there is. They live in this test-only
// module so that neither adapter's module requires the other client.
package mixedgroup
