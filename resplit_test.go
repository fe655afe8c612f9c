package orderly_test

import (
	"context"
	"math/rand/v2"

	"github.com/orderly-go/orderly"
)

// resplit is a Source whose claims deliver the wrapped source's records
// re-cut into batches of random sizes (one record up to several of the
// source's batches joined), so that tests exercise every batch boundary:
// a batch split anywhere, keys spread over many batches, revokes arriving
// in the middle of a batch the engine is dispatching.
type resplit struct {
	orderly.Source
	seed uint64
}

func (s resplit) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) {
		rc := &resplitClaim{Claim: c, out: make(chan []*orderly.Record),
			rng: rand.New(rand.NewPCG(s.seed, uint64(c.Partition())))}
		// Owned by this serve call: ends when the inner Records closes or
		// the claim is revoked, and closes out; serve waits for it below.
		done := make(chan struct{})
		go func() {
			defer close(done)
			rc.forward()
		}()
		serve(rc)
		<-done
	})
}

type resplitClaim struct {
	orderly.Claim
	out chan []*orderly.Record
	rng *rand.Rand // used by forward only
}

func (c *resplitClaim) Records() <-chan []*orderly.Record { return c.out }

func (c *resplitClaim) forward() {
	defer close(c.out)
	var held []*orderly.Record
	in := c.Claim.Records()
	for {
		if len(held) == 0 {
			if in == nil {
				return
			}
			select {
			case b, ok := <-in:
				if !ok {
					in = nil
				}
				held = append(held, b...)
			case <-c.Revoked():
				return
			}
			continue
		}
		if in != nil && c.rng.IntN(3) == 0 {
			// Join the source's next batch to what is held, if one is
			// ready now.
			select {
			case b, ok := <-in:
				if !ok {
					in = nil
				}
				held = append(held, b...)
				continue
			default:
			}
		}
		n := 1 + c.rng.IntN(len(held))
		select {
		case c.out <- held[:n:n]:
			held = held[n:]
		case <-c.Revoked():
			return
		}
	}
}
