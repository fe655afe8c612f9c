package adaptertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/adaptertest"
	"github.com/orderly-go/orderly/adapters/memory"
)

// A suite that cannot fail is worse than none. Each case breaks one Claim
// contract by wrapping the memory adapter, runs the suite on it in a child
// process (a failing subtest cannot be contained in this one) and checks
// that the test guarding that contract fails, for the right reason.
func TestSuiteFailsOnBrokenAdapters(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("running as a child")
	}
	for _, tc := range []struct {
		mode, test, reason string
	}{
		{"ignore-pause", "PauseStopsDeliveryResumeRestartsIt", "after Pause beyond Features.PauseSlack"},
		{"drop-metadata", "RestartSkipsOffsetsDoneAboveWatermark", "commit metadata"},
		{"lose-start", "RestartSkipsOffsetsDoneAboveWatermark", "only the unfinished record"},
		{"forget-commits", "ResumeFromCommittedOffset", "committed"},
		{"reject-late-commits", "CommitAfterRevokeIsNextStart", "a commit after Revoked was closed"},
		{"swap-records", "CommitAfterRevokeIsNextStart", "offset order"},
		{"swap-records", "PerKeyOrderUnderConcurrency", "offset order"},
		{"reread-skip", "RereadFromAnyOffset", "offset order, each once"},
		{"reread-skip", "HotKeySpillsWithoutStallingOthers", "records not handled yet"},
		{"reread-late-start", "RereadFromAnyOffset", "offset order, each once"},
		{"reread-ignore-close", "RereadFromAnyOffset", "did not return within"},
	} {
		t.Run(tc.mode+"/"+tc.test, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenAdapter$/^"+tc.test+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.mode)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "the suite passed on an adapter that breaks %s (err %v):\n%s", tc.mode, err, out)
			require.Contains(t, string(out), "--- FAIL: TestBrokenAdapter/"+tc.test, "%s:\n%s", tc.mode, out)
			require.Contains(t, string(out), tc.reason, "%s failed for another reason:\n%s", tc.test, out)
		})
	}
}

const brokenEnv = "ADAPTERTEST_BROKEN"

// TestBrokenAdapter is the child: the suite on a memory adapter broken as
// $ADAPTERTEST_BROKEN says.
func TestBrokenAdapter(t *testing.T) {
	mode := os.Getenv(brokenEnv)
	if mode == "" {
		t.Skip("only run by TestSuiteFailsOnBrokenAdapters")
	}
	adaptertest.TestSource(t, adaptertest.Features{Crash: true, PlantCommit: true, Reread: true, PauseSlack: 16, Timeout: 2 * time.Second},
		func(t *testing.T) adaptertest.Cluster { return brokenCluster{adaptertest.NewMemoryCluster(16), mode} })
}

// brokenCluster is the memory glue whose members hand out claims broken
// as mode says.
type brokenCluster struct {
	adaptertest.MemoryCluster
	mode string
}

func (c brokenCluster) NewMember(t *testing.T, group string, topics ...string) adaptertest.Member {
	return brokenMember{c.Log.Member(group, topics, memory.WithFetchBuffer(c.FetchBuffer)), c.mode}
}

// brokenMember does not embed the memory member, so that it does not
// report the paused state (an adapter that ignores Pause would not).
type brokenMember struct {
	m    *memory.Member
	mode string
}

func (m brokenMember) Crash() { m.m.Crash() }

func (m brokenMember) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return m.m.Consume(ctx, func(c orderly.Claim) { serve(newBrokenClaim(c, m.mode)) })
}

type brokenClaim struct {
	orderly.Claim
	mode    string
	records <-chan []*orderly.Record
}

func newBrokenClaim(c orderly.Claim, mode string) *brokenClaim {
	b := &brokenClaim{Claim: c, mode: mode, records: c.Records()}
	if mode == "swap-records" {
		b.records = swapped(c)
	}
	return b
}

func (c *brokenClaim) Records() <-chan []*orderly.Record { return c.records }

func (c *brokenClaim) Start() orderly.Position {
	if c.mode == "lose-start" {
		return orderly.Position{Offset: orderly.NoOffset}
	}
	return c.Claim.Start()
}

func (c *brokenClaim) Pause() {
	if c.mode != "ignore-pause" {
		c.Claim.Pause()
	}
}

func (c *brokenClaim) Commit(ctx context.Context, next int64, metadata string) error {
	switch c.mode {
	case "drop-metadata":
		metadata = ""
	case "forget-commits":
		return nil
	case "reject-late-commits":
		select {
		case <-c.Revoked():
			return errors.New("broken: commit after revoke")
		default:
		}
	}
	return c.Claim.Commit(ctx, next, metadata)
}

// ReadFrom re-reads through the memory claim, broken as the mode says.
func (c *brokenClaim) ReadFrom(ctx context.Context, offset int64) (orderly.RecordStream, error) {
	if c.mode == "reread-late-start" {
		offset++
	}
	s, err := c.Claim.(orderly.Rereader).ReadFrom(ctx, offset)
	if err != nil {
		return nil, err
	}
	return &brokenStream{RecordStream: s, mode: c.mode}, nil
}

type brokenStream struct {
	orderly.RecordStream
	mode string
}

func (s *brokenStream) Next(ctx context.Context) ([]*orderly.Record, error) {
	for {
		b, err := s.RecordStream.Next(ctx)
		if err != nil || s.mode != "reread-skip" {
			return b, err
		}
		b = slices.DeleteFunc(slices.Clone(b), func(r *orderly.Record) bool { return r.Offset%10 == 4 })
		if len(b) > 0 {
			return b, nil
		}
	}
}

func (s *brokenStream) Close() error {
	if s.mode == "reread-ignore-close" {
		return nil
	}
	return s.RecordStream.Close()
}

// swapped delivers c's records one per batch, with offsets 3 and 4 (and
// every pair 10 further) swapped.
func swapped(c orderly.Claim) <-chan []*orderly.Record {
	out := make(chan []*orderly.Record)
	// Owned by the claim: ends when the claim's Records is closed or the
	// claim is revoked and nobody reads any more.
	go func() {
		defer close(out)
		var held *orderly.Record
		send := func(r *orderly.Record) bool {
			select {
			case out <- []*orderly.Record{r}:
				return true
			case <-c.Revoked():
				return false
			}
		}
		for r := range records(c) {
			switch {
			case r.Offset%10 == 3:
				held = r
				continue
			case held != nil:
				if !send(r) || !send(held) {
					return
				}
				held = nil
				continue
			}
			if !send(r) {
				return
			}
		}
		if held != nil {
			send(held)
		}
	}()
	return out
}

// records yields the records of c's batches, one by one.
func records(c orderly.Claim) func(yield func(*orderly.Record) bool) {
	return func(yield func(*orderly.Record) bool) {
		for b := range c.Records() {
			for _, r := range b {
				if !yield(r) {
					return
				}
			}
		}
	}
}
