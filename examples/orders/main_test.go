package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The demo runs end to end with small numbers, in every mode.
func TestDemo(t *testing.T) {
	for _, mode := range []string{"key", "serial", "unordered"} {
		t.Run(mode, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), options{records: 2000, partitions: 4, keys: 100, latency: 100 * time.Microsecond,
				mode: mode, concurrency: 32, quiet: true}, &out)
			require.NoError(t, err, out.String())
			require.Contains(t, out.String(), "committed 2000 of 2000")
		})
	}
}
