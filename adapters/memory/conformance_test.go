package memory_test

import (
	"testing"

	"github.com/orderly-go/orderly/adapters/adaptertest"
)

const conformanceFetchBuffer = 16

func TestConformance(t *testing.T) {
	adaptertest.TestSource(t, adaptertest.Features{Crash: true, PlantCommit: true, Reread: true, PauseSlack: conformanceFetchBuffer},
		func(t *testing.T) adaptertest.Cluster { return adaptertest.NewMemoryCluster(conformanceFetchBuffer) })
}
