// Package orderlykgo is the Kafka adapter of orderly over franz-go's kgo
// client.
package orderlykgo
