package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every mode runs a small workload to the end, and the summary compares
// the bridge's modes with plain, in tables and in JSON lines.
func TestSmallRun(t *testing.T) {
	o, err := parseFlags([]string{"-records", "2000", "-keys", "50", "-rounds", "2"})
	require.NoError(t, err)
	runs, err := runAll(o)
	require.NoError(t, err)
	require.Len(t, runs, 2*len(allModes))
	for _, r := range runs {
		assert.Equal(t, 2000, r.Records)
		assert.Positive(t, r.Seconds, r.Mode)
	}
	sum := summarize(runs)
	require.Len(t, sum, len(allModes))
	for _, r := range sum {
		assert.Equal(t, "protoactor-summary", r.Scenario)
		assert.Equal(t, 2, r.Rounds)
		if r.Mode == "plain" {
			assert.Zero(t, r.Ratio)
			continue
		}
		assert.Positive(t, r.Ratio, r.Mode)
		assert.InDelta(t, r.NsPerRecord-sum[0].NsPerRecord, r.OverheadNsPerRecord, 1e-6, r.Mode)
	}
	assert.Equal(t, 50, sum[1].Actors, "an actor per key")
	assert.Equal(t, 1, sum[2].Actors)

	var tables, lines bytes.Buffer
	(&printer{w: &tables}).print("summary", sum)
	assert.Contains(t, tables.String(), "overhead_ns/record")
	(&printer{w: &lines, json: true}).print("summary", sum)
	for _, l := range strings.Split(strings.TrimSpace(lines.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		assert.Equal(t, "protoactor-summary", m["scenario"])
	}
}

func TestFlags(t *testing.T) {
	_, err := parseFlags([]string{"-modes", "plain,nope"})
	assert.ErrorContains(t, err, "nope")
	_, err = parseFlags([]string{"-records", "0"})
	assert.Error(t, err)
}
