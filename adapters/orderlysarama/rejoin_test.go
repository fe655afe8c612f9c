package orderlysarama_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderly-go/orderly"
)

// A member stopped while it is rejoining the group still stores its final
// commits. Member a holds both partitions; b joins; a's SyncGroup of the
// new generation is answered REBALANCE_IN_PROGRESS (what a coordinator
// answers when one more member joins while the group syncs), so sarama
// waits Rebalance.Retry.Backoff before joining again; a is stopped in that
// wait. The coordinator is by then in a generation a has joined but its
// session has not reached. Each of a's claims commits on revoke: the
// commits must be stored, in the generation a reaches once its rejoin
// completes, not lost to ILLEGAL_GENERATION.
func TestMemberStoppedDuringARejoinStoresItsFinalCommits(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 2, "t")
	var first atomic.Pointer[string] // a's member id, from its first SyncGroup
	held := make(chan struct{})
	c.ControlKey(int16(kmsg.SyncGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.SyncGroupRequest)
		if first.Load() == nil {
			first.Store(&r.MemberID)
			return nil, nil, false
		}
		if r.MemberID != *first.Load() {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		close(held)
		return resp, nil, true // handled: the control is dropped
	})

	cfgA := config(nil)
	cfgA.Consumer.Group.Rebalance.Retry.Backoff = 500 * time.Millisecond
	claimsA := make(chan orderly.Claim, 2)
	finals := make(chan error, 2)
	stopA := consuming(t, newSource(t, c, "g", cfgA, "t"), func(cl orderly.Claim) {
		claimsA <- cl
		<-cl.Revoked()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		finals <- cl.Commit(ctx, 10+int64(cl.Partition()), "final")
	})
	for range 2 {
		select {
		case <-claimsA:
		case <-time.After(30 * time.Second):
			t.Fatal("a did not get both partitions within 30s")
		}
	}

	consuming(t, newSource(t, c, "g", config(nil), "t"), newClaims().serve)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("a's SyncGroup of the next generation was not seen within 30s")
	}
	require.NoError(t, stopA())
	for range 2 {
		require.NoError(t, <-finals, "final commit")
	}
	pos := committed(t, c, "g", "t", 2)
	require.Equal(t, []orderly.Position{{Offset: 10, Metadata: "final"}, {Offset: 11, Metadata: "final"}}, pos)
}
